#include "src/symbolize/symbolizer.h"

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

#include "src/base/clock.h"
#include "src/symbolize/kernel_symbols.h"

namespace fs::profile {

// A module's ELF symbol table (.symtab, else .dynsym) and its CFI FDE ranges (.eh_frame,
// .debug_frame when in the ELF itself), each sorted by address, in module-relative (load-bias-free)
// addresses = ELF virtual addresses, so processes mapping the same file share it.
// dwfl_module_addrinfo scans the whole table on every call (most of the cold cost on libc:
// ~3k symbols, ~300 us a lookup); this makes a lookup a binary search.
struct SymbolIndex {
  struct Fde {
    uint64_t start = 0, end = 0;  // [start, end): one function's code (FDE initial_location..).
  };
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

  // The FDE covering `offset`, nullptr if none. FDEs do not nest; look back a little anyway in
  // case a zero-length or overlapping one precedes the real one. The FDE table is read from
  // `module` (this file, in any Dwfl) on the first call: most modules never need it.
  const Fde* FindFde(uint64_t offset, Dwfl_Module* module) const {
    std::call_once(fdes_once, [&] { fdes = BuildFdeIndex(module); });
    auto it = std::upper_bound(fdes.begin(), fdes.end(), offset,
                               [](uint64_t o, const Fde& f) { return o < f.start; });
    for (int steps = 0; it != fdes.begin() && steps < 4; ++steps) {
      --it;
      if (offset < it->end) return &*it;
    }
    return nullptr;
  }

