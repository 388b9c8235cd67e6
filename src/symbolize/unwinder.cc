#include "src/symbolize/unwinder.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <linux/perf_event.h>
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace fs::profile {

// libdwfl's view of a process whose only thread is the current sample's.
struct Unwinder::Callbacks {
  // The sampled thread, once; dwfl_getthreads stops at 0. Only used if something iterates
  // the threads: dwfl_getthread_frames goes through GetThread.
  static pid_t NextThread(Dwfl* /*dwfl*/, void* dwfl_arg, void** thread_argp) {
    auto* self = static_cast<Unwinder*>(dwfl_arg);
    if (self->current_ == nullptr || *thread_argp == self) return 0;
    *thread_argp = self;
    return static_cast<pid_t>(self->current_->tid);
  }

  static bool GetThread(Dwfl* /*dwfl*/, pid_t tid, void* dwfl_arg, void** thread_argp) {
    auto* self = static_cast<Unwinder*>(dwfl_arg);
    if (self->current_ == nullptr || static_cast<uint32_t>(tid) != self->current_->tid) {
      return false;
    }
    *thread_argp = self;
    return true;
  }

  static bool MemoryRead(Dwfl* /*dwfl*/, Dwarf_Addr addr, Dwarf_Word* result, void* dwfl_arg) {
    uint64_t value = 0;
    if (!static_cast<Unwinder*>(dwfl_arg)->ReadMemory(addr, &value)) return false;
    *result = value;
    return true;
  }

  // DWARF register numbers of x86_64 (System V psABI, figure 3.36): rax rdx rcx rbx rsi rdi
  // rbp rsp r8..r15, then 16 = the return address column, which holds the PC.
  static bool SetInitialRegisters(Dwfl_Thread* thread, void* thread_arg) {
    const RawSample& s = *static_cast<Unwinder*>(thread_arg)->current_;
    const auto& r = s.user_regs;
    const Dwarf_Word regs[17] = {
        r[kRegAx],  r[kRegDx],  r[kRegCx],  r[kRegBx],  r[kRegSi],  r[kRegDi],
        r[kRegBp],  r[kRegSp],  r[kRegR8],  r[kRegR9],  r[kRegR10], r[kRegR11],
        r[kRegR12], r[kRegR13], r[kRegR14], r[kRegR15], r[kRegIp],
    };
    if (!dwfl_thread_state_registers(thread, 0, 17, regs)) return false;
    dwfl_thread_state_register_pc(thread, r[kRegIp]);
    return true;
  }

  static int OnFrame(Dwfl_Frame* frame, void* arg) {
    auto* self = static_cast<Unwinder*>(arg);
    Dwarf_Addr pc = 0;
    bool activation = false;
    // Non-activation frames give the return address itself (not pc - 1): the same convention
    // as the kernel's callchain, which BuildProfile expects.
    if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
    self->frames_->push_back(pc);
    return self->frames_->size() >= kMaxFrames ? DWARF_CB_ABORT : DWARF_CB_OK;
  }

  static const Dwfl_Thread_Callbacks kTable;
};

// No detach callbacks: there is nothing to resume (we never stop the process).
const Dwfl_Thread_Callbacks Unwinder::Callbacks::kTable = {
    .next_thread = &NextThread,
    .get_thread = &GetThread,
    .memory_read = &MemoryRead,
    .set_initial_registers = &SetInitialRegisters,
    .detach = nullptr,
    .thread_detach = nullptr,
};

Unwinder::Unwinder(pid_t pid, DwflPtr dwfl) : pid_(pid), dwfl_(std::move(dwfl)) {}

Unwinder::~Unwinder() = default;

StatusOr<std::unique_ptr<Unwinder>> Unwinder::ForProcess(pid_t pid) {
  const std::string where = "DWARF unwinder for process " + std::to_string(pid);
  if (pid <= 0) return Err(where + ": invalid pid");
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    return Err(where + ": no such process (it is not running or has exited)");
  }
  ASSIGN_OR_RETURN(DwflPtr dwfl, ReportProcessModules(pid, where));
  std::unique_ptr<Unwinder> self(new Unwinder(pid, std::move(dwfl)));
  // elf == NULL: libdwfl takes the machine (ebl backend) from the first module it can open.
  if (!dwfl_attach_state(self->dwfl_.get(), nullptr, pid, &Callbacks::kTable, self.get())) {
    return Err(where + ": dwfl_attach_state: " + dwfl_errmsg(-1));
  }
  return self;
}

