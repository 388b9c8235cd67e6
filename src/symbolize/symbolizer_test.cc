#include "src/symbolize/symbolizer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/symbolize/kernel_symbols.h"
#include "src/symbolize/test_program.h"

namespace fs::profile {
namespace {

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Maps(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::unique_ptr<Symbolizer> MustSymbolize(pid_t pid) {
  auto symbolizer = Symbolizer::ForProcess(pid);
  EXPECT_TRUE(symbolizer.ok()) << symbolizer.status().message();
  return symbolizer.ok() ? std::move(symbolizer).value() : nullptr;
}

class SymbolizerTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SymbolizerTest, NoInlineFunctionHasDemangledNameFileAndLine) {
  TestProgram prog(GetParam());
  ASSERT_TRUE(prog.ready());
  auto symbolizer = MustSymbolize(prog.pid());
  ASSERT_NE(symbolizer, nullptr);

  Symbolized s = symbolizer->Lookup(prog.Value("noinline"));
  ASSERT_TRUE(s.resolved()) << s.module;
  ASSERT_EQ(s.frames.size(), 1u);
  EXPECT_EQ(s.frames[0].function, "framescope_testprog::NoInlineWork(int)");
  EXPECT_EQ(Basename(s.frames[0].file), "symbolizer_testprog.cc");
  // The entry address maps to the line of the signature or, once the prologue is scheduled into
  // the body (-O2), to the first statement right below it.
  const int decl_line = static_cast<int>(prog.Value("noinline", 1));
  EXPECT_GE(s.frames[0].line, decl_line);
  EXPECT_LE(s.frames[0].line, decl_line + 1);
  EXPECT_FALSE(s.frames[0].inlined);
  EXPECT_EQ(Basename(s.module), Basename(GetParam()));
  EXPECT_FALSE(s.build_id.empty());
  EXPECT_LE(s.module_start, prog.Value("noinline"));
  EXPECT_LT(prog.Value("noinline"), s.module_end);
  EXPECT_EQ(symbolizer->Describe(prog.Value("noinline")), "framescope_testprog::NoInlineWork(int)");

