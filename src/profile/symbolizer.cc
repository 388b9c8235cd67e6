#include "src/profile/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "src/profile/kernel_symbols.h"

namespace fs::profile {

// A module's ELF symbol table (.symtab, else .dynsym) sorted by address, in module-relative
// (load-bias-free) addresses so processes mapping the same file share it.
// dwfl_module_addrinfo scans the whole table on every call (most of the cold cost on libc:
// ~3k symbols, ~300 us a lookup); this makes a lookup a binary search.
struct SymbolIndex {
  struct Entry {
    uint64_t start = 0;
    uint64_t size = 0;  // 0: sizeless (hand-written assembly); covers up to the next symbol.
    std::string name;   // Mangled; demangled when a lookup returns it.
  };
  std::vector<Entry> entries;

  // The symbol containing `offset`: a sized symbol that covers it, else the nearest preceding
  // sizeless one. nullptr if none.
  const Entry* Find(uint64_t offset) const {
    auto it = std::upper_bound(entries.begin(), entries.end(), offset,
                               [](uint64_t o, const Entry& e) { return o < e.start; });
    const Entry* sizeless = nullptr;
    // Look back a little: a sizeless label inside a sized function must not hide the function.
    for (int steps = 0; it != entries.begin() && steps < 16; ++steps) {
      --it;
      if (it->size == 0) {
        if (sizeless == nullptr && steps == 0) sizeless = &*it;
      } else if (offset < it->start + it->size) {
        return &*it;
      }
    }
    return sizeless;
  }
};

namespace {

// x86-64 and aarch64 both put the kernel in the upper half of the address space.
constexpr uint64_t kKernelStart = 0xffff800000000000ULL;

int BindingRank(unsigned char binding) {
  switch (binding) {
    case STB_GLOBAL:
      return 0;
    case STB_WEAK:
      return 1;
    default:
      return 2;
  }
}

// True if section `shndx` of the module's ELF holds instructions.
bool InExecutableSection(Dwfl_Module* module, GElf_Word shndx) {
  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module, &bias);
  if (elf == nullptr || shndx == SHN_UNDEF || shndx >= SHN_LORESERVE) return false;
  Elf_Scn* scn = elf_getscn(elf, shndx);
  GElf_Shdr shdr;
  if (scn == nullptr || gelf_getshdr(scn, &shdr) == nullptr) return false;
  return (shdr.sh_flags & SHF_EXECINSTR) != 0;
}

std::shared_ptr<const SymbolIndex> BuildSymbolIndex(Dwfl_Module* module, Dwarf_Addr bias) {
  auto index = std::make_shared<SymbolIndex>();
  struct Candidate {
    SymbolIndex::Entry entry;
    int rank;
  };
  std::vector<Candidate> candidates;
  int count = dwfl_module_getsymtab(module);
  for (int i = 1; i < count; ++i) {  // Entry 0 is the null symbol.
    GElf_Sym sym;
    GElf_Addr addr = 0;
    GElf_Word shndx = 0;
    const char* name = dwfl_module_getsym_info(module, i, &sym, &addr, &shndx, nullptr, nullptr);
    if (name == nullptr || name[0] == '\0' || sym.st_shndx == SHN_UNDEF) continue;
    const int type = GELF_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE) continue;
    if (type == STT_NOTYPE && sym.st_size == 0 && sym.st_shndx == SHN_ABS) continue;
    // Untyped symbols count only in code: linker markers such as _end, _edata or __bss_start
    // sit after data and would otherwise "own" every bogus return address past the text.
    if (type == STT_NOTYPE && !InExecutableSection(module, shndx)) continue;
    candidates.push_back(
        {{addr - bias, sym.st_size, name}, BindingRank(GELF_ST_BIND(sym.st_info))});
  }
  // Aliases (getpid / __getpid): keep the global, sized one.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.entry.start != b.entry.start) return a.entry.start < b.entry.start;
    if ((a.entry.size == 0) != (b.entry.size == 0)) return a.entry.size != 0;
    return a.rank < b.rank;
  });
  for (Candidate& c : candidates) {
    if (!index->entries.empty() && index->entries.back().start == c.entry.start) continue;
    index->entries.push_back(std::move(c.entry));
  }
  return index;
}

// Process-wide frames cache: (build-id, path, pc offset) -> frames. See symbolizer.h for why the
// path is part of the key.
struct SharedCache {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<Frame>> frames;
  std::unordered_map<std::string, std::shared_ptr<const SymbolIndex>> symbols;  // build-id, path
};

SharedCache& GetSharedCache() {
  static auto* cache = new SharedCache();  // Never destroyed: usable from static destructors.
  return *cache;
}

