#ifndef LATENCY_TESTS_FUZZ_FUZZ_PROTO_H_
#define LATENCY_TESTS_FUZZ_FUZZ_PROTO_H_

#include <string>

#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"

// Protobuf helpers shared by the fuzz targets.
namespace latency::fuzz {

// Protobuf logs parse problems (e.g. invalid UTF-8) to stderr; the targets
// check the returned statuses instead. Done at start-up in every target
// that includes this header.
inline const bool kProtobufLogsSilenced =
    (google::protobuf::SetLogHandler(nullptr), true);

// Parses `json` as protobuf's JSON parser does for clients, unknown fields
// being errors.
inline google::protobuf::util::Status ParseJsonStrict(
    const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions strict;
  strict.ignore_unknown_fields = false;
  return google::protobuf::util::JsonStringToMessage(json, message, strict);
}

// Field-by-field equality in which NaN equals NaN (JSON and text round
// trips keep NaN, which never compares equal to itself).
inline bool Equal(const google::protobuf::Message& a,
                  const google::protobuf::Message& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

}  // namespace latency::fuzz

#endif  // LATENCY_TESTS_FUZZ_FUZZ_PROTO_H_
