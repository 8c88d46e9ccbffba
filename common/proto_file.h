// Messages from the files operators write: YAML (which includes JSON) or protobuf text format.
//
// YAML keys are the proto field names (snake_case) or their JSON names (camelCase). Enum values
// may be written in full (PACKING_LONG), by number, or by their short name in any case (long,
// Long), the enum's common prefix being implied. Integers may carry '_' separators (4_194_304).
// Errors name the file, the line and the field path (stages[1].mixture[0].packing).
#ifndef PROLONG_COMMON_PROTO_FILE_H_
#define PROLONG_COMMON_PROTO_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace prolong {

// By extension: .textproto, .txtpb, .pbtxt and .textpb are text format; anything else is YAML.
// NOT_FOUND for a missing file, INVALID_ARGUMENT for content that does not fit the message.
absl::Status ReadProtoFile(const std::string& path, google::protobuf::Message* message);

// `name` labels errors (a file name, "--stage").
absl::Status ParseYamlProto(absl::string_view yaml, absl::string_view name,
                            google::protobuf::Message* message);

}  // namespace prolong

#endif  // PROLONG_COMMON_PROTO_FILE_H_
