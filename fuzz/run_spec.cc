// A run spec file (`prolongctl run submit SPEC`) as an operator writes it: the first byte picks
// the file's extension (.yaml, .json, .textproto, .pbtxt: the loader's format) and whether the
// scheduler allows any absolute path or only some roots; the rest is the file. Any bytes either
// fail naming the file, or give a RunSpec that round-trips through text format and the wire
// (spec_file.h) and that the scheduler's checker (run_spec_check.h) judges without crashing:
// every problem names, by its path, a field the spec has (each index within its list, a list
// as a whole, or a oneof) and says what is wrong, and the problems make an error exactly when
// there are any.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fuzz/check.h"
#include "fuzz/spec_file.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "prolong/v1/run_spec.pb.h"
#include "scheduler/run_spec_check.h"

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Whether `path` ("stages[1].mixture[0].packing", "stages[1].mixture", "model.source") names a
// field of `message`: each component a field of the message before it (or, last, a oneof), an
// index only on a list and within it, and only the last component a scalar or a whole list.
bool NamesField(const Message& message, absl::string_view path) {
  const Message* current = &message;
  const std::vector<absl::string_view> components = absl::StrSplit(path, '.');
  for (size_t i = 0; i < components.size(); ++i) {
    const bool last = i + 1 == components.size();
    absl::string_view name = components[i];
    int index = -1;
    if (const size_t open = name.find('['); open != absl::string_view::npos) {
      if (name.back() != ']' ||
          !absl::SimpleAtoi(name.substr(open + 1, name.size() - open - 2), &index) || index < 0) {
        return false;
      }
      name = name.substr(0, open);
    }
    const auto* type = current->GetDescriptor();
    const FieldDescriptor* field = type->FindFieldByName(std::string(name));
    if (field == nullptr) return last && index < 0 && type->FindOneofByName(std::string(name));
    const auto* reflection = current->GetReflection();
    if (index >= 0) {
      if (!field->is_repeated() || index >= reflection->FieldSize(*current, field)) return false;
      if (last) return true;
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return false;
      current = &reflection->GetRepeatedMessage(*current, field, index);
      continue;
    }
    if (last) return true;
    if (field->is_repeated() || field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return false;
    }
    current = &reflection->GetMessage(*current, field);
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  prolong::v1::RunSpec spec;
  if (!prolong::fuzz::ReadSpecFile(data[0], text, &spec)) return 0;

  prolong::scheduler::PathRoots roots;
  if ((data[0] / 4) % 2 == 1) roots.roots = {"/data/runs", "/scratch/"};
  const std::vector<prolong::scheduler::SpecProblem> problems =
      prolong::scheduler::CheckRunSpec(spec, roots);
  // Messages are built only when a check fails: a spec may hold many problems and be large.
  for (const auto& problem : problems) {
    FUZZ_CHECK(NamesField(spec, problem.field), problem.field + ": " + problem.message);
    FUZZ_CHECK(!problem.message.empty(), problem.field);
  }
  FUZZ_CHECK(prolong::scheduler::RunSpecStatus(problems).ok() == problems.empty(),
             spec.ShortDebugString());
  for (int i = 0; i < spec.stages_size(); ++i) prolong::scheduler::StageLayoutOf(spec, i);
  return 0;
}
