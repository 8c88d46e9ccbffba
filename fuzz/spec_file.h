// What the stage-spec and run-spec fuzz functions share: an operator's spec file, in the format
// one byte picks, read as prolongctl and the trainer read it (ReadProtoFile), and the checks
// every spec file must pass whatever message it holds.
#ifndef PROLONG_FUZZ_SPEC_FILE_H_
#define PROLONG_FUZZ_SPEC_FILE_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace prolong::fuzz {

// Writes `text` to a scratch file named by `format` (.yaml, .json, .textproto or .pbtxt: the
// loader picks YAML or text format by the extension) and reads it into `message`. A failed read
// must be INVALID_ARGUMENT naming the file and saying more; a message read must print as text
// format and read back equal, and cross the wire (the specs are sent as read: SubmitRun,
// PlanStage) back to itself. Returns whether the read succeeded.
bool ReadSpecFile(uint8_t format, absl::string_view text, google::protobuf::Message* message);

}  // namespace prolong::fuzz

#endif  // PROLONG_FUZZ_SPEC_FILE_H_
