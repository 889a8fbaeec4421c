#ifndef LATENCY_SERVER_STATS_VARINT_H_
#define LATENCY_SERVER_STATS_VARINT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace latency {

// LEB128 varints (protobuf's), for the history encodings.
inline void AppendVarint(uint64_t value, std::string& out) {
  for (; value >= 0x80; value >>= 7) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
  }
  out.push_back(static_cast<char>(value));
}

// Reads a varint of at most 10 bytes at `pos`, advancing it; false when the
// bytes end first or it runs longer.
inline bool ReadVarint(absl::string_view bytes, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_VARINT_H_