std::string SharedKey(const std::string& build_id, const std::string& module, uint64_t pc_offset) {
  std::string key = build_id;
  key.push_back('\0');
  key += module;
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(&pc_offset), sizeof(pc_offset));
  return key;
}

std::string Hex(const unsigned char* bytes, int len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(len) * 2);
  for (int i = 0; i < len; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* DieString(Dwarf_Die* die, unsigned int attr_name) {
  Dwarf_Attribute attr;
  // _integrate follows DW_AT_abstract_origin and DW_AT_specification, so inlined instances and
  // out-of-class member definitions get their names.
  if (dwarf_attr_integrate(die, attr_name, &attr) == nullptr) return nullptr;
  return dwarf_formstring(&attr);
}

// Qualified, demangled name of a subprogram or inlined-subroutine DIE.
std::string DieFunctionName(Dwarf_Die* die) {
  const char* linkage = DieString(die, DW_AT_linkage_name);
  if (linkage == nullptr) linkage = DieString(die, DW_AT_MIPS_linkage_name);
  if (linkage != nullptr) return Demangle(linkage);
  const char* name = DieString(die, DW_AT_name);
  return name != nullptr ? name : "";
}

// Call site of an inlined-subroutine DIE: the file:line in its caller.
void CallSite(Dwarf_Die* inlined, std::string* file, int* line) {
  file->clear();
  *line = 0;
  Dwarf_Attribute attr;
  Dwarf_Word value;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0) {
    *line = static_cast<int>(value);
  }
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) != 0) return;
  Dwarf_Die cu;
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  if (dwarf_diecu(inlined, &cu, nullptr, nullptr) == nullptr) return;
  if (dwarf_getsrcfiles(&cu, &files, &nfiles) != 0 || value >= nfiles) return;
  const char* name = dwarf_filesrc(files, value, nullptr, nullptr);
  if (name != nullptr) *file = name;
}

// Function frames for `pc` (a module-relative address) from DWARF, innermost first. `file` and
// `line` are the line-table position of `pc`; `symbol` (may be "") names the outermost function
// when the ELF symbol table has it.
std::vector<Frame> DwarfFrames(Dwfl_Module* module, Dwarf_Addr pc, const std::string& file,
                               int line, const std::string& symbol) {
  std::vector<Frame> frames;
  Dwarf_Addr bias = 0;
  Dwarf_Die* cudie = dwfl_module_addrdie(module, pc, &bias);
  if (cudie == nullptr) return frames;
  Dwarf_Die* scopes = nullptr;
  int nscopes = dwarf_getscopes(cudie, pc - bias, &scopes);
  // The innermost function-like scope. Past an inlined instance, dwarf_getscopes continues with
  // the *abstract* definition's parents, so the callers come from dwarf_getscopes_die below.
  Dwarf_Die innermost;
  bool found = false;
  for (int i = 0; i < nscopes; ++i) {
    int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
      innermost = scopes[i];
      found = true;
      break;
    }
  }
  free(scopes);
  if (!found) return frames;

  Dwarf_Die* chain = nullptr;
  int nchain = dwarf_getscopes_die(&innermost, &chain);
  std::string cur_file = file;
  int cur_line = line;
  for (int i = 0; i < nchain; ++i) {
    int tag = dwarf_tag(&chain[i]);
    if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
    Frame frame;
    frame.function = DieFunctionName(&chain[i]);
    frame.file = cur_file;
    frame.line = cur_line;
    frame.inlined = tag == DW_TAG_inlined_subroutine;
    if (tag == DW_TAG_subprogram) {
      if (!symbol.empty()) frame.function = symbol;
      frames.push_back(std::move(frame));
      break;
    }
    frames.push_back(std::move(frame));
    CallSite(&chain[i], &cur_file, &cur_line);
  }
  free(chain);
  // An inlined chain whose enclosing subprogram was not found still needs its real function.
  if (!frames.empty() && frames.back().inlined && !symbol.empty()) {
    frames.push_back(Frame{symbol, cur_file, cur_line, false});
  }
  return frames;
}

std::vector<Frame> SymbolizeInModule(Dwfl_Module* module, Dwarf_Addr pc, Dwarf_Addr bias,
                                     const SymbolIndex& symbols) {
  std::string symbol;
  if (const SymbolIndex::Entry* entry = symbols.Find(pc - bias); entry != nullptr) {
    symbol = Demangle(entry->name);
  }

  std::string file;
  int line = 0;
  if (Dwfl_Line* dwfl_line = dwfl_module_getsrc(module, pc); dwfl_line != nullptr) {
    const char* src = dwfl_lineinfo(dwfl_line, nullptr, &line, nullptr, nullptr, nullptr);
    if (src != nullptr) file = src;
  }

  std::vector<Frame> frames = DwarfFrames(module, pc, file, line, symbol);
  if (frames.empty() && (!symbol.empty() || !file.empty())) {
    frames.push_back(Frame{symbol, file, line, false});
  }
  return frames;
}

