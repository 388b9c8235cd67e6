// A short, stable fingerprint of a text: 64-bit FNV-1a as 16 hex digits. Not cryptographic; it
// names things that must not change between runs or builds (a statement, a config, a cut name).
#ifndef FRAMESCOPE_BASE_HASH_H_
#define FRAMESCOPE_BASE_HASH_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace fs {

inline std::string Fnv1aHex(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace fs

#endif  // FRAMESCOPE_BASE_HASH_H_
