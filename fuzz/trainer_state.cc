// trainer_state.json, as a checkpoint written by a process that may have died leaves it: any
// bytes either parse into a state that writes back and parses to itself, or fail with an error
// naming the file.
#include "trainer/checkpoint/trainer_state.h"

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const auto state = prolong::checkpoint::ParseTrainerState(text, "state.json");
  if (!state.ok()) {
    FUZZ_CHECK(absl::StartsWith(state.status().message(), "state.json: "),
               state.status().ToString());
    return 0;
  }
  const std::string written = prolong::checkpoint::TrainerStateToJson(*state);
  const auto reread = prolong::checkpoint::ParseTrainerState(written, "written.json");
  FUZZ_CHECK(reread.ok(), reread.status().ToString());
  FUZZ_CHECK(*reread == *state, written);
  return 0;
}
