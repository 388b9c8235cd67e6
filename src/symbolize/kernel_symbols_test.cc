#include "src/symbolize/kernel_symbols.h"

#include <gtest/gtest.h>

#include <string>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

TEST(KernelSymbolsTest, ParsesTextSymbolsAndModules) {
  KernelSymbols t = KernelSymbols::Parse(
      "ffffffff81000000 T _stext\n"
      "ffffffff81000100 t helper_fn\n"
      "ffffffff81000200 D some_data\n"  // Data: not a frame, skipped.
      "ffffffff81000300 W weak_fn\n"
      "ffffffff81000400 T _etext\n"  // End marker: not a function.
      "ffffffffc0001000 t ext4_read\t[ext4]\n"
      "not a line\n"
      "zzzz T bad_address\n"
      "\n");
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.skipped_lines(), 2u);
  KernelSymbol s;
  ASSERT_TRUE(t.Lookup(0xffffffff81000150, &s));
  EXPECT_EQ(s.name, "helper_fn");
  EXPECT_EQ(s.module, "[kernel.kallsyms]");
  EXPECT_EQ(s.offset, 0x50u);
  // Inside the data symbol's range: still the last text symbol below it.
  ASSERT_TRUE(t.Lookup(0xffffffff81000250, &s));
  EXPECT_EQ(s.name, "helper_fn");
  ASSERT_TRUE(t.Lookup(0xffffffffc0001010, &s));
  EXPECT_EQ(s.name, "ext4_read");
  EXPECT_EQ(s.module, "[ext4]");
  EXPECT_FALSE(t.Lookup(0xffffffff80000000, &s));  // Below every symbol.
  ASSERT_TRUE(t.Lookup(0xffffffff81000410, &s));
  EXPECT_EQ(s.name, "weak_fn");                    // Not "_etext".
  EXPECT_FALSE(t.Lookup(0xffffffffc0301000, &s));  // > 1 MiB past the last symbol.
}

TEST(KernelSymbolsTest, HiddenAddressesMeanUnavailable) {
  KernelSymbols t = KernelSymbols::Parse(
      "0000000000000000 T _stext\n"
      "0000000000000000 t helper_fn\n");
  EXPECT_FALSE(t.available());
  KernelSymbol s;
  EXPECT_FALSE(t.Lookup(0x10, &s));
}

TEST(KernelSymbolsTest, RunningKernelNamesItsOwnSymbols) {
  const KernelSymbols& t = KernelSymbols::System();
  if (!t.available()) GTEST_SKIP() << "kallsyms addresses hidden here (kptr_restrict)";
  auto text = ReadFile("/proc/kallsyms");
  ASSERT_TRUE(text.ok());
  // Every listed text symbol's address maps back to a symbol at that address.
  size_t checked = 0;
  size_t pos = 0;
  while (pos < text->size() && checked < 2000) {
    size_t eol = text->find('\n', pos);
    std::string line = text->substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() < 20 || (line[17] != 'T' && line[17] != 't')) continue;
    uint64_t addr = std::stoull(line.substr(0, 16), nullptr, 16);
    KernelSymbol s;
    ASSERT_TRUE(t.Lookup(addr + 1, &s)) << line;
    EXPECT_EQ(s.offset, 1u) << line;  // Aliases share an address; the offset still holds.
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace fs::profile
