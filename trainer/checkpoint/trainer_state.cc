#include "trainer/checkpoint/trainer_state.h"

#include <filesystem>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong::checkpoint {
namespace {

using Json = nlohmann::json;

constexpr int kFormatVersion = 1;

Json StringMap(const std::map<std::string, std::string>& map) {
  Json json = Json::object();
  for (const auto& [key, value] : map) json[key] = value;
  return json;
}

// Lookups into a parsed trainer_state.json whose errors name the key.
class Reader {
 public:
  explicit Reader(absl::string_view source) : source_(source) {}

  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", key, " ", what));
  }

  absl::StatusOr<const Json*> Child(const Json& parent, const std::string& key,
                                    const std::string& path, bool required) const {
    const auto it = parent.find(key);
    if (it == parent.end()) {
      if (required) return Error(path, "is missing");
      return nullptr;
    }
    return &*it;
  }

  absl::StatusOr<int64_t> Int(const Json& parent, const std::string& key, const std::string& path,
                              int64_t fallback, int64_t minimum) const {
    ASSIGN_OR_RETURN(const Json* value, Child(parent, key, path, /*required=*/false));
    if (value == nullptr) return fallback;
    if (!value->is_number_integer() || value->get<int64_t>() < minimum) {
      return Error(path, absl::StrCat("must be an integer >= ", minimum));
    }
    return value->get<int64_t>();
  }

  absl::StatusOr<std::string> String(const Json& parent, const std::string& key,
                                     const std::string& path) const {
    ASSIGN_OR_RETURN(const Json* value, Child(parent, key, path, /*required=*/false));
    if (value == nullptr) return std::string();
    if (!value->is_string()) return Error(path, "must be a string");
    return value->get<std::string>();
  }

  absl::StatusOr<std::map<std::string, std::string>> Map(const Json& parent, const std::string& key,
                                                         const std::string& path) const {
    std::map<std::string, std::string> map;
    ASSIGN_OR_RETURN(const Json* value, Child(parent, key, path, /*required=*/false));
    if (value == nullptr) return map;
    if (!value->is_object()) return Error(path, "must be an object of strings");
    for (const auto& [name, item] : value->items()) {
      if (!item.is_string()) return Error(absl::StrCat(path, ".", name), "must be a string");
      map[name] = item.get<std::string>();
    }
    return map;
  }

  absl::StatusOr<std::string> Base64(const Json& value, const std::string& path) const {
    std::string bytes;
    if (!value.is_string() || !absl::Base64Unescape(value.get<std::string>(), &bytes)) {
      return Error(path, "must be a base64 string");
    }
    return bytes;
  }

 private:
  std::string source_;
};

}  // namespace

bool RngState::operator==(const RngState& other) const {
  return torch_cpu == other.torch_cpu && torch_cuda == other.torch_cuda;
}

bool RunInfo::operator==(const RunInfo& other) const {
  return run_name == other.run_name && dp_size == other.dp_size && cp_size == other.cp_size &&
         versions == other.versions;
}

bool TrainerState::operator==(const TrainerState& other) const {
  return step == other.step && stage_index == other.stage_index && stage_name == other.stage_name &&
         schedule == other.schedule && data_cursor == other.data_cursor && rng == other.rng &&
         run == other.run && elapsed_seconds == other.elapsed_seconds && saved_at == other.saved_at;
}

std::string TrainerStateToJson(const TrainerState& state) {
  Json cuda = Json::array();
  for (const std::string& bytes : state.rng.torch_cuda) cuda.push_back(absl::Base64Escape(bytes));
  Json rng = {{"torch_cuda", cuda}};
  if (!state.rng.torch_cpu.empty()) rng["torch_cpu"] = absl::Base64Escape(state.rng.torch_cpu);
  const Json json = {
      {"format_version", kFormatVersion},
      {"step", state.step},
      {"stage", {{"index", state.stage_index}, {"name", state.stage_name}}},
      {"schedule", StringMap(state.schedule)},
      {"data_cursor", StringMap(state.data_cursor)},
      {"rng", rng},
      {"run",
       {{"name", state.run.run_name},
        {"dp_size", state.run.dp_size},
        {"cp_size", state.run.cp_size},
        {"versions", StringMap(state.run.versions)}}},
      {"elapsed_seconds", state.elapsed_seconds},
      {"saved_at", state.saved_at},
  };
  return json.dump(2) + "\n";
}