// Reads a /proc file; returns 0 or the errno of the failing open/read (the permission check
// for /proc/<pid>/maps happens on read, not open).
int ReadProcFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return 0;
}

}  // namespace

std::string Demangle(const std::string& name) {
  if (name.size() < 2 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* demangled = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) {
    free(demangled);
    return name;
  }
  std::string out = demangled;
  free(demangled);
  return out;
}

void Symbolizer::DwflDeleter::operator()(::Dwfl* dwfl) const { dwfl_end(dwfl); }

StatusOr<std::unique_ptr<Symbolizer>> Symbolizer::ForProcess(pid_t pid) {
  const std::string where = "symbolizing process " + std::to_string(pid);
  if (pid <= 0) return Err(where + ": invalid pid");
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    return Err(where + ": no such process (it is not running or has exited)");
  }
  const std::string maps_path = "/proc/" + std::to_string(pid) + "/maps";
  std::string maps;
  if (int err = ReadProcFile(maps_path, &maps); err != 0) {
    if (err == EACCES || err == EPERM) {
      return Err(where + ": permission denied reading " + maps_path +
                 "; run framescope as the same user as the process, or as root / with "
                 "CAP_SYS_PTRACE");
    }
    if (err == ENOENT || err == ESRCH) {
      return Err(where + ": no such process (it is not running or has exited)");
    }
    return Err(where + ": reading " + maps_path + ": " + strerror(err));
  }

  std::vector<Mapping> mappings;
  std::istringstream lines(maps);
  std::string text;
  while (std::getline(lines, text)) {
    // 7f12a000-7f12b000 r-xp 00001000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6
    Mapping m;
    char perms[8] = {};
    unsigned long long start = 0, end = 0, offset = 0;  // NOLINT(runtime/int): sscanf's %llx.
    int path_pos = 0;
    if (sscanf(text.c_str(), "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset,
               &path_pos) < 4) {
      continue;
    }
    m.start = start;
    m.end = end;
    m.offset = offset;
    if (path_pos > 0 && static_cast<size_t>(path_pos) < text.size()) m.path = text.substr(path_pos);
    mappings.push_back(std::move(m));
  }
  if (mappings.empty()) {
    return Err(where + ": " + maps_path + " is empty (a zombie or kernel thread has no memory)");
  }
  std::sort(mappings.begin(), mappings.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });

  // Static: libdwfl keeps a pointer to the callbacks for the Dwfl's lifetime.
  static char* debuginfo_path = nullptr;
  static const Dwfl_Callbacks kCallbacks = {
      .find_elf = dwfl_linux_proc_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = nullptr,
      .debuginfo_path = &debuginfo_path,
  };
  std::unique_ptr<::Dwfl, DwflDeleter> dwfl(dwfl_begin(&kCallbacks));
  if (dwfl == nullptr) return Err(where + ": dwfl_begin: " + dwfl_errmsg(-1));
  dwfl_report_begin(dwfl.get());
  int rc = dwfl_linux_proc_report(dwfl.get(), pid);
  if (rc != 0) {
    std::string why = rc > 0 ? strerror(rc) : dwfl_errmsg(-1);
    if (rc == ENOENT || rc == ESRCH) {
      return Err(where + ": the process exited while its mappings were read");
    }
    if (rc == EACCES || rc == EPERM) {
      return Err(where + ": permission denied reading its mappings; run as the same user or root");
    }
    return Err(where + ": reading " + maps_path + ": " + why);
  }
  if (dwfl_report_end(dwfl.get(), nullptr, nullptr) != 0) {
    return Err(where + ": dwfl_report_end: " + dwfl_errmsg(-1));
  }
  return std::unique_ptr<Symbolizer>(new Symbolizer(pid, std::move(dwfl), std::move(mappings)));
}

Symbolizer::Symbolizer(pid_t pid, std::unique_ptr<::Dwfl, DwflDeleter> dwfl,
                       std::vector<Mapping> mappings)
    : pid_(pid), dwfl_(std::move(dwfl)), mappings_(std::move(mappings)) {}

Symbolizer::~Symbolizer() = default;

void Symbolizer::ClearSharedCache() {
  SharedCache& cache = GetSharedCache();
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.frames.clear();
  cache.symbols.clear();
}

Symbolized Symbolizer::Lookup(uint64_t address, bool is_return_address) {
  ++stats_.lookups;
  auto& cache = cache_[is_return_address ? 1 : 0];
  if (auto it = cache.find(address); it != cache.end()) {
    ++stats_.cache_hits;
    return it->second;
  }
  Symbolized result = LookupUncached(address, is_return_address);
  cache.emplace(address, result);
  return result;
}

