#include "server/api/json.h"

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace latency {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::Struct;
using google::protobuf::Value;

void AddNulls(const Message& message, Struct* json) {
  const Descriptor* descriptor = message.GetDescriptor();
  const Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    auto* fields = json->mutable_fields();
    if (field->has_optional_keyword() &&
        !reflection->HasField(message, field)) {
      (*fields)[field->name()].set_null_value(google::protobuf::NULL_VALUE);
      continue;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_map()) {
      continue;
    }
    auto it = fields->find(field->name());
    if (it == fields->end()) continue;
    if (field->is_repeated()) {
      int n = reflection->FieldSize(message, field);
      auto* list = it->second.mutable_list_value();
      for (int j = 0; j < n && j < list->values_size(); ++j) {
        if (list->values(j).has_struct_value()) {
          AddNulls(reflection->GetRepeatedMessage(message, field, j),
                   list->mutable_values(j)->mutable_struct_value());
        }
      }
    } else if (it->second.has_struct_value() &&
               field->message_type()->file()->package() != "google.protobuf") {
      AddNulls(reflection->GetMessage(message, field),
               it->second.mutable_struct_value());
    }
  }
}

// Protobuf prints a Struct's keys in hash order; people reading /metrics
// expect the .proto's order ("latency_ms" first, as the original tool had).
// This re-emits the tree in descriptor order; every value is still printed
// by protobuf's JSON printer.
void AppendValue(const Value& value, std::string* out) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) {
    json = "null";
  }
  out->append(json);
}

void AppendOrdered(const Message& message, const Struct& json,
                   std::string* out) {
  const Descriptor* descriptor = message.GetDescriptor();
  const Reflection* reflection = message.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    auto it = json.fields().find(field->name());
    if (it == json.fields().end()) continue;
    if (!first) out->push_back(',');
    first = false;
    out->append("\"" + field->name() + "\":");
    const Value& value = it->second;
    bool nested = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
                  !field->is_map() &&
                  field->message_type()->file()->package() != "google.protobuf";
    if (nested && field->is_repeated() && value.has_list_value()) {
      out->push_back('[');
      int n = reflection->FieldSize(message, field);
      for (int j = 0; j < value.list_value().values_size(); ++j) {
        if (j > 0) out->push_back(',');
        const Value& element = value.list_value().values(j);
        if (j < n && element.has_struct_value()) {
          AppendOrdered(reflection->GetRepeatedMessage(message, field, j),
                        element.struct_value(), out);
        } else {
          AppendValue(element, out);
        }
      }
      out->push_back(']');
    } else if (nested && !field->is_repeated() && value.has_struct_value()) {
      AppendOrdered(reflection->GetMessage(message, field),
                    value.struct_value(), out);
    } else {
      AppendValue(value, out);
    }
  }
  out->push_back('}');
}

}  // namespace

std::string ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  Struct tree;
  if (!google::protobuf::util::JsonStringToMessage(json, &tree).ok())
    return json;
  AddNulls(message, &tree);
  std::string out;
  AppendOrdered(message, tree, &out);
  return out;
}

}  // namespace latency
