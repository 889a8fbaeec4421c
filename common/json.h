#ifndef LATENCY_COMMON_JSON_H_
#define LATENCY_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace latency {

// Serializes `message` in protobuf's proto3 JSON mapping, as the HTTP
// gateway and latencyctl print it:
//   - field names as in the .proto, in field-number order; every field
//     without presence is printed, defaults included;
//   - an unset proto3 `optional` field is printed as null, so a missing
//     measurement reads "latency_ms": null — never 0, never silently absent;
//   - 64-bit integers as strings, enums by name, bytes as base64,
//     google.protobuf.Timestamp as RFC 3339, maps as objects.
//
// Why not google::protobuf::util::MessageToJsonString: in protobuf 3.21 it
// serializes to binary and re-parses through a type resolver, ~40 us for a
// small response, which alone would cap /metrics below its 20k req/s budget;
// it also cannot print null for unset optional fields. This walks the
// descriptor directly (~2 us). tests/common/json_test.cc checks that
// protobuf's own parser reads every output back into an equal message.
// Well-known types other than Timestamp fall back to protobuf's printer.
std::string ToJson(const google::protobuf::Message& message);

// `text` as a JSON string literal, quotes included (UTF-8 passes through,
// control characters escaped), for JSON built around ToJson's output.
std::string JsonQuote(absl::string_view text);

}  // namespace latency

#endif  // LATENCY_COMMON_JSON_H_
