#include "fuzz/spec_file.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/proto_file.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"

namespace prolong::fuzz {
namespace {

using google::protobuf::Message;

// Whether two messages are equal, a NaN equal to a NaN (the loaders accept "nan"); else the
// difference.
std::string Difference(const Message& expected, const Message& actual) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string difference;
  differencer.ReportDifferencesToString(&difference);
  if (differencer.Compare(expected, actual)) return "";
  return difference.empty() ? "differ" : difference;
}

}  // namespace

bool ReadSpecFile(uint8_t format, absl::string_view text, Message* message) {
  static constexpr const char* kNames[] = {"spec.yaml", "spec.json", "spec.textproto",
                                           "spec.pbtxt"};
  const std::string path = WriteScratchFile(kNames[format % 4], text);
  const absl::Status read = ReadProtoFile(path, message);
  if (!read.ok()) {
    FUZZ_CHECK(read.code() == absl::StatusCode::kInvalidArgument, read.ToString());
    FUZZ_CHECK(
        absl::StartsWith(read.message(), path + ":") && read.message().size() > path.size() + 1,
        read.ToString());
    return false;
  }

  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*message, &printed), "cannot print");
  const std::string printed_path = WriteScratchFile("printed.textproto", printed);
  std::unique_ptr<Message> reread(message->New());
  const absl::Status reread_status = ReadProtoFile(printed_path, reread.get());
  FUZZ_CHECK(reread_status.ok(), absl::StrCat(reread_status.ToString(), "\n", printed));
  const std::string text_difference = Difference(*message, *reread);
  FUZZ_CHECK(text_difference.empty(), absl::StrCat(text_difference, "\n", printed));

  std::string wire;
  FUZZ_CHECK(message->SerializeToString(&wire), "cannot serialize");
  std::unique_ptr<Message> received(message->New());
  FUZZ_CHECK(received->ParseFromString(wire),
             absl::StrCat("the receiver cannot parse what was read:\n", printed));
  const std::string wire_difference = Difference(*message, *received);
  FUZZ_CHECK(wire_difference.empty(), absl::StrCat(wire_difference, "\n", printed));
  return true;
}

}  // namespace prolong::fuzz
