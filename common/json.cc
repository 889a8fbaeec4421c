#include "common/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace latency {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          snprintf(escaped, sizeof(escaped), "\\u%04x",
                   static_cast<unsigned char>(c));
          out->append(escaped);
        } else {
          out->push_back(c);  // UTF-8 passes through
        }
    }
  }
  out->push_back('"');
}

// Shortest text that reads back as the same double (like protobuf's
// SimpleDtoa); NaN and infinities as the mapping's strings.
void AppendDouble(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char text[32];
  snprintf(text, sizeof(text), "%.15g", value);
  if (std::strtod(text, nullptr) != value)
    snprintf(text, sizeof(text), "%.17g", value);
  out->append(text);
}

void AppendMessage(const Message& message, std::string* out);

void AppendValue(const Message& message, const FieldDescriptor* field,
                 int index, std::string* out) {
  const Reflection* r = message.GetReflection();
  bool repeated = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, repeated ? r->GetRepeatedInt32(message, field, index)
                                    : r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, repeated
                               ? r->GetRepeatedUInt32(message, field, index)
                               : r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"",
                      repeated ? r->GetRepeatedInt64(message, field, index)
                               : r->GetInt64(message, field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"",
                      repeated ? r->GetRepeatedUInt64(message, field, index)
                               : r->GetUInt64(message, field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(repeated ? r->GetRepeatedDouble(message, field, index)
                            : r->GetDouble(message, field),
                   out);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendDouble(repeated ? r->GetRepeatedFloat(message, field, index)
                            : r->GetFloat(message, field),
                   out);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((repeated ? r->GetRepeatedBool(message, field, index)
                            : r->GetBool(message, field))
                      ? "true"
                      : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = repeated ? r->GetRepeatedEnumValue(message, field, index)
                            : r->GetEnumValue(message, field);
      // proto3 enums are open: a number this build does not know (from a
      // newer peer) prints as the number, which parsers accept, rather than
      // as a made-up name they reject.
      const EnumValueDescriptor* value =
          field->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        AppendString(value->name(), out);
      } else {
        absl::StrAppend(out, number);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& value =
          repeated
              ? r->GetRepeatedStringReference(message, field, index, &scratch)
              : r->GetStringReference(message, field, &scratch);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        AppendString(absl::Base64Escape(value), out);
      } else {
        AppendString(value, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(repeated ? r->GetRepeatedMessage(message, field, index)
                             : r->GetMessage(message, field),
                    out);
      break;
  }
}

// A map field is a repeated entry message {key = 1, value = 2}.
void AppendMap(const Message& message, const FieldDescriptor* field,
               std::string* out) {
  const Reflection* r = message.GetReflection();
  out->push_back('{');
  const FieldDescriptor* key = field->message_type()->map_key();
  const FieldDescriptor* value = field->message_type()->map_value();
  for (int i = 0; i < r->FieldSize(message, field); ++i) {
    if (i > 0) out->push_back(',');
    const Message& entry = r->GetRepeatedMessage(message, field, i);
    std::string key_json;
    AppendValue(entry, key, -1, &key_json);
    if (key_json.front() != '"') key_json = absl::StrCat("\"", key_json, "\"");
    out->append(key_json);
    out->push_back(':');
    AppendValue(entry, value, -1, out);
  }
  out->push_back('}');
}

bool IsValid(const google::protobuf::Timestamp& time) {
  using google::protobuf::util::TimeUtil;
  return time.seconds() >= TimeUtil::kTimestampMinSeconds &&
         time.seconds() <= TimeUtil::kTimestampMaxSeconds &&
         time.nanos() >= 0 && time.nanos() <= 999'999'999;
}

void AppendMessage(const Message& message, std::string* out) {
  const Descriptor* descriptor = message.GetDescriptor();
  if (descriptor->full_name() == "google.protobuf.Timestamp") {
    const auto& time = static_cast<const google::protobuf::Timestamp&>(message);
    // TimeUtil prints "InvalidTime" outside 0001..9999, which no parser reads
    // back: a time we cannot name is unknown, as an unset one is.
    if (IsValid(time)) {
      AppendString(google::protobuf::util::TimeUtil::ToString(time), out);
    } else {
      out->append("null");
    }
    return;
  }
  if (descriptor->file()->package() == "google.protobuf") {
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(message, &json).ok())
      json = "null";
    out->append(json);
    return;
  }
  const Reflection* r = message.GetReflection();
  out->push_back('{');
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (i > 0) out->push_back(',');
    AppendString(field->name(), out);
    out->push_back(':');
    if (field->is_map()) {
      AppendMap(message, field, out);
    } else if (field->is_repeated()) {
      out->push_back('[');
      for (int j = 0; j < r->FieldSize(message, field); ++j) {
        if (j > 0) out->push_back(',');
        AppendValue(message, field, j, out);
      }
      out->push_back(']');
    } else if (field->has_presence() && !r->HasField(message, field)) {
      out->append("null");
    } else {
      AppendValue(message, field, -1, out);
    }
  }
  out->push_back('}');
}

}  // namespace

std::string JsonQuote(absl::string_view text) {
  std::string quoted;
  AppendString(text, &quoted);
  return quoted;
}

std::string ToJson(const Message& message) {
  std::string out;
  out.reserve(512);
  AppendMessage(message, &out);
  return out;
}

}  // namespace latency
