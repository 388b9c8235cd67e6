// pprof format (milestone 4): gzip-compressed protobuf per the public perftools profile.proto,
// readable by `go tool pprof`. The encoder and decoder are hand-written (no protobuf dependency);
// the decoder treats its input as untrusted: every malformed input is an error, never a crash.
#ifndef FRAMESCOPE_PROFILE_PPROF_H_
#define FRAMESCOPE_PROFILE_PPROF_H_

#include <cstddef>
#include <string>

#include "src/base/status.h"
#include "src/profile/profile.h"

namespace fs::profile {

// Decoded (uncompressed) protobuf larger than this is rejected, so a small gzip bomb cannot
// exhaust memory. A 60 s system-wide profile is a few MiB; this leaves ample headroom.
inline constexpr size_t kMaxPprofBytes = size_t{256} << 20;
// Top-level messages (samples, locations, ...) and strings beyond this are rejected: an empty
// message is 2 bytes on the wire but ~100 in memory, so the byte limit alone is not enough.
inline constexpr size_t kMaxPprofMessages = size_t{16} << 20;

// Serialises `profile` as an uncompressed profile.proto message. Deterministic: the same Profile
// always yields the same bytes (the golden test depends on this). Numeric labels' units and
// string labels with an empty value are not encoded.
std::string EncodePprofProto(const Profile& profile);

// EncodePprofProto, then gzip: what `go tool pprof` expects on disk.
StatusOr<std::string> EncodePprof(const Profile& profile);

// Accepts gzip-compressed or raw protobuf. Validates wire format (truncation, bad varints, wire
// types), string indexes, nonzero unique ids and cross references (sample → location → mapping,
// line → function) and the value count of each sample. Errors read
// "not a pprof profile: ..." (wire-level) or "invalid pprof profile: ..." (semantic).
StatusOr<Profile> DecodePprof(const std::string& bytes);

// Writes with WriteOutput (src/base/output.h): atomically, so a reader never sees a partial
// profile; "-" is stdout, /dev/null a sink, other special files are refused.
Status WritePprofFile(const std::string& path, const Profile& profile);
StatusOr<Profile> ReadPprofFile(const std::string& path);

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_PPROF_H_