bool Unwinder::ReadMemory(uint64_t address, uint64_t* out) const {
  const RawSample& s = *current_;
  const uint64_t sp = s.user_regs[kRegSp];
  const uint64_t size = s.user_stack.size();
  if (address >= sp && address - sp <= size && size - (address - sp) >= sizeof(*out)) {
    std::memcpy(out, s.user_stack.data() + (address - sp), sizeof(*out));
    return true;
  }
  // Not on the copied stack: the file bytes of a loaded segment of the ELF mapped there.
  Dwfl_Module* module = dwfl_addrmodule(dwfl_.get(), address);
  if (module == nullptr) return false;
  Dwarf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module, &bias);
  if (elf == nullptr || address < bias) return false;
  const uint64_t vaddr = address - bias;
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return false;
  size_t file_size = 0;
  const char* image = elf_rawfile(elf, &file_size);
  if (image == nullptr) return false;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_LOAD) {
      continue;
    }
    if (vaddr < phdr.p_vaddr || vaddr - phdr.p_vaddr >= phdr.p_filesz ||
        phdr.p_filesz - (vaddr - phdr.p_vaddr) < sizeof(*out)) {
      continue;
    }
    const uint64_t offset = phdr.p_offset + (vaddr - phdr.p_vaddr);
    if (offset > file_size || file_size - offset < sizeof(*out)) return false;
    std::memcpy(out, image + offset, sizeof(*out));
    return true;
  }
  return false;
}

size_t Unwinder::Unwind(RawSample* sample, UnwindMethod* method) {
  stats_.samples++;
  UnwindMethod ignored;
  if (method == nullptr) method = &ignored;
  *method = UnwindMethod::kLeafOnly;
  if (sample->regs_abi != PERF_SAMPLE_REGS_ABI_64 || sample->user_regs.size() != kNumUserRegs) {
    stats_.no_regs++;
    ReleaseDwarfPayload(sample);
    return sample->user_ips.size();
  }
  std::vector<uint64_t> frames;
  frames.reserve(32);
  current_ = sample;
  frames_ = &frames;
  // 0: reached the outermost frame; -1: the walk failed (after the frames it reported);
  // DWARF_CB_ABORT: OnFrame stopped it (kMaxFrames or a zero PC).
  int rc = dwfl_getthread_frames(dwfl_.get(), static_cast<pid_t>(sample->tid), &Callbacks::OnFrame,
                                 this);
  current_ = nullptr;
  frames_ = nullptr;
  if (frames.empty()) frames.push_back(sample->user_regs[kRegIp]);  // Never lose the IP.
  if (rc == 0) {
    stats_.complete++;
  } else {
    stats_.truncated++;
  }
  if (frames.size() >= 2) {
    stats_.unwound++;
    *method = rc == 0 ? UnwindMethod::kCfiToRoot : UnwindMethod::kCfi;
  } else if (std::vector<uint64_t> fp = FramePointerWalk(*sample, kMaxFrames); fp.size() >= 2) {
    stats_.fp_fallback++;
    *method = UnwindMethod::kFramePointer;
    frames = std::move(fp);
  } else {
    stats_.ip_only++;
  }
  stats_.frames += frames.size();
  sample->user_ips = std::move(frames);
  ReleaseDwarfPayload(sample);
  return sample->user_ips.size();
}

void ReleaseDwarfPayload(RawSample* sample) {
  std::vector<uint64_t>().swap(sample->user_regs);
  std::vector<uint8_t>().swap(sample->user_stack);
}

std::vector<uint64_t> FramePointerWalk(const RawSample& sample, size_t max_frames) {
  std::vector<uint64_t> frames;
  if (sample.regs_abi != PERF_SAMPLE_REGS_ABI_64 || sample.user_regs.size() != kNumUserRegs) {
    return frames;
  }
  frames.push_back(sample.user_regs[kRegIp]);
  const uint64_t sp = sample.user_regs[kRegSp];
  const uint64_t size = sample.user_stack.size();
  // Reads the u64 at `address` from the copy, which starts at SP.
  auto read = [&](uint64_t address, uint64_t* out) {
    if (address < sp || address - sp > size || size - (address - sp) < sizeof(*out)) return false;
    std::memcpy(out, sample.user_stack.data() + (address - sp), sizeof(*out));
    return true;
  };
  uint64_t bp = sample.user_regs[kRegBp];
  while (frames.size() < max_frames) {
    uint64_t next_bp = 0, ret = 0;
    if (bp % 8 != 0 || !read(bp, &next_bp) || !read(bp + 8, &ret) || !PlausibleUserAddress(ret)) {
      break;
    }
    frames.push_back(ret);
    if (next_bp <= bp) break;  // Frames live at rising addresses; anything else is not a chain.
    bp = next_bp;
  }
  return frames;
}

size_t UnwindByFramePointers(RawSample* sample, UnwindMethod* method) {
  std::vector<uint64_t> fp = FramePointerWalk(*sample, Unwinder::kMaxFrames);
  if (!fp.empty()) sample->user_ips = std::move(fp);
  if (method != nullptr) {
    *method = sample->user_ips.size() >= 2 ? UnwindMethod::kFramePointer : UnwindMethod::kLeafOnly;
  }
  ReleaseDwarfPayload(sample);
  return sample->user_ips.size();
}

}  // namespace fs::profile