 private:
  static std::vector<Fde> BuildFdeIndex(Dwfl_Module* module);
  mutable std::once_flag fdes_once;
  mutable std::vector<Fde> fdes;  // Sorted by start.
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

// Reads one DW_EH_PE-encoded value at *p (< end). `field_vaddr` is the ELF vaddr of *p (for
// pcrel). False for encodings we do not handle (textrel, datarel, funcrel, aligned, indirect).
bool ReadEncoded(const uint8_t** p, const uint8_t* end, uint8_t encoding, uint64_t field_vaddr,
                 int address_size, uint64_t* value) {
  if (encoding == DW_EH_PE_omit) return false;
  const uint8_t* q = *p;
  uint64_t v = 0;
  auto fixed = [&](int n, bool is_signed) {
    if (end - q < n) return false;
    uint64_t raw = 0;
    for (int i = 0; i < n; ++i) raw |= static_cast<uint64_t>(q[i]) << (8 * i);  // Little endian.
    if (is_signed && n < 8 && (raw >> (8 * n - 1)) != 0) raw |= ~0ULL << (8 * n);
    v = raw;
    q += n;
    return true;
  };
  auto leb = [&](bool is_signed) {
    int shift = 0;
    uint8_t byte = 0x80;
    while (q < end && (byte & 0x80) != 0 && shift < 64) {
      byte = *q++;
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
    }
    if ((byte & 0x80) != 0) return false;
    if (is_signed && shift < 64 && (byte & 0x40) != 0) v |= ~0ULL << shift;
    return true;
  };
  bool ok = false;
  switch (encoding & 0x0f) {
    case DW_EH_PE_absptr:
      ok = fixed(address_size, false);
      break;
    case DW_EH_PE_uleb128:
      ok = leb(false);
      break;
    case DW_EH_PE_udata2:
      ok = fixed(2, false);
      break;
    case DW_EH_PE_udata4:
      ok = fixed(4, false);
      break;
    case DW_EH_PE_udata8:
      ok = fixed(8, false);
      break;
    case DW_EH_PE_sleb128:
      ok = leb(true);
      break;
    case DW_EH_PE_sdata2:
      ok = fixed(2, true);
      break;
    case DW_EH_PE_sdata4:
      ok = fixed(4, true);
      break;
    case DW_EH_PE_sdata8:
      ok = fixed(8, true);
      break;
    default:
      return false;
  }
  if (!ok) return false;
  switch (encoding & 0xf0) {
    case DW_EH_PE_absptr:
      break;
    case DW_EH_PE_pcrel:
      v += field_vaddr;
      break;
    default:
      return false;
  }
  *p = q;
  *value = v;
  return true;
}

// The pointer encoding a CIE gives its FDEs (augmentation 'R'); absptr without one.
bool FdeEncoding(const Dwarf_CIE& cie, uint64_t aug_vaddr, int address_size, uint8_t* encoding) {
  *encoding = DW_EH_PE_absptr;
  const char* aug = cie.augmentation != nullptr ? cie.augmentation : "";
  if (aug[0] != 'z') return aug[0] == '\0';  // Unknown augmentation: cannot find the data.
  if (cie.augmentation_data == nullptr) return false;
  const uint8_t* p = cie.augmentation_data;
  const uint8_t* end = p + cie.augmentation_data_size;
  for (const char* a = aug + 1; *a != '\0'; ++a) {
    switch (*a) {
      case 'R':
        if (p >= end) return false;
        *encoding = *p++;
        break;
      case 'L':
        if (p >= end) return false;
        ++p;
        break;
      case 'P': {
        if (p >= end) return false;
        uint8_t personality = *p++;
        uint64_t ignored = 0;
        // The personality pointer's own encoding; its application does not matter here.
        if (!ReadEncoded(&p, end, personality & 0x0f, aug_vaddr, address_size, &ignored)) {
          return false;
        }
        break;
      }
      case 'S':
      case 'B':
        break;
      default:
        return false;
    }
  }
  return true;
}

// Appends the [start, end) of every FDE in a CFI section (.eh_frame or .debug_frame) of `elf`.
void ReadFdes(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, bool eh_frame,
              std::vector<SymbolIndex::Fde>* out) {
  if (shdr.sh_type == SHT_NOBITS || (shdr.sh_flags & SHF_COMPRESSED) != 0) return;
  Elf_Data* data = elf_getdata(scn, nullptr);
  const auto* ident = reinterpret_cast<const unsigned char*>(elf_getident(elf, nullptr));
  if (data == nullptr || data->d_buf == nullptr || ident == nullptr) return;
  const int address_size = ident[EI_CLASS] == ELFCLASS32 ? 4 : 8;
  const auto* base = static_cast<const uint8_t*>(data->d_buf);
  auto vaddr_of = [&](const uint8_t* p) { return shdr.sh_addr + static_cast<uint64_t>(p - base); };
  std::unordered_map<Dwarf_Off, int> cie_encodings;  // CIE offset -> encoding, -1: unusable.
  auto encoding_of = [&](Dwarf_Off cie_offset) {
    if (auto it = cie_encodings.find(cie_offset); it != cie_encodings.end()) return it->second;
    Dwarf_CFI_Entry cie;
    Dwarf_Off next = 0;
    uint8_t encoding = 0;
    int result = -1;
    if (dwarf_next_cfi(ident, data, eh_frame, cie_offset, &next, &cie) == 0 &&
        dwarf_cfi_cie_p(&cie) &&
        FdeEncoding(cie.cie,
                    cie.cie.augmentation_data != nullptr ? vaddr_of(cie.cie.augmentation_data) : 0,
                    address_size, &encoding)) {
      result = encoding;
    }
    cie_encodings.emplace(cie_offset, result);
    return result;
  };
  Dwarf_Off offset = 0;
  for (int guard = 0; guard < 10000000; ++guard) {
    Dwarf_CFI_Entry entry;
    Dwarf_Off next = 0;
    if (dwarf_next_cfi(ident, data, eh_frame, offset, &next, &entry) != 0) break;
    if (next <= offset) break;
    offset = next;
    if (dwarf_cfi_cie_p(&entry)) continue;
    int encoding = encoding_of(entry.fde.CIE_pointer);
    if (encoding < 0) continue;
    const uint8_t* p = entry.fde.start;
    uint64_t start = 0, range = 0;
    if (!ReadEncoded(&p, entry.fde.end, static_cast<uint8_t>(encoding), vaddr_of(p), address_size,
                     &start) ||
        !ReadEncoded(&p, entry.fde.end, static_cast<uint8_t>(encoding & 0x0f), 0, address_size,
                     &range)) {
      continue;
    }
    // Zero starts are FDEs of code the linker discarded (.debug_frame keeps them).
    if (start == 0 || range == 0 || start + range < start) continue;
    out->push_back({start, start + range});
  }
}

// FDE ranges from the module's main ELF (ELF vaddrs): its .eh_frame (kept by strip), and a
// .debug_frame if the file has an uncompressed one.
}  // namespace

std::vector<SymbolIndex::Fde> SymbolIndex::BuildFdeIndex(Dwfl_Module* module) {
  std::vector<SymbolIndex::Fde> fdes;
  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module, &bias);
  size_t shstrndx = 0;
  if (elf == nullptr || elf_getshdrstrndx(elf, &shstrndx) != 0) return fdes;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (name == nullptr) continue;
    if (strcmp(name, ".eh_frame") == 0) ReadFdes(elf, scn, shdr, /*eh_frame=*/true, &fdes);
    if (strcmp(name, ".debug_frame") == 0) ReadFdes(elf, scn, shdr, /*eh_frame=*/false, &fdes);
  }
  std::sort(fdes.begin(), fdes.end(), [](const SymbolIndex::Fde& a, const SymbolIndex::Fde& b) {
    return a.start != b.start ? a.start < b.start : a.end > b.end;
  });
  fdes.erase(std::unique(fdes.begin(), fdes.end(),
                         [](const SymbolIndex::Fde& a, const SymbolIndex::Fde& b) {
                           return a.start == b.start;
                         }),
             fdes.end());
  return fdes;
}

