// UTF-8 checks for bytes from outside (a scraped /metrics body, a server's error text): what
// may go into a JSON file as it is, and how to quote it in a message for a terminal.
#ifndef FRAMESCOPE_BASE_UTF8_H_
#define FRAMESCOPE_BASE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace fs {

// The length (1-4) of the well-formed UTF-8 sequence starting at s[i], or 0 when the bytes there
// are not one (a stray continuation byte, a truncated sequence, an overlong form, a surrogate,
// or beyond U+10FFFF), per RFC 3629.
size_t Utf8SequenceLength(std::string_view s, size_t i);

// `s` with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(std::string_view s);

// `s` made safe to print in a message: at most `max_bytes` of it, with control characters (C0,
// DEL and C1), backslashes and bytes that are not well-formed UTF-8 written as \xNN, so no
// terminal escape sequence survives; a cut is marked "... (N bytes)".
std::string QuoteForTerminal(std::string_view s, size_t max_bytes = 120);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_UTF8_H_