absl::StatusOr<TrainerState> ParseTrainerState(absl::string_view text, absl::string_view source) {
  const Reader reader(source);
  const Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  ASSIGN_OR_RETURN(const int64_t version,
                   reader.Int(json, "format_version", "format_version", -1, 1));
  if (version == -1) return reader.Error("format_version", "is missing");
  if (version > kFormatVersion) {
    return reader.Error("format_version",
                        absl::StrCat(version, " is newer than this reader (", kFormatVersion, ")"));
  }
  TrainerState state;
  ASSIGN_OR_RETURN(const Json* step, reader.Child(json, "step", "step", /*required=*/true));
  if (!step->is_number_integer() || step->get<int64_t>() < 0) {
    return reader.Error("step", "must be a non-negative integer");
  }
  state.step = step->get<int64_t>();
  ASSIGN_OR_RETURN(const Json* stage, reader.Child(json, "stage", "stage", /*required=*/false));
  if (stage != nullptr) {
    if (!stage->is_object()) return reader.Error("stage", "must be an object");
    ASSIGN_OR_RETURN(state.stage_index, reader.Int(*stage, "index", "stage.index", 0, 0));
    ASSIGN_OR_RETURN(state.stage_name, reader.String(*stage, "name", "stage.name"));
  }
  ASSIGN_OR_RETURN(state.schedule, reader.Map(json, "schedule", "schedule"));
  ASSIGN_OR_RETURN(state.data_cursor, reader.Map(json, "data_cursor", "data_cursor"));

  ASSIGN_OR_RETURN(const Json* rng, reader.Child(json, "rng", "rng", /*required=*/false));
  if (rng != nullptr) {
    if (!rng->is_object()) return reader.Error("rng", "must be an object");
    ASSIGN_OR_RETURN(const Json* cpu, reader.Child(*rng, "torch_cpu", "rng.torch_cpu", false));
    if (cpu != nullptr) {
      ASSIGN_OR_RETURN(state.rng.torch_cpu, reader.Base64(*cpu, "rng.torch_cpu"));
    }
    ASSIGN_OR_RETURN(const Json* cuda, reader.Child(*rng, "torch_cuda", "rng.torch_cuda", false));
    if (cuda != nullptr) {
      if (!cuda->is_array()) return reader.Error("rng.torch_cuda", "must be a list");
      for (size_t i = 0; i < cuda->size(); ++i) {
        ASSIGN_OR_RETURN(std::string bytes,
                         reader.Base64((*cuda)[i], absl::StrCat("rng.torch_cuda[", i, "]")));
        state.rng.torch_cuda.push_back(std::move(bytes));
      }
    }
  }

  ASSIGN_OR_RETURN(const Json* run, reader.Child(json, "run", "run", /*required=*/false));
  if (run != nullptr) {
    if (!run->is_object()) return reader.Error("run", "must be an object");
    ASSIGN_OR_RETURN(state.run.run_name, reader.String(*run, "name", "run.name"));
    ASSIGN_OR_RETURN(state.run.dp_size, reader.Int(*run, "dp_size", "run.dp_size", 1, 1));
    ASSIGN_OR_RETURN(state.run.cp_size, reader.Int(*run, "cp_size", "run.cp_size", 1, 1));
    ASSIGN_OR_RETURN(state.run.versions, reader.Map(*run, "versions", "run.versions"));
  }
  ASSIGN_OR_RETURN(const Json* elapsed,
                   reader.Child(json, "elapsed_seconds", "elapsed_seconds", false));
  if (elapsed != nullptr) {
    if (!elapsed->is_number() || elapsed->get<double>() < 0) {
      return reader.Error("elapsed_seconds", "must be a non-negative number");
    }
    state.elapsed_seconds = elapsed->get<double>();
  }
  ASSIGN_OR_RETURN(state.saved_at, reader.String(json, "saved_at", "saved_at"));
  return state;
}

absl::StatusOr<TrainerState> ReadTrainerState(const std::string& checkpoint_dir) {
  const std::string path = (std::filesystem::path(checkpoint_dir) / kTrainerStateFile).string();
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  return ParseTrainerState(text, path);
}

}  // namespace prolong::checkpoint