std::string Symbolizer::Describe(uint64_t address, bool is_return_address) {
  Symbolized s = Lookup(address, is_return_address);
  if (s.resolved()) return s.frames.front().function;
  char offset[32];
  snprintf(offset, sizeof(offset), "+0x%" PRIx64, s.module_offset);
  return Basename(s.module) + offset;
}

void Symbolizer::FillFromMaps(uint64_t address, bool is_return_address, Symbolized* out) {
  if (address >= kKernelStart) {
    // Kernel frames: named from /proc/kallsyms when the host shows kernel addresses.
    KernelSymbol ks;
    const uint64_t pc = is_return_address ? address - 1 : address;
    if (KernelSymbols::System().Lookup(pc, &ks)) {
      out->module = ks.module;
      out->module_offset = address;
      out->frames.push_back({ks.name, "", 0, false});
      return;
    }
    out->module = "[kernel]";
    out->module_offset = address;
    return;
  }
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (it != mappings_.begin() && address < std::prev(it)->end) {
    const Mapping& m = *std::prev(it);
    out->module = m.path.empty() ? "[anon]" : m.path;
    out->module_start = m.start;
    out->module_end = m.end;
    out->module_offset = address - m.start + m.offset;
    return;
  }
  out->module = "[unknown]";
  out->module_offset = address;
}

std::shared_ptr<const SymbolIndex> Symbolizer::SymbolsFor(Dwfl_Module* module, uint64_t bias,
                                                          const Symbolized& where) {
  if (auto it = symbols_.find(module); it != symbols_.end()) return it->second;
  std::shared_ptr<const SymbolIndex> index;
  std::string key;
  if (!where.build_id.empty()) {
    key = where.build_id + '\0' + where.module;
    SharedCache& cache = GetSharedCache();
    std::lock_guard<std::mutex> lock(cache.mu);
    if (auto it = cache.symbols.find(key); it != cache.symbols.end()) index = it->second;
  }
  if (index == nullptr) {
    index = BuildSymbolIndex(module, bias);
    if (!key.empty()) {
      SharedCache& cache = GetSharedCache();
      std::lock_guard<std::mutex> lock(cache.mu);
      cache.symbols.emplace(key, index);
    }
  }
  symbols_.emplace(module, index);
  return index;
}

Symbolized Symbolizer::LookupUncached(uint64_t address, bool is_return_address) {
  Symbolized out;
  // A return address is the instruction after the call; the call itself is at address - 1.
  const uint64_t pc = is_return_address && address > 0 ? address - 1 : address;
  Dwfl_Module* module = address < kKernelStart ? dwfl_addrmodule(dwfl_.get(), pc) : nullptr;
  if (module == nullptr) {
    FillFromMaps(address, is_return_address, &out);
    return out;
  }
  Dwarf_Addr start = 0, end = 0;
  const char* name =
      dwfl_module_info(module, nullptr, &start, &end, nullptr, nullptr, nullptr, nullptr);
  out.module = name != nullptr ? name : "";
  // libdwfl names the vDSO "[vdso: <pid>]".
  if (out.module.rfind("[vdso", 0) == 0) out.module = "[vdso]";
  out.module_start = start;
  out.module_end = end;

  Dwarf_Addr bias = 0;
  if (dwfl_module_getelf(module, &bias) == nullptr) {
    // The file is gone (deleted, other mount namespace): keep module + offset from the maps.
    FillFromMaps(address, is_return_address, &out);
    return out;
  }
  out.module_offset = address - bias;
  const unsigned char* bits = nullptr;
  GElf_Addr build_id_vaddr = 0;
  int len = dwfl_module_build_id(module, &bits, &build_id_vaddr);
  if (len > 0) out.build_id = Hex(bits, len);

  const uint64_t pc_offset = pc - bias;
  std::string key;
  if (!out.build_id.empty()) {
    key = SharedKey(out.build_id, out.module, pc_offset);
    SharedCache& cache = GetSharedCache();
    std::lock_guard<std::mutex> lock(cache.mu);
    if (auto it = cache.frames.find(key); it != cache.frames.end()) {
      ++stats_.shared_cache_hits;
      out.frames = it->second;
      return out;
    }
  }
  out.frames = SymbolizeInModule(module, pc, bias, *SymbolsFor(module, bias, out));
  if (!key.empty()) {
    SharedCache& cache = GetSharedCache();
    std::lock_guard<std::mutex> lock(cache.mu);
    cache.frames.emplace(std::move(key), out.frames);
  }
  return out;
}

}  // namespace fs::profile
