// Fuzzes the HTTP gateway's JSON (ToJson) with arbitrary LatencyService
// responses: the bytes are parsed as a serialized message of the type byte 0
// picks. Checks:
//  - ToJson's output parses back with JsonStringToMessage (unknown fields
//    are errors) into the same message type and equals the original, less
//    the Timestamps and Durations protobuf itself cannot print (null);
//  - every unset proto3 `optional` field, at any depth, is present as null
//    (a missing measurement is null, never absent or 0);
//  - the top-level keys follow the .proto's field order;
//  - printing is deterministic (same JSON tree for equal messages).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "latency/v1/latency.pb.h"
#include "tests/fuzz/fuzz_proto.h"
#include "tests/fuzz/fuzz_util.h"

namespace latency {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::Struct;
using google::protobuf::Value;

std::unique_ptr<Message> NewMessage(uint8_t which) {
  switch (which % 6) {
    case 0:
      return std::make_unique<v1::GetLatencyResponse>();
    case 1:
      return std::make_unique<v1::GetTargetStatsResponse>();
    case 2:
      return std::make_unique<v1::ListTargetsResponse>();
    case 3:
      return std::make_unique<v1::WatchResponse>();
    case 4:
      return std::make_unique<v1::ErrorResponse>();
    default:
      return std::make_unique<v1::Sample>();
  }
}

// Clears, at any depth, each well-known-type value protobuf's own printer
// refuses (a Timestamp past 9999, a Duration past 10000 years): ToJson
// prints those as null, so they parse back unset.
void ClearUnprintable(Message* message) {
  const Descriptor* descriptor = message->GetDescriptor();
  const Reflection* reflection = message->GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->message_type()->file()->package() == "google.protobuf") {
      std::string ignored;
      if (!field->is_repeated() && reflection->HasField(*message, field) &&
          !google::protobuf::util::MessageToJsonString(
               reflection->GetMessage(*message, field), &ignored)
               .ok()) {
        reflection->ClearField(message, field);
      }
      continue;
    }
    if (field->is_repeated()) {
      for (int j = 0; j < reflection->FieldSize(*message, field); ++j) {
        ClearUnprintable(reflection->MutableRepeatedMessage(message, field, j));
      }
    } else if (reflection->HasField(*message, field)) {
      ClearUnprintable(reflection->MutableMessage(message, field));
    }
  }
}

// Every unset optional field of `message` is null in `json`, recursively.
void CheckNulls(const Message& message, const Struct& json,
                const std::string& path) {
  const Descriptor* descriptor = message.GetDescriptor();
  const Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    std::string where = absl::StrCat(path, ".", field->name());
    auto it = json.fields().find(field->name());
    if (field->has_optional_keyword() &&
        !reflection->HasField(message, field)) {
      FUZZ_CHECK(it != json.fields().end() && it->second.has_null_value(),
                 where + " unset but not null");
      continue;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_map() ||
        field->message_type()->file()->package() == "google.protobuf") {
      continue;
    }
    if (field->is_repeated()) {
      int n = reflection->FieldSize(message, field);
      if (n == 0) continue;
      FUZZ_CHECK(it != json.fields().end() && it->second.has_list_value() &&
                     it->second.list_value().values_size() == n,
                 where + " list");
      for (int j = 0; j < n; ++j) {
        const Value& element = it->second.list_value().values(j);
        FUZZ_CHECK(element.has_struct_value(), where + " element");
        CheckNulls(reflection->GetRepeatedMessage(message, field, j),
                   element.struct_value(), absl::StrCat(where, "[", j, "]"));
      }
    } else if (reflection->HasField(message, field)) {
      FUZZ_CHECK(it != json.fields().end() && it->second.has_struct_value(),
                 where + " object");
      CheckNulls(reflection->GetMessage(message, field),
                 it->second.struct_value(), where);
    }
  }
}

// The top-level keys of `json` (an object printed by ToJson) in order.
std::vector<std::string> TopLevelKeys(const std::string& json) {
  std::vector<std::string> keys;
  int depth = 0;
  bool in_string = false;
  bool expect_key = false;
  std::string current;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        if (depth == 1 && expect_key) current.push_back(json[i + 1]);
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1 && expect_key) {
          keys.push_back(current);
          expect_key = false;
        }
      } else if (depth == 1 && expect_key) {
        current.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      current.clear();
    } else if (c == '{' || c == '[') {
      ++depth;
      if (depth == 1) expect_key = true;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
  }
  return keys;
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::unique_ptr<google::protobuf::Message> message =
      latency::NewMessage(data[0]);
  if (!message->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  message->DiscardUnknownFields();
  const std::string type = message->GetTypeName();

  std::string json = latency::ToJson(*message);
  std::unique_ptr<google::protobuf::Message> back(message->New());
  auto status = latency::fuzz::ParseJsonStrict(json, back.get());
  FUZZ_CHECK(status.ok(),
             absl::StrCat(type, ": ", status.ToString(), "\n", json));
  std::unique_ptr<google::protobuf::Message> expected(message->New());
  expected->CopyFrom(*message);
  latency::ClearUnprintable(expected.get());
  FUZZ_CHECK(latency::fuzz::Equal(*expected, *back),
             absl::StrCat(type, " differs after JSON:\n", json, "\n",
                          expected->ShortDebugString(), "\n",
                          back->ShortDebugString()));

  google::protobuf::Struct tree;
  FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(json, &tree).ok(),
             json);
  latency::CheckNulls(*message, tree, type);

  // Top-level keys: a subsequence of the fields in .proto order.
  std::vector<std::string> keys = latency::TopLevelKeys(json);
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  int next = 0;
  for (const std::string& key : keys) {
    while (next < descriptor->field_count() &&
           descriptor->field(next)->name() != key) {
      ++next;
    }
    FUZZ_CHECK(next < descriptor->field_count(),
               absl::StrCat("key '", key, "' out of .proto order: ", json));
    ++next;
  }

  google::protobuf::Struct again;
  FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(latency::ToJson(*back),
                                                         &again)
                 .ok(),
             "second print");
  FUZZ_CHECK(latency::fuzz::Equal(tree, again), "ToJson is not deterministic");
  return 0;
}
