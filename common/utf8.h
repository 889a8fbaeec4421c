#ifndef LATENCY_COMMON_UTF8_H_
#define LATENCY_COMMON_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace latency {

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view text);

// `text` with every byte that does not start a well-formed sequence replaced
// by U+FFFD. proto3 strings must be UTF-8, so text that came from a peer (a
// request's target, a remote error) passes through this before it goes into
// a response.
std::string ToValidUtf8(absl::string_view text);

}  // namespace latency

#endif  // LATENCY_COMMON_UTF8_H_