  Symbolized caller = symbolizer->Lookup(prog.Value("caller"));
  ASSERT_FALSE(caller.frames.empty());
  EXPECT_EQ(caller.frames.back().function, "framescope_testprog::InliningCaller(int)");
}

TEST_P(SymbolizerTest, ReturnAddressInsideInlinedBodyGivesInlinedFrame) {
  TestProgram prog(GetParam());
  ASSERT_TRUE(prog.ready());
  auto symbolizer = MustSymbolize(prog.pid());
  ASSERT_NE(symbolizer, nullptr);

  // The return address of a call made from the always_inline body of InlinedHelper.
  Symbolized s = symbolizer->Lookup(prog.Value("inlined_ra"), /*is_return_address=*/true);
  ASSERT_EQ(s.frames.size(), 2u) << symbolizer->Describe(prog.Value("inlined_ra"), true);
  EXPECT_NE(s.frames[0].function.find("InlinedHelper"), std::string::npos) << s.frames[0].function;
  EXPECT_TRUE(s.frames[0].inlined);
  EXPECT_EQ(Basename(s.frames[0].file), "symbolizer_testprog.cc");
  EXPECT_EQ(s.frames[0].line, static_cast<int>(prog.Value("inlined_ra", 1)));
  EXPECT_EQ(s.frames[1].function, "framescope_testprog::InliningCaller(int)");
  EXPECT_FALSE(s.frames[1].inlined);
  EXPECT_EQ(Basename(s.frames[1].file), "symbolizer_testprog.cc");
  EXPECT_EQ(s.frames[1].line, static_cast<int>(prog.Value("inlined_ra", 2)));
  EXPECT_NE(symbolizer->Describe(prog.Value("inlined_ra"), true).find("InlinedHelper"),
            std::string::npos);
  // module_offset describes the address given, not address - 1.
  EXPECT_EQ(s.module_offset, symbolizer->Lookup(prog.Value("inlined_ra")).module_offset);
}

TEST_P(SymbolizerTest, LibcFunctionResolvesInLibcModule) {
  TestProgram prog(GetParam());
  ASSERT_TRUE(prog.ready());
  auto symbolizer = MustSymbolize(prog.pid());
  ASSERT_NE(symbolizer, nullptr);

  Symbolized s = symbolizer->Lookup(prog.Value("libc_getpid"));
  EXPECT_NE(Basename(s.module).find("libc"), std::string::npos) << s.module;
  ASSERT_TRUE(s.resolved()) << s.module;
  EXPECT_NE(s.frames[0].function.find("getpid"), std::string::npos) << s.frames[0].function;
  EXPECT_FALSE(s.build_id.empty());
}

INSTANTIATE_TEST_SUITE_P(FramePointers, SymbolizerTest,
                         ::testing::Values(FS_SYMBOLIZER_TESTPROG_FP, FS_SYMBOLIZER_TESTPROG_NOFP),
                         [](const auto& info) {
                           return std::string(info.index == 0 ? "WithFramePointers"
                                                              : "WithoutFramePointers");
                         });

TEST(Symbolizer, StrippedBinaryGivesModulePlusOffset) {
  // Offsets of the unstripped build, to compare with.
  TestProgram original(FS_SYMBOLIZER_TESTPROG_FP);
  ASSERT_TRUE(original.ready());
  auto original_symbolizer = MustSymbolize(original.pid());
  ASSERT_NE(original_symbolizer, nullptr);
  Symbolized unstripped = original_symbolizer->Lookup(original.Value("noinline"));
  ASSERT_TRUE(unstripped.resolved());

  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("symbolizer_test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string stripped = (dir / "stripped_testprog").string();
  std::filesystem::copy_file(FS_SYMBOLIZER_TESTPROG_FP, stripped,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(std::system(("strip --strip-all " + stripped).c_str()), 0);
  {
    TestProgram prog(stripped);
    ASSERT_TRUE(prog.ready());
    auto symbolizer = MustSymbolize(prog.pid());
    ASSERT_NE(symbolizer, nullptr);
    Symbolized s = symbolizer->Lookup(prog.Value("noinline"));
    EXPECT_FALSE(s.resolved()) << s.frames[0].function;
    EXPECT_EQ(Basename(s.module), "stripped_testprog");
    EXPECT_EQ(s.module_offset, unstripped.module_offset);
    EXPECT_EQ(s.build_id, unstripped.build_id);  // strip keeps the build-id note.
    char expected[64];
    snprintf(expected, sizeof(expected), "stripped_testprog+0x%llx",
             static_cast<unsigned long long>(s.module_offset));  // NOLINT(runtime/int)
    EXPECT_EQ(symbolizer->Describe(prog.Value("noinline")), expected);
  }
  std::filesystem::remove_all(dir);
}

// Start and size of a function in `binary`'s symbol table (nm -S), as an ELF vaddr; {0, 0} if
// absent. `mangled_suffix` ends the mangled name ("NoInlineWorkEi").
std::pair<uint64_t, uint64_t> NmFunction(const std::string& binary,
                                         const std::string& mangled_suffix) {
  FILE* nm = popen(("nm -S --defined-only " + binary).c_str(), "r");
  if (nm == nullptr) return {0, 0};
  std::pair<uint64_t, uint64_t> found = {0, 0};
  char buf[1024];
  while (fgets(buf, sizeof(buf), nm) != nullptr) {
    std::istringstream line(buf);
    std::string start, size, type, name;
    if (!(line >> start >> size >> type >> name)) continue;
    if (name.size() >= mangled_suffix.size() &&
        name.compare(name.size() - mangled_suffix.size(), mangled_suffix.size(), mangled_suffix) ==
            0) {
      found = {std::stoull(start, nullptr, 16), std::stoull(size, nullptr, 16)};
    }
  }
  pclose(nm);
  return found;
}

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));  // NOLINT
  return buf;
}

TEST(Symbolizer, StrippedCodeIsGroupedByCfiFunctionStart) {
  // The unstripped build's symbol table gives the truth: each function's start and size.
  const std::string original = FS_SYMBOLIZER_TESTPROG_FP;
  auto [work_start, work_size] = NmFunction(original, "NoInlineWorkEi");
  auto [caller_start, caller_size] = NmFunction(original, "InliningCallerEi");
  ASSERT_NE(work_start, 0u);
  ASSERT_NE(caller_start, 0u);
  ASSERT_GE(work_size, 4u);
  ASSERT_GE(caller_size, 4u);
  ASSERT_NE(work_start, caller_start);

  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("symbolizer_test_cfi." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string stripped = (dir / "stripped_testprog").string();
  std::filesystem::copy_file(original, stripped, std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(std::system(("strip --strip-all " + stripped).c_str()), 0);
  {
    TestProgram prog(stripped);
    ASSERT_TRUE(prog.ready());
    auto symbolizer = MustSymbolize(prog.pid());
    ASSERT_NE(symbolizer, nullptr);
    // The load bias of the main executable: runtime address - ELF vaddr of NoInlineWork.
    const uint64_t bias = prog.Value("noinline") - work_start;
    ASSERT_EQ(prog.Value("caller"), caller_start + bias);

    const std::string work_name = "stripped_testprog+" + Hex(work_start);
    const std::string caller_name = "stripped_testprog+" + Hex(caller_start);
    // A leaf pc inside NoInlineWork (not its start), and a return address just past its end
    // (a call that ends the function returns there): looked up at address - 1, inside it.
    const uint64_t work_a = bias + work_start + 1;
    const uint64_t work_b = bias + work_start + work_size;
    Symbolized a = symbolizer->Lookup(work_a);
    Symbolized b = symbolizer->Lookup(work_b, /*is_return_address=*/true);
    for (const Symbolized* s : {&a, &b}) {
      EXPECT_FALSE(s->resolved());
      ASSERT_TRUE(s->from_cfi()) << s->module;
      ASSERT_EQ(s->frames.size(), 1u);
      EXPECT_EQ(s->frames[0].function, work_name);
      EXPECT_TRUE(s->frames[0].file.empty());
      EXPECT_EQ(Basename(s->module), "stripped_testprog");
    }
    // The pprof location stays exact: module_offset is the address's own ELF vaddr.
    EXPECT_EQ(a.module_offset, work_start + 1);
    EXPECT_EQ(b.module_offset, work_start + work_size);
    EXPECT_EQ(symbolizer->Describe(work_a), work_name);

    // Another function: another name.
    Symbolized c = symbolizer->Lookup(bias + caller_start + caller_size / 2);
    ASSERT_TRUE(c.from_cfi());
    EXPECT_EQ(c.frames[0].function, caller_name);
    EXPECT_NE(c.frames[0].function, a.frames[0].function);
    // A return address inside InliningCaller (its call to FsCaptureReturnAddress) is looked up
    // at address - 1: the caller's function, even if it were the last instruction.
    Symbolized ra = symbolizer->Lookup(prog.Value("inlined_ra"), /*is_return_address=*/true);
    ASSERT_TRUE(ra.from_cfi());
    EXPECT_EQ(ra.frames[0].function, caller_name);
    EXPECT_EQ(ra.module_offset, prog.Value("inlined_ra") - bias);

    // Outside any FDE (the ELF header at the module's start): module + exact offset, as before.
    Symbolized header = symbolizer->Lookup(bias + 0x10);
    ASSERT_EQ(Basename(header.module), "stripped_testprog");
    EXPECT_FALSE(header.from_cfi());
    EXPECT_FALSE(header.resolved());
    EXPECT_EQ(symbolizer->Describe(bias + 0x10), "stripped_testprog+" + Hex(0x10));
  }
  std::filesystem::remove_all(dir);
}

TEST(Symbolizer, DeadPidIsAClearError) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  auto symbolizer = Symbolizer::ForProcess(pid);
  ASSERT_FALSE(symbolizer.ok());
  EXPECT_NE(symbolizer.status().message().find("no such process"), std::string::npos)
      << symbolizer.status().message();
  EXPECT_NE(symbolizer.status().message().find(std::to_string(pid)), std::string::npos);
  EXPECT_FALSE(Symbolizer::ForProcess(-1).ok());
}

TEST(Symbolizer, PermissionDeniedIsAClearError) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to nobody";
  TestProgram prog(FS_SYMBOLIZER_TESTPROG_FP);
  ASSERT_TRUE(prog.ready());
  // A child that becomes `nobody` and tries to symbolize root's process.
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    auto symbolizer = Symbolizer::ForProcess(prog.pid());
    if (symbolizer.ok()) _exit(1);
    _exit(symbolizer.status().message().find("permission denied") != std::string::npos ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "cannot setuid(nobody) here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: allowed, 2: other error";
}

TEST(Symbolizer, AddressesOutsideModulesAreNeverDropped) {
  auto symbolizer = MustSymbolize(getpid());
  ASSERT_NE(symbolizer, nullptr);
  Symbolized low = symbolizer->Lookup(0x10);
  EXPECT_EQ(low.module, "[unknown]");
  EXPECT_FALSE(low.resolved());
  EXPECT_EQ(symbolizer->Describe(0x10), "[unknown]+0x10");
  // Named from /proc/kallsyms where the host shows kernel addresses, else just "[kernel]".
  Symbolized kernel = symbolizer->Lookup(0xffffffff81000010ULL);
  if (KernelSymbols::System().available()) {
    EXPECT_EQ(kernel.module, "[kernel.kallsyms]");
    EXPECT_TRUE(kernel.resolved());
  } else {
    EXPECT_EQ(kernel.module, "[kernel]");
  }
  EXPECT_FALSE(symbolizer->Describe(0xffffffff81000010ULL).empty());
  // The vDSO (clock_gettime lives there): named "[vdso]", whatever libdwfl calls it.
  const uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(vdso, 0u) << "this process has no vDSO";
  EXPECT_EQ(symbolizer->Lookup(vdso + 0x10).module, "[vdso]");
  EXPECT_FALSE(symbolizer->Describe(vdso + 0x10).empty());
  // Anonymous memory mapped after the symbolizer read the maps: "[anon]" (the maps are read
  // again), with the offset into the mapping. The lookups above may have used up the re-read
  // allowance (0x10 is outside every mapping too): wait it out.
  const size_t size = 1 << 20;
  void* block = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  std::this_thread::sleep_for(
      std::chrono::nanoseconds(Symbolizer::kMapsRereadIntervalNs + 50'000'000));
  const uint64_t inside = reinterpret_cast<uintptr_t>(block) + 0x10;
  Symbolized anon = symbolizer->Lookup(inside);
  EXPECT_EQ(anon.module, "[anon]");
  EXPECT_FALSE(anon.resolved());
  EXPECT_LE(anon.module_start, inside);
  EXPECT_LT(inside, anon.module_end);
  EXPECT_EQ(anon.module_offset, inside - anon.module_start);
  munmap(block, size);
}

// What BuildProfile cuts junk frames with: only addresses in executable mappings are code.
TEST(Symbolizer, OnlyAddressesInExecutableMappingsAreExecutable) {
  TestProgram prog(FS_SYMBOLIZER_TESTPROG_FP);
  ASSERT_TRUE(prog.ready());
  auto symbolizer = MustSymbolize(prog.pid());
  ASSERT_NE(symbolizer, nullptr);
  EXPECT_TRUE(symbolizer->IsExecutable(prog.Value("noinline")));
  EXPECT_TRUE(symbolizer->IsExecutable(prog.Value("libc_getpid")));
  ASSERT_NE(prog.Value("anon"), 0u);
  EXPECT_EQ(symbolizer->Lookup(prog.Value("anon") + 0x300).module, "[anon]");
  EXPECT_FALSE(symbolizer->IsExecutable(prog.Value("anon") + 0x300));
  EXPECT_FALSE(symbolizer->IsExecutable(prog.Value("data")));  // The program's own .data.
  EXPECT_FALSE(symbolizer->IsExecutable(0x10));
}

// A library dlopen()ed after the Symbolizer read the maps: the first address outside every known
// mapping (looked up or checked) re-reads them and reports the new module to libdwfl.
TEST(Symbolizer, LibraryLoadedAfterStartIsSymbolized) {
  TestProgram prog(FS_SYMBOLIZER_DLOPEN_TESTPROG, {FS_SYMBOLIZER_TESTLIB});
  ASSERT_TRUE(prog.ready());
  auto looked_up = MustSymbolize(prog.pid());
  auto checked = MustSymbolize(prog.pid());
  ASSERT_NE(looked_up, nullptr);
  ASSERT_NE(checked, nullptr);
  const std::string lib = Basename(FS_SYMBOLIZER_TESTLIB);
  ASSERT_EQ(Maps(prog.pid()).find(lib), std::string::npos) << "mapped before the dlopen";

  ASSERT_TRUE(prog.Ask("dlopen", "done"));
  const uint64_t work = prog.Value("testlib_work");
  ASSERT_NE(work, 0u);
  Symbolized s = looked_up->Lookup(work);
  EXPECT_EQ(looked_up->stats().maps_rereads, 1u);
  // Re-reads are rate-limited: another unknown address right after does not read the maps.
  EXPECT_EQ(looked_up->Lookup(0x10).module, "[unknown]");
  EXPECT_EQ(looked_up->stats().maps_rereads, 1u);
  ASSERT_TRUE(s.resolved()) << s.module;
  EXPECT_EQ(s.frames[0].function, "FsTestlibWork");
  EXPECT_EQ(Basename(s.frames[0].file), "symbolizer_testlib.cc");
  const int line = static_cast<int>(prog.Value("testlib_work", 1));
  EXPECT_GE(s.frames[0].line, line);
  EXPECT_LE(s.frames[0].line, line + 1);
  EXPECT_EQ(Basename(s.module), lib);
  EXPECT_FALSE(s.build_id.empty());
  // Modules reported before the re-read are still found.
  EXPECT_EQ(looked_up->Describe(prog.Value("main")), "main");

  EXPECT_TRUE(checked->IsExecutable(work));
  EXPECT_EQ(checked->stats().maps_rereads, 1u);
  EXPECT_EQ(checked->Describe(work), "FsTestlibWork");
}

// Samples taken before a library was unloaded are still in its code after a later re-read.
TEST(Symbolizer, UnloadedLibraryStaysKnownAfterAnotherReread) {
  TestProgram prog(FS_SYMBOLIZER_DLOPEN_TESTPROG, {FS_SYMBOLIZER_TESTLIB});
  ASSERT_TRUE(prog.ready());
  auto symbolizer = MustSymbolize(prog.pid());
  ASSERT_NE(symbolizer, nullptr);
  ASSERT_TRUE(prog.Ask("dlopen", "done"));
  const uint64_t work = prog.Value("testlib_work");
  ASSERT_TRUE(symbolizer->IsExecutable(work));
  ASSERT_TRUE(prog.Ask("dlclose", "done"));
  ASSERT_EQ(Maps(prog.pid()).find(Basename(FS_SYMBOLIZER_TESTLIB)), std::string::npos)
      << "still mapped after dlclose";
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // Past the re-read interval.
  EXPECT_EQ(symbolizer->Lookup(0x10).module, "[unknown]");
  ASSERT_EQ(symbolizer->stats().maps_rereads, 2u);
  EXPECT_TRUE(symbolizer->IsExecutable(work));
  EXPECT_EQ(symbolizer->Describe(work), "FsTestlibWork");
}

TEST(Symbolizer, CachesPerAddressAndAcrossProcessesByBuildId) {
  Symbolizer::ClearSharedCache();
  TestProgram first(FS_SYMBOLIZER_TESTPROG_NOFP);
  TestProgram second(FS_SYMBOLIZER_TESTPROG_NOFP);
  ASSERT_TRUE(first.ready());
  ASSERT_TRUE(second.ready());
  auto a = MustSymbolize(first.pid());
  auto b = MustSymbolize(second.pid());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);

  Symbolized s1 = a->Lookup(first.Value("noinline"));
  Symbolized s2 = a->Lookup(first.Value("noinline"));
  EXPECT_EQ(a->stats().lookups, 2u);
  EXPECT_EQ(a->stats().cache_hits, 1u);
  EXPECT_EQ(a->stats().shared_cache_hits, 0u);
  EXPECT_EQ(s1.frames[0].function, s2.frames[0].function);

  // Same binary in another process (ASLR: another address): found by (build-id, offset).
  Symbolized s3 = b->Lookup(second.Value("noinline"));
  EXPECT_EQ(b->stats().shared_cache_hits, 1u);
  ASSERT_TRUE(s3.resolved());
  EXPECT_EQ(s3.frames[0].function, s1.frames[0].function);
  EXPECT_EQ(s3.module_offset, s1.module_offset);
}

// Not a benchmark with a limit: prints frames/s so the milestone report can quote it.
TEST(Symbolizer, Throughput) {
  TestProgram prog(FS_SYMBOLIZER_TESTPROG_FP);
  ASSERT_TRUE(prog.ready());
  auto probe = MustSymbolize(prog.pid());
  ASSERT_NE(probe, nullptr);
  Symbolized libc = probe->Lookup(prog.Value("libc_getpid"));
  ASSERT_LT(libc.module_start, libc.module_end);
  constexpr int kN = 20000;
  std::vector<uint64_t> addresses;
  const uint64_t stride = std::max<uint64_t>(1, (libc.module_end - libc.module_start) / kN);
  for (int i = 0; i < kN; ++i) addresses.push_back(libc.module_start + i * stride);

  using Clock = std::chrono::steady_clock;
  auto rate = [](Clock::time_point start, int n) {
    return n / std::chrono::duration<double>(Clock::now() - start).count();
  };
  Symbolizer::ClearSharedCache();
  auto t0 = Clock::now();
  auto cold = MustSymbolize(prog.pid());
  ASSERT_NE(cold, nullptr);
  double open_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  int resolved = 0;
  auto t1 = Clock::now();
  for (uint64_t a : addresses) resolved += cold->Lookup(a).resolved() ? 1 : 0;
  double cold_rate = rate(t1, kN);

  auto other = MustSymbolize(prog.pid());  // Another process mapping the same libc.
  auto t2 = Clock::now();
  for (uint64_t a : addresses) other->Lookup(a);
  double shared_rate = rate(t2, kN);

  auto t3 = Clock::now();
  for (uint64_t a : addresses) cold->Lookup(a);
  double warm_rate = rate(t3, kN);
  EXPECT_EQ(cold->stats().cache_hits, static_cast<uint64_t>(kN));

  // BuildProfile's junk-frame check, once per return address.
  int executable = 0;
  auto t4 = Clock::now();
  for (int round = 0; round < 10; ++round) {
    for (uint64_t a : addresses) executable += cold->IsExecutable(a) ? 1 : 0;
  }
  double executable_rate = rate(t4, 10 * kN);

  printf(
      "[throughput] %d distinct libc addresses (%d resolved): ForProcess %.1f ms; "
      "cold %.0f frames/s; new Symbolizer + shared build-id cache %.0f frames/s; "
      "warm per-address cache %.0f frames/s; IsExecutable %.0f checks/s\n",
      kN, resolved, open_ms, cold_rate, shared_rate, warm_rate, executable_rate);
  EXPECT_GT(resolved, kN / 2);
  EXPECT_GT(executable, 0);
  EXPECT_EQ(cold->stats().maps_rereads, 0u);  // Every address was in a mapping.
}

TEST(Demangle, ItaniumNamesOnly) {
  EXPECT_EQ(Demangle("_ZN2fs3FooEv"), "fs::Foo()");
  EXPECT_EQ(Demangle("main"), "main");
  EXPECT_EQ(Demangle("_Znot_valid"), "_Znot_valid");
}

}  // namespace
}  // namespace fs::profile