namespace {

std::shared_ptr<const SymbolIndex> BuildSymbolIndex(Dwfl_Module* module, Dwarf_Addr bias) {
  auto index = std::make_shared<SymbolIndex>();
  // Names stay in the module's string table until the index is built: sorting (and dropping
  // aliases) moves no strings.
  struct Candidate {
    uint64_t start;
    uint64_t size;
    const char* name;
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
    candidates.push_back({addr - bias, sym.st_size, name, BindingRank(GELF_ST_BIND(sym.st_info))});
  }
  // Aliases (getpid / __getpid): keep the global, sized one.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.start != b.start) return a.start < b.start;
    if ((a.size == 0) != (b.size == 0)) return a.size != 0;
    return a.rank < b.rank;
  });
  index->entries.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    if (!index->entries.empty() && index->entries.back().start == c.start) continue;
    index->entries.push_back({c.start, c.size, c.name});
  }
  return index;
}

std::string Hex(const unsigned char* bytes, int len);

// Frames of inlined chains already walked, keyed by (innermost DIE offset, ELF symbol): every pc
// of one inlined instance has the same callers (dwarf_getscopes_die walks the CU from its start).
// frames[0].file/line are the looked-up pc's own and are filled per lookup.
using InlineChains = std::unordered_map<std::string, std::vector<Frame>>;

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

// One offline Dwfl for the whole framescope process: every (build-id, path) ELF that some process
// maps is opened here once, with its debug info (a separate /usr/lib/debug file, possibly with
// compressed sections: libc6-dbg). The per-process Dwfl only maps addresses to modules; without
// this, each process's Dwfl would find, open and inflate libc's DWARF again.
// Lock order: SharedDwfl::mu before SharedCache::mu.
struct SharedDwfl {
  struct Module {
    Dwfl_Module* module = nullptr;  // nullptr: the file cannot be opened or is another build.
    GElf_Addr bias = 0;
    InlineChains chains;
  };
  std::mutex mu;
  Dwfl* dwfl = nullptr;
  std::unordered_map<std::string, Module> modules;  // build-id \0 path.

  // Needs mu held.
  // The returned module stays valid until Clear().
  Module* Get(const std::string& build_id, const std::string& path) {
    std::string key = build_id + '\0' + path;
    if (auto it = modules.find(key); it != modules.end()) return &it->second;
    Module m;
    if (dwfl == nullptr) {
      static char* debuginfo_path = nullptr;
      static const Dwfl_Callbacks kOffline = {
          .find_elf = dwfl_build_id_find_elf,
          .find_debuginfo = dwfl_standard_find_debuginfo,
          .section_address = dwfl_offline_section_address,
          .debuginfo_path = &debuginfo_path,
      };
      dwfl = dwfl_begin(&kOffline);
    }
    if (dwfl != nullptr && !path.empty() && path[0] == '/') {
      dwfl_report_begin_add(dwfl);
      Dwfl_Module* module = dwfl_report_offline(dwfl, path.c_str(), path.c_str(), -1);
      dwfl_report_end(dwfl, nullptr, nullptr);
      GElf_Addr bias = 0;
      const unsigned char* bits = nullptr;
      GElf_Addr build_id_vaddr = 0;
      if (module != nullptr && dwfl_module_getelf(module, &bias) != nullptr) {
        int len = dwfl_module_build_id(module, &bits, &build_id_vaddr);
        // The file at `path` now may not be what the process mapped (replaced, other mount
        // namespace): then the per-process module (read as the process sees it) is used.
        if (len > 0 && Hex(bits, len) == build_id) {
          m.module = module;
          m.bias = bias;
        }
      }
    }
    return &modules.emplace(std::move(key), std::move(m)).first->second;
  }

  // Needs mu held.
  void Clear() {
    modules.clear();
    if (dwfl != nullptr) dwfl_end(dwfl);
    dwfl = nullptr;
  }
};

