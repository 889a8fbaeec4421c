#ifndef LATENCY_SERVER_API_JSON_H_
#define LATENCY_SERVER_API_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace latency {

// Serializes `message` with protobuf's JSON mapping (field names as in the
// .proto, enums as names, every non-optional field present), then adds
// `null` for each unset proto3 `optional` field, recursively: a missing
// measurement shows as "latency_ms": null, never as 0 and never silently
// absent. No JSON is written by hand; the nulls come from the descriptor.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace latency

#endif  // LATENCY_SERVER_API_JSON_H_
