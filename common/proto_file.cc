#include "common/proto_file.h"

#include <yaml-cpp/yaml.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/text_format.h"

namespace prolong {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::TextFormat;

// A string field holds UTF-8 (bytes fields hold anything): protobuf refuses to parse a message
// with another string, so a spec holding one would read here and fail at the server it is sent
// to. protobuf's own check, so that the two agree.
bool IsStringFieldText(const FieldDescriptor* field, absl::string_view text) {
  return field->type() != FieldDescriptor::TYPE_STRING ||
         google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                             static_cast<int>(text.size()));
}

constexpr absl::string_view kNotUtf8 = "not valid UTF-8 (a string field holds text)";

class YamlReader {
 public:
  explicit YamlReader(absl::string_view name) : name_(name) {}

  absl::Status Fill(const YAML::Node& node, const std::string& path, Message* message) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return Error(node, path, "expected a mapping of field: value");
    const google::protobuf::Descriptor* type = message->GetDescriptor();
    for (const auto& entry : node) {
      const std::string key = entry.first.as<std::string>();
      const FieldDescriptor* field = type->FindFieldByName(key);
      if (field == nullptr) field = type->FindFieldByCamelcaseName(key);
      const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
      if (field == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
        return Error(
            entry.first, field_path,
            absl::StrCat("no such field; ", type->name(), " has ", absl::StrJoin(names, ", ")));
      }
      RETURN_IF_ERROR(FillField(entry.second, field_path, field, message));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status FillField(const YAML::Node& node, const std::string& path,
                         const FieldDescriptor* field, Message* message) {
    if (field->is_map()) {
      if (!node.IsMap()) return Error(node, path, "expected a mapping");
      for (const auto& entry : node) {
        Message* item = message->GetReflection()->AddMessage(message, field);
        const std::string item_path = absl::StrCat(path, "[", entry.first.as<std::string>(), "]");
        RETURN_IF_ERROR(SetValue(entry.first, item_path, item->GetDescriptor()->map_key(), item));
        RETURN_IF_ERROR(
            SetValue(entry.second, item_path, item->GetDescriptor()->map_value(), item));
      }
      return absl::OkStatus();
    }
    if (field->is_repeated()) {
      if (!node.IsSequence()) return Error(node, path, "expected a list");
      for (size_t i = 0; i < node.size(); ++i) {
        RETURN_IF_ERROR(SetValue(node[i], absl::StrCat(path, "[", i, "]"), field, message));
      }
      return absl::OkStatus();
    }
    return SetValue(node, path, field, message);
  }

  // A google.protobuf.Duration written as "90s", "5m", "1h30m" or "250ms".
  absl::Status SetDuration(const YAML::Node& node, const std::string& path, Message* duration) {
    absl::Duration value;
    if (!absl::ParseDuration(node.Scalar(), &value) || value < absl::ZeroDuration() ||
        value == absl::InfiniteDuration()) {
      return Error(node, path,
                   absl::StrCat("expected a duration such as 90s, 5m or 1h30m, got \"",
                                node.Scalar(), "\""));
    }
    const int64_t seconds = absl::IDivDuration(value, absl::Seconds(1), &value);
    const google::protobuf::Descriptor* type = duration->GetDescriptor();
    duration->GetReflection()->SetInt64(duration, type->FindFieldByName("seconds"), seconds);
    duration->GetReflection()->SetInt32(duration, type->FindFieldByName("nanos"),
                                        static_cast<int32_t>(absl::ToInt64Nanoseconds(value)));
    return absl::OkStatus();
  }

  // Sets a singular field, or appends to a repeated one.
  absl::Status SetValue(const YAML::Node& node, const std::string& path,
                        const FieldDescriptor* field, Message* message) {
    const Reflection* reflection = message->GetReflection();
    const bool repeated = field->is_repeated();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* child = repeated ? reflection->AddMessage(message, field)
                                : reflection->MutableMessage(message, field);
      if (node.IsScalar() && child->GetDescriptor()->full_name() == "google.protobuf.Duration") {
        return SetDuration(node, path, child);
      }
      return Fill(node, path, child);
    }
    if (!node.IsScalar()) return Error(node, path, "expected a single value");
    const std::string text = node.Scalar();
    auto integer = [&](auto* value) -> absl::Status {
      if (!absl::SimpleAtoi(absl::StrReplaceAll(text, {{"_", ""}}), value)) {
        return Error(node, path, absl::StrCat("\"", text, "\" is not a whole number in range"));
      }
      return absl::OkStatus();
    };
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t value;
        RETURN_IF_ERROR(integer(&value));
        repeated ? reflection->AddInt32(message, field, value)
                 : reflection->SetInt32(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t value;
        RETURN_IF_ERROR(integer(&value));
        repeated ? reflection->AddInt64(message, field, value)
                 : reflection->SetInt64(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t value;
        RETURN_IF_ERROR(integer(&value));
        repeated ? reflection->AddUInt32(message, field, value)
                 : reflection->SetUInt32(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t value;
        RETURN_IF_ERROR(integer(&value));
        repeated ? reflection->AddUInt64(message, field, value)
                 : reflection->SetUInt64(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double value;
        if (!absl::SimpleAtod(text, &value)) {
          return Error(node, path, absl::StrCat("\"", text, "\" is not a number"));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
          repeated ? reflection->AddFloat(message, field, static_cast<float>(value))
                   : reflection->SetFloat(message, field, static_cast<float>(value));
        } else {
          repeated ? reflection->AddDouble(message, field, value)
                   : reflection->SetDouble(message, field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const std::string lower = absl::AsciiStrToLower(text);
        if (lower != "true" && lower != "false") {
          return Error(node, path, absl::StrCat("\"", text, "\" is not true or false"));
        }
        repeated ? reflection->AddBool(message, field, lower == "true")
                 : reflection->SetBool(message, field, lower == "true");
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        ASSIGN_OR_RETURN(const EnumValueDescriptor* value,
                         FindEnumValue(node, path, field->enum_type(), text));
        repeated ? reflection->AddEnum(message, field, value)
                 : reflection->SetEnum(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_STRING:
        if (!IsStringFieldText(field, text)) return Error(node, path, kNotUtf8);
        repeated ? reflection->AddString(message, field, text)
                 : reflection->SetString(message, field, text);
        return absl::OkStatus();
      default:
        return Error(node, path, "unsupported field type");
    }
  }

  absl::StatusOr<const EnumValueDescriptor*> FindEnumValue(const YAML::Node& node,
                                                           const std::string& path,
                                                           const EnumDescriptor* type,
                                                           const std::string& text) {
    if (const EnumValueDescriptor* value = type->FindValueByName(text)) return value;
    int number;
    if (absl::SimpleAtoi(text, &number)) {
      if (const EnumValueDescriptor* value = type->FindValueByNumber(number)) return value;
    }
    // The values' common prefix: everything up to "UNSPECIFIED" in the zero value's name.
    std::string prefix = type->value(0)->name();
    if (absl::EndsWith(prefix, "UNSPECIFIED")) prefix.resize(prefix.size() - 11);
    const std::string full = prefix + absl::AsciiStrToUpper(text);
    if (const EnumValueDescriptor* value = type->FindValueByName(full)) {
      if (value->number() != 0) return value;
    }
    std::vector<std::string> names;
    for (int i = 1; i < type->value_count(); ++i) {
      names.push_back(absl::AsciiStrToLower(absl::StripPrefix(type->value(i)->name(), prefix)));
    }
    return Error(node, path,
                 absl::StrCat("\"", text, "\" is not one of ", absl::StrJoin(names, ", ")));
  }

  absl::Status Error(const YAML::Node& node, const std::string& path, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ":", node.Mark().line + 1, ": ",
                                                   path.empty() ? "" : path + ": ", what));
  }

  std::string name_;
};

bool IsTextFormat(absl::string_view path) {
  for (absl::string_view extension : {".textproto", ".txtpb", ".pbtxt", ".textpb"}) {
    if (absl::EndsWith(path, extension)) return true;
  }
  return false;
}

// Collects the text-format parser's complaints instead of letting it log them.
class TextFormatErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// The first string field of `message` that is not UTF-8, as "LINE: PATH: ..." (LINE from
// `locations`, where the text-format parser recorded it), or "" when there is none.
std::string FindNonUtf8String(const Message& message, const TextFormat::ParseInfoTree* locations,
                              const std::string& path) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!is_message && field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) continue;
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const int index = field->is_repeated() ? i : -1;
      const std::string field_path =
          absl::StrCat(path, path.empty() ? "" : ".", field->name(),
                       field->is_repeated() ? absl::StrCat("[", i, "]") : "");
      if (is_message) {
        const Message& child = field->is_repeated()
                                   ? reflection->GetRepeatedMessage(message, field, i)
                                   : reflection->GetMessage(message, field);
        std::string found = FindNonUtf8String(
            child, locations == nullptr ? nullptr : locations->GetTreeForNested(field, index),
            field_path);
        if (!found.empty()) return found;
        continue;
      }
      std::string scratch;
      const std::string& text =
          field->is_repeated() ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                               : reflection->GetStringReference(message, field, &scratch);
      if (IsStringFieldText(field, text)) continue;
      const int line = locations == nullptr ? -1 : locations->GetLocation(field, index).line;
      return absl::StrCat(line >= 0 ? absl::StrCat(line + 1, ": ") : "", field_path, ": ",
                          kNotUtf8);
    }
  }
  return "";
}

}  // namespace

absl::Status ParseYamlProto(absl::string_view yaml, absl::string_view name, Message* message) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", error.mark.line + 1, ": not valid YAML: ", error.msg));
  }
  try {
    return YamlReader(name).Fill(root, "", message);
  } catch (const YAML::Exception& error) {  // A key that is a list or a mapping.
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", error.mark.line + 1, ": ", error.msg));
  }
}

absl::Status ReadProtoFile(const std::string& path, Message* message) {
  ASSIGN_OR_RETURN(const std::string content, ReadFile(path));
  if (!IsTextFormat(path)) return ParseYamlProto(content, path, message);
  TextFormat::Parser parser;
  TextFormatErrors errors;
  parser.RecordErrorsTo(&errors);
  TextFormat::ParseInfoTree locations;
  parser.WriteLocationsTo(&locations);
  if (!parser.ParseFromString(content, message)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", errors.first()));
  }
  // The parser takes any bytes into a string field ("\377").
  if (std::string found = FindNonUtf8String(*message, &locations, ""); !found.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", found));
  }
  return absl::OkStatus();
}

}  // namespace prolong