SharedDwfl& GetSharedDwfl() {
  static auto* shared = new SharedDwfl();  // Never destroyed, like the cache.
  return *shared;
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
                               int line, const std::string& symbol, InlineChains* chains) {
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
  // Not inlined (always so at -O0): the function itself is the only frame. dwarf_getscopes_die
  // walks the CU from its start to find the parents: skip that walk when there are none to find.
  if (dwarf_tag(&innermost) == DW_TAG_subprogram) {
    frames.push_back(
        Frame{symbol.empty() ? DieFunctionName(&innermost) : symbol, file, line, false});
    return frames;
  }

  std::string chain_key;
  if (chains != nullptr) {
    const Dwarf_Off die_offset = dwarf_dieoffset(&innermost);
    chain_key.assign(reinterpret_cast<const char*>(&die_offset), sizeof(die_offset));
    chain_key += symbol;
    if (auto it = chains->find(chain_key); it != chains->end()) {
      frames = it->second;
      if (!frames.empty()) {
        frames[0].file = file;
        frames[0].line = line;
      }
      return frames;
    }
  }

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
  if (chains != nullptr) chains->emplace(std::move(chain_key), frames);
  return frames;
}

// Frames for `pc` (an address of `module`, whose load bias is `bias`); `path` names the module in
// the CFI-based name of code no symbol covers.
std::vector<Frame> SymbolizeInModule(Dwfl_Module* module, Dwarf_Addr pc, Dwarf_Addr bias,
                                     const SymbolIndex& symbols, const std::string& path,
                                     InlineChains* chains) {
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

  std::vector<Frame> frames = DwarfFrames(module, pc, file, line, symbol, chains);
  if (frames.empty() && (!symbol.empty() || !file.empty())) {
    frames.push_back(Frame{symbol, file, line, false});
  }
  // No name at all (stripped code): name it after the start of the CFI FDE that covers it, so
  // every address of one function gives the same frame.
  const bool named =
      std::any_of(frames.begin(), frames.end(), [](const Frame& f) { return !f.function.empty(); });
  if (!named) {
    if (const SymbolIndex::Fde* fde = symbols.FindFde(pc - bias, module); fde != nullptr) {
      char start[32];
      snprintf(start, sizeof(start), "+0x%" PRIx64, fde->start);
      if (frames.empty()) frames.push_back(Frame{});
      frames.front().function = Basename(path) + start;
      frames.front().from_cfi = true;
    }
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

StatusOr<std::unique_ptr<Symbolizer>> Symbolizer::ForProcess(pid_t pid) {
  const std::string where = "symbolizing process " + std::to_string(pid);
  if (pid <= 0) return Err(where + ": invalid pid");
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    return Err(where + ": no such process (it is not running or has exited)");
  }
  ASSIGN_OR_RETURN(std::vector<Mapping> mappings, ReadMappings(pid, where));
  ASSIGN_OR_RETURN(DwflPtr dwfl, ReportProcessModules(pid, where));
  return std::unique_ptr<Symbolizer>(new Symbolizer(pid, std::move(dwfl), std::move(mappings)));
}

StatusOr<std::vector<Symbolizer::Mapping>> Symbolizer::ReadMappings(pid_t pid,
                                                                    const std::string& where) {
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
    m.executable = perms[2] == 'x';
    if (path_pos > 0 && static_cast<size_t>(path_pos) < text.size()) m.path = text.substr(path_pos);
    mappings.push_back(std::move(m));
  }
  if (mappings.empty()) {
    return Err(where + ": " + maps_path + " is empty (a zombie or kernel thread has no memory)");
  }
  std::sort(mappings.begin(), mappings.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  return mappings;
}

Symbolizer::Symbolizer(pid_t pid, DwflPtr dwfl, std::vector<Mapping> mappings)
    : pid_(pid), dwfl_(std::move(dwfl)), mappings_(std::move(mappings)) {}

Symbolizer::~Symbolizer() = default;

void Symbolizer::ClearSharedCache() {
  SharedDwfl& shared = GetSharedDwfl();
  std::lock_guard<std::mutex> dwfl_lock(shared.mu);
  shared.Clear();
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
  if (result.module != "[unknown]") cache.emplace(address, result);
  return result;
}

Dwfl_Module* Symbolizer::ModuleAt(uint64_t pc) const {
  Dwfl_Module* module = dwfl_addrmodule(dwfl_.get(), pc);
  Dwarf_Addr start = 0, end = 0;
  if (module == nullptr || dwfl_module_info(module, nullptr, &start, &end, nullptr, nullptr,
                                            nullptr, nullptr) == nullptr) {
    return nullptr;
  }
  return start <= pc && pc < end ? module : nullptr;
}

bool Symbolizer::IsExecutable(uint64_t address) {
  // The frames of a stack mostly fall in a few mappings (the program, libc, one library): the
  // last one found answers most checks without a search.
  if (last_found_ < mappings_.size()) {
    const Mapping& last = mappings_[last_found_];
    if (last.start <= address && address < last.end) return last.executable;
  }
  const Mapping* m = FindMapping(address);
  if (m == nullptr && RereadMappings()) m = FindMapping(address);
  if (m == nullptr) return false;
  last_found_ = static_cast<size_t>(m - mappings_.data());
  return m->executable;
}

const Symbolizer::Mapping* Symbolizer::FindMapping(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (it == mappings_.begin() || address >= std::prev(it)->end) return nullptr;
  return &*std::prev(it);
}

bool Symbolizer::RereadMappings() {
  const int64_t now = MonotonicNs();
  if (last_reread_ns_ != 0 && now - last_reread_ns_ < kMapsRereadIntervalNs) return false;
  last_reread_ns_ = now;
  ++stats_.maps_rereads;
  const std::string where = "re-reading the maps of process " + std::to_string(pid_);
  StatusOr<std::vector<Mapping>> mappings = ReadMappings(pid_, where);
  // Gone (exited while or before its samples are symbolized): what was read before stays.
  if (!mappings.ok()) return false;
  // Mappings read before that nothing now overlaps stay too: samples taken before a library was
  // unloaded (dlclose) are in its code still, not in data.
  std::vector<Mapping> merged = std::move(mappings).value();
  const size_t current = merged.size();
  for (const Mapping& old : mappings_) {
    auto next = std::lower_bound(merged.begin(), merged.begin() + current, old.end,
                                 [](const Mapping& m, uint64_t end) { return m.start < end; });
    if (next == merged.begin() || std::prev(next)->end <= old.start) merged.push_back(old);
  }
  std::sort(merged.begin(), merged.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  mappings_ = std::move(merged);
  // On failure, addresses of new modules still get module + offset from the maps.
  (void)ReportNewModules(dwfl_.get(), pid_, where);
  return true;
}

std::string Symbolizer::Describe(uint64_t address, bool is_return_address) {
  Symbolized s = Lookup(address, is_return_address);
  if (!s.frames.empty() && !s.frames.front().function.empty()) return s.frames.front().function;
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
  if (const Mapping* m = FindMapping(address); m != nullptr) {
    out->module = m->path.empty() ? "[anon]" : m->path;
    out->module_start = m->start;
    out->module_end = m->end;
    out->module_offset = address - m->start + m->offset;
    return;
  }
  out->module = "[unknown]";
  out->module_offset = address;
}

std::shared_ptr<const SymbolIndex> Symbolizer::SymbolsFor(Dwfl_Module* module, Dwfl_Module* source,
                                                          uint64_t bias, const Symbolized& where) {
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
    index = BuildSymbolIndex(source, bias);
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
  Dwfl_Module* module = address < kKernelStart ? ModuleAt(pc) : nullptr;
  // Outside every mapping known: mapped since (dlopen)?
  if (module == nullptr && address < kKernelStart && FindMapping(pc) == nullptr &&
      RereadMappings()) {
    module = ModuleAt(pc);
  }
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
  bool done = false;
  if (!out.build_id.empty()) {
    // Debug info from the process-wide Dwfl (opened once per file), at that Dwfl's bias.
    SharedDwfl& shared = GetSharedDwfl();
    std::lock_guard<std::mutex> lock(shared.mu);
    SharedDwfl::Module* m = shared.Get(out.build_id, out.module);
    if (m->module != nullptr) {
      out.frames =
          SymbolizeInModule(m->module, pc_offset + m->bias, m->bias,
                            *SymbolsFor(module, m->module, m->bias, out), out.module, &m->chains);
      done = true;
    }
  }
  if (!done) {
    out.frames =
        SymbolizeInModule(module, pc, bias, *SymbolsFor(module, module, bias, out), out.module,
                          /*chains=*/nullptr);
  }
  if (!key.empty()) {
    SharedCache& cache = GetSharedCache();
    std::lock_guard<std::mutex> lock(cache.mu);
    cache.frames.emplace(std::move(key), out.frames);
  }
  return out;
}

}  // namespace fs::profile
