#include "scheduler/run_spec_check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "scheduler/after_sft.h"

namespace prolong::scheduler {
namespace {

// Run and stage names become parts of job, pod and directory names.
constexpr size_t kMaxNameLength = 63;
// How far a stage's proportions may sum from 1 (as run_spec.proto promises the datamixer).
constexpr double kProportionTolerance = 1e-6;

// Enough digits to show why a sum is not 1, few enough that 0.3 prints as 0.3.
std::string Number(double value) { return absl::StrFormat("%.10g", value); }

std::string Quoted(absl::string_view text) { return absl::StrCat("\"", absl::CEscape(text), "\""); }

// 1 to 63 lower-case letters, digits and characters of `extra`.
bool IsName(absl::string_view name, absl::string_view extra) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (const char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && !absl::StrContains(extra, c)) {
      return false;
    }
  }
  return true;
}

// An RFC 1123 label, as Kubernetes names namespaces: [a-z0-9]([-a-z0-9]*[a-z0-9])?.
bool IsDnsLabel(absl::string_view label) {
  return IsName(label, "-") && label.front() != '-' && label.back() != '-';
}

// host:port or [v6]:port, the port in 1..65535.
bool IsHostPort(absl::string_view address) {
  absl::string_view host;
  absl::string_view port;
  if (absl::ConsumePrefix(&address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) return false;
    host = address.substr(0, close);
    address.remove_prefix(close + 1);
    if (!absl::ConsumePrefix(&address, ":")) return false;
    port = address;
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    // An IPv6 address must be bracketed, or its last group would read as the port.
    if (absl::StrContains(host, ':')) return false;
  }
  if (host.empty()) return false;
  for (const char c : host) {
    if (!absl::ascii_isgraph(c) || c == '/' || c == '[' || c == ']' || c == '@') return false;
  }
  if (port.empty() || port.size() > 5) return false;
  for (const char c : port) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  int number = 0;
  return absl::SimpleAtoi(port, &number) && number >= 1 && number <= 65535;
}

// `path` without its trailing slash, except for "/" itself.
absl::string_view WithoutTrailingSlash(absl::string_view path) {
  if (path.size() > 1) absl::ConsumeSuffix(&path, "/");
  return path;
}

// Whether `path` (checked: absolute, no empty, "." or ".." components) is `root` or below it.
bool IsUnder(absl::string_view path, absl::string_view root) {
  path = WithoutTrailingSlash(path);
  root = WithoutTrailingSlash(root);
  if (root == "/" || path == root) return true;
  return absl::StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/';
}

// What is wrong with `path` as a path the run may use, or "" when nothing is.
std::string PathProblem(absl::string_view path, const PathRoots& roots) {
  const std::string given = absl::StrCat(", got ", Quoted(path));
  if (!absl::StartsWith(path, "/")) return absl::StrCat("must be an absolute path", given);
  for (const char c : path) {
    if (absl::ascii_iscntrl(c)) return absl::StrCat("must not contain control characters", given);
  }
  absl::string_view rest = WithoutTrailingSlash(path);
  rest.remove_prefix(1);
  if (!rest.empty()) {
    for (const absl::string_view component : absl::StrSplit(rest, '/')) {
      if (component.empty()) return absl::StrCat("must not contain an empty component", given);
      if (component == "." || component == "..") {
        return absl::StrCat("must not contain a \"", component, "\" component", given);
      }
    }
  }
  if (roots.roots.empty()) return "";
  for (const std::string& root : roots.roots) {
    if (IsUnder(path, root)) return "";
  }
  return absl::StrCat(absl::CEscape(path), " is outside the allowed roots (",
                      absl::StrJoin(roots.roots, ", "), ")");
}

// Whether a Duration is above zero (and well formed: nanos of the seconds' sign, under 1 s).
bool IsPositive(const google::protobuf::Duration& duration) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (nanos <= -1'000'000'000 || nanos >= 1'000'000'000) return false;
  return (seconds > 0 && nanos >= 0) || (seconds == 0 && nanos > 0);
}

std::string DurationText(const google::protobuf::Duration& duration) {
  if (duration.nanos() == 0) return absl::StrCat(duration.seconds(), "s");
  return absl::StrCat(duration.seconds(), "s ", duration.nanos(), "ns");
}

// The world size of a stage, or 0 when its layout is invalid (and reported elsewhere).
int64_t WorldSize(const Layout& layout) {
  if (layout.dp < 1 || layout.cp < 1) return 0;
  return int64_t{layout.dp} * layout.cp;
}

class Checker {
 public:
  Checker(const v1::RunSpec& spec, const PathRoots& roots) : spec_(spec), roots_(roots) {}

  std::vector<SpecProblem> Check() && {
    CheckName();
    CheckModel();
    CheckStages();
    CheckOptimizer();
    CheckData();
    CheckResources();
    CheckCheckpoint();
    CheckEvaluation();
    CheckFault();
    return std::move(problems_);
  }

 private:
  void Add(std::string field, std::string message) {
    problems_.push_back({std::move(field), std::move(message)});
  }

  void AtLeast(std::string field, int64_t value, int64_t minimum) {
    if (value >= minimum) return;
    const std::string expected = minimum == 1   ? "must be positive"
                                 : minimum == 0 ? "must not be negative"
                                                : absl::StrCat("must be at least ", minimum);
    Add(std::move(field), absl::StrCat(expected, ", got ", value));
  }

  // A finite value >= 0, where 0 usually means a default.
  void NonNegative(std::string field, double value) {
    if (std::isfinite(value) && value >= 0) return;
    Add(std::move(field), absl::StrCat("must be a finite number >= 0, got ", Number(value)));
  }

  // `value` in [0, 1) or, with `one_allowed`, [0, 1].
  void Fraction(std::string field, double value, bool one_allowed) {
    if (value >= 0 && (one_allowed ? value <= 1 : value < 1)) return;
    Add(std::move(field),
        absl::StrCat("must be in [0, 1", one_allowed ? "]" : ")", ", got ", Number(value)));
  }

  // A value `type` names; its *_UNSPECIFIED (0) only with `unspecified_allowed`.
  void KnownValue(std::string field, int value, const google::protobuf::EnumDescriptor* type,
                  bool unspecified_allowed) {
    const google::protobuf::EnumValueDescriptor* named = type->FindValueByNumber(value);
    if (named != nullptr && (unspecified_allowed || value != 0)) return;
    std::vector<std::string> names;
    for (int i = 0; i < type->value_count(); ++i) {
      if (unspecified_allowed || type->value(i)->number() != 0) {
        names.push_back(type->value(i)->name());
      }
    }
    Add(std::move(field), absl::StrCat("must be one of ", absl::StrJoin(names, ", "), ", got ",
                                       named != nullptr ? named->name() : absl::StrCat(value)));
  }

  void Path(std::string field, const std::string& path) {
    std::string problem = PathProblem(path, roots_);
    if (!problem.empty()) Add(std::move(field), std::move(problem));
  }

  // An optional service address.
  void Address(std::string field, const std::string& address) {
    if (address.empty() || IsHostPort(address)) return;
    Add(std::move(field),
        absl::StrCat("must be host:port (or [v6]:port) with a port in 1..65535, got ",
                     Quoted(address)));
  }

  // An optional timeout.
  void Timeout(std::string field, bool has, const google::protobuf::Duration& duration) {
    if (!has || IsPositive(duration)) return;
    Add(std::move(field), absl::StrCat("must be positive when set, got ", DurationText(duration)));
  }

  void CheckName() {
    if (IsName(spec_.name(), "-")) return;
    Add("name", absl::StrCat("must match [a-z0-9-]{1,63}, got ", Quoted(spec_.name())));
  }

  void CheckModel() {
    const v1::ModelSpec& model = spec_.model();
    switch (model.source_case()) {
      case v1::ModelSpec::kConfig:
        CheckLlamaConfig(model.config());
        break;
      case v1::ModelSpec::kInitCheckpoint:
        Path("model.init_checkpoint", model.init_checkpoint());
        break;
      case v1::ModelSpec::SOURCE_NOT_SET:
        Add("model.source", "give model.config or model.init_checkpoint");
        break;
    }
    if (!model.tokenizer().path().empty()) {
      Path("model.tokenizer.path", model.tokenizer().path());
    } else if (spec_.evaluation().on_checkpoint()) {
      Add("model.tokenizer.path",
          "required with evaluation.on_checkpoint: the evaluator tokenizes the prompts with it");
    }
    KnownValue("model.tokenizer.preset", model.tokenizer().preset(),
               v1::TokenizerPreset_descriptor(), true);
    KnownValue("model.precision", model.precision(), v1::Precision_descriptor(), true);
    KnownValue("model.activation_checkpointing", model.activation_checkpointing(),
               v1::ActivationCheckpointing_descriptor(), true);
  }

  void CheckLlamaConfig(const v1::LlamaConfig& config) {
    const std::string at = "model.config.";
    AtLeast(at + "vocab_size", config.vocab_size(), 1);
    AtLeast(at + "hidden_size", config.hidden_size(), 1);
    const int heads = config.num_attention_heads();
    if (config.hidden_size() > 0 && heads > 0 && config.hidden_size() % heads != 0) {
      Add(at + "hidden_size", absl::StrCat("must be a multiple of num_attention_heads (", heads,
                                           "), got ", config.hidden_size()));
    }
    AtLeast(at + "intermediate_size", config.intermediate_size(), 1);
    AtLeast(at + "num_hidden_layers", config.num_hidden_layers(), 1);
    AtLeast(at + "num_attention_heads", heads, 1);
    const int kv_heads = config.num_key_value_heads();
    if (kv_heads < 1) {
      AtLeast(at + "num_key_value_heads", kv_heads, 1);
    } else if (heads > 0 && heads % kv_heads != 0) {
      Add(at + "num_key_value_heads",
          absl::StrCat("must divide num_attention_heads (", heads, "), got ", kv_heads));
    }
    NonNegative(at + "rms_norm_eps", config.rms_norm_eps());
    NonNegative(at + "rope_theta", config.rope_theta());
    AtLeast(at + "max_position_embeddings", config.max_position_embeddings(), 0);
  }

  void CheckStages() {
    if (spec_.stages().empty()) {
      Add("stages", "must have at least one stage, got none");
      return;
    }
    for (int i = 0; i < spec_.stages_size(); ++i) CheckStage(i);
  }

  void CheckStage(int index) {
    const v1::StageSpec& stage = spec_.stages(index);
    const std::string at = absl::StrCat("stages[", index, "].");
    if (!IsName(stage.name(), "_-")) {
      Add(at + "name", absl::StrCat("must match [a-z0-9_-]{1,63}, got ", Quoted(stage.name())));
    } else {
      for (int j = 0; j < index; ++j) {
        if (spec_.stages(j).name() == stage.name()) {
          Add(at + "name", absl::StrCat("must be unique, got ", Quoted(stage.name()),
                                        ", the name of stages[", j, "]"));
          break;
        }
      }
    }
    const int64_t seq_len = stage.seq_len();
    // Each position predicts the next: a sequence needs two tokens (the datamixer's packer too).
    AtLeast(at + "seq_len", seq_len, 2);
    AtLeast(at + "total_tokens", stage.total_tokens(), 1);
    const int64_t batch_tokens = stage.batch_tokens();
    if (batch_tokens < 1) {
      AtLeast(at + "batch_tokens", batch_tokens, 1);
    } else if (seq_len >= 2 && batch_tokens % seq_len != 0) {
      Add(at + "batch_tokens",
          absl::StrCat("must be a multiple of seq_len (", seq_len, "), got ", batch_tokens));
    } else if (seq_len >= 2) {
      const int64_t sequences = batch_tokens / seq_len;
      const int dp = StageLayoutOf(spec_, index).dp;
      if (dp >= 1 && sequences % dp != 0) {
        Add(at + "batch_tokens",
            absl::StrCat("batch_tokens / seq_len = ", sequences,
                         " sequences per batch must split evenly over data_parallel = ", dp));
      }
    }
    CheckSchedule(at + "schedule.", stage.schedule());
    NonNegative(at + "rope_theta", stage.rope_theta());
    CheckMixture(at + "mixture", stage);
    const v1::StageLayout& layout = stage.layout();
    AtLeast(at + "layout.data_parallel", layout.data_parallel(), 0);
    AtLeast(at + "layout.context_parallel", layout.context_parallel(), 0);
    AtLeast(at + "layout.micro_batch_sequences", layout.micro_batch_sequences(), 0);
  }

  void CheckSchedule(const std::string& at, const v1::LearningRateSchedule& schedule) {
    if (!(std::isfinite(schedule.peak_lr()) && schedule.peak_lr() > 0)) {
      Add(at + "peak_lr",
          absl::StrCat("must be a finite number > 0, got ", Number(schedule.peak_lr())));
    }
    Fraction(at + "warmup_fraction", schedule.warmup_fraction(), /*one_allowed=*/false);
    KnownValue(at + "shape", schedule.shape(), v1::ScheduleShape_descriptor(), true);
    Fraction(at + "min_lr_ratio", schedule.min_lr_ratio(), /*one_allowed=*/true);
  }

  // `field` is "stages[i].mixture".
  void CheckMixture(const std::string& field, const v1::StageSpec& stage) {
    if (stage.mixture().empty()) {
      Add(field, "must have at least one component, got none");
      return;
    }
    double sum = 0;
    for (int i = 0; i < stage.mixture_size(); ++i) {
      const v1::MixtureComponent& component = stage.mixture(i);
      const std::string at = absl::StrCat(field, "[", i, "].");
      if (component.domain().empty()) {
        Add(at + "domain", "must name a domain, got \"\"");
      } else {
        // The datamixer would refuse the stage: one share per domain.
        for (int j = 0; j < i; ++j) {
          if (stage.mixture(j).domain() == component.domain()) {
            Add(at + "domain",
                absl::StrCat("must be unique in the stage, got ", Quoted(component.domain()),
                             ", the domain of ", field, "[", j, "]"));
            break;
          }
        }
      }
      const double proportion = component.proportion();
      if (!(proportion > 0 && proportion <= 1)) {
        Add(at + "proportion", absl::StrCat("must be in (0, 1], got ", Number(proportion)));
      }
      sum += proportion;
      KnownValue(at + "packing", component.packing(), v1::Packing_descriptor(), false);
      AtLeast(at + "min_doc_tokens", component.min_doc_tokens(), 0);
    }
    if (!(std::fabs(sum - 1) <= kProportionTolerance)) {
      Add(field, absl::StrCat("proportions must sum to 1 (within ", kProportionTolerance, "), got ",
                              Number(sum)));
    }
  }

  void CheckOptimizer() {
    const v1::OptimizerSpec& optimizer = spec_.optimizer();
    Fraction("optimizer.beta1", optimizer.beta1(), /*one_allowed=*/false);
    Fraction("optimizer.beta2", optimizer.beta2(), /*one_allowed=*/false);
    NonNegative("optimizer.epsilon", optimizer.epsilon());
    NonNegative("optimizer.weight_decay", optimizer.weight_decay());
    NonNegative("optimizer.grad_clip_norm", optimizer.grad_clip_norm());
    KnownValue("optimizer.non_finite_loss", optimizer.non_finite_loss(),
               v1::NonFiniteLossPolicy_descriptor(), true);
  }

  void CheckData() { Address("data.datamixer_address", spec_.data().datamixer_address()); }

  void CheckResources() {
    const v1::Resources& resources = spec_.resources();
    AtLeast("resources.data_parallel", resources.data_parallel(), 0);
    AtLeast("resources.context_parallel", resources.context_parallel(), 0);
    AtLeast("resources.micro_batch_sequences", resources.micro_batch_sequences(), 0);
    KnownValue("resources.device", resources.device(), v1::Device_descriptor(), true);
    KnownValue("resources.context_parallel_scheme", resources.context_parallel_scheme(),
               v1::ContextParallelScheme_descriptor(), true);
    const int group = resources.shard_group_size();
    if (group < 0) {
      AtLeast("resources.shard_group_size", group, 0);
    } else if (group > 0 && !resources.shard_weights()) {
      Add("resources.shard_group_size",
          absl::StrCat("must be 0 without resources.shard_weights, got ", group));
    } else if (group > 0) {
      for (int i = 0; i < spec_.stages_size(); ++i) {
        const Layout layout = StageLayoutOf(spec_, i);
        const int64_t world = WorldSize(layout);
        if (world > 0 && world % group != 0) {
          Add("resources.shard_group_size",
              absl::StrCat("must divide every stage's world size (data_parallel x "
                           "context_parallel); stages[",
                           i, "] has ", layout.dp, " x ", layout.cp, " = ", world, ", got ",
                           group));
        }
      }
    }
    switch (resources.launcher_case()) {
      case v1::Resources::kLocal:
        if (!resources.local().work_dir().empty()) {
          Path("resources.local.work_dir", resources.local().work_dir());
        }
        break;
      case v1::Resources::kSlurm:
        CheckSlurm(resources.slurm());
        break;
      case v1::Resources::kKubernetes:
        CheckKubernetes(resources.kubernetes());
        break;
      case v1::Resources::LAUNCHER_NOT_SET:  // Local.
        break;
    }
  }

  void CheckSlurm(const v1::SlurmLauncher& slurm) {
    AtLeast("resources.slurm.nodes", slurm.nodes(), 0);
    AtLeast("resources.slurm.tasks_per_node", slurm.tasks_per_node(), 0);
    AtLeast("resources.slurm.gpus_per_node", slurm.gpus_per_node(), 0);
    Timeout("resources.slurm.time_limit", slurm.has_time_limit(), slurm.time_limit());
    if (slurm.nodes() < 1 || slurm.tasks_per_node() < 1) return;
    // The allocation holds the largest stage; smaller stages leave ranks idle.
    int64_t largest = 0;
    int largest_stage = -1;
    for (int i = 0; i < spec_.stages_size(); ++i) {
      const int64_t world = WorldSize(StageLayoutOf(spec_, i));
      if (world > largest) {
        largest = world;
        largest_stage = i;
      }
    }
    const int64_t tasks = int64_t{slurm.nodes()} * slurm.tasks_per_node();
    if (largest_stage >= 0 && tasks != largest) {
      Add("resources.slurm",
          absl::StrCat("nodes x tasks_per_node must equal the largest stage's world size, ",
                       largest, " (stages[", largest_stage, "]), got ", slurm.nodes(), " x ",
                       slurm.tasks_per_node(), " = ", tasks));
    }
  }

  void CheckKubernetes(const v1::KubernetesLauncher& kubernetes) {
    if (!kubernetes.namespace_().empty() && !IsDnsLabel(kubernetes.namespace_())) {
      Add("resources.kubernetes.namespace",
          absl::StrCat("must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63), got ",
                       Quoted(kubernetes.namespace_())));
    }
    if (kubernetes.image().empty()) {
      Add("resources.kubernetes.image", "must name a container image, got \"\"");
    }
    AtLeast("resources.kubernetes.gpus_per_pod", kubernetes.gpus_per_pod(), 0);
  }

  void CheckCheckpoint() {
    const v1::CheckpointPolicy& checkpoint = spec_.checkpoint();
    Path("checkpoint.directory", checkpoint.directory());
    AtLeast("checkpoint.every_steps", checkpoint.every_steps(), 0);
    AtLeast("checkpoint.keep_last", checkpoint.keep_last(), 0);
  }

  void CheckEvaluation() {
    const v1::EvaluationPolicy& evaluation = spec_.evaluation();
    Address("evaluation.evaluator_address", evaluation.evaluator_address());
    const v1::EvaluationSpec& eval_spec = evaluation.spec();
    if (evaluation.on_checkpoint() && eval_spec.tasks().empty()) {
      Add("evaluation.spec.tasks", "must have at least one task with evaluation.on_checkpoint");
    }
    for (int i = 0; i < eval_spec.tasks_size(); ++i) {
      const v1::EvalTask& task = eval_spec.tasks(i);
      const std::string at = absl::StrCat("evaluation.spec.tasks[", i, "].");
      if (task.name().empty()) Add(at + "name", "must name a task, got \"\"");
      for (int j = 0; j < task.input_lengths_size(); ++j) {
        AtLeast(absl::StrCat(at, "input_lengths[", j, "]"), task.input_lengths(j), 1);
      }
      AtLeast(at + "num_examples", task.num_examples(), 0);
      AtLeast(at + "shots", task.shots(), -1);
      KnownValue(at + "chat_template", task.chat_template(), v1::ChatTemplate_descriptor(), true);
    }
    AtLeast("evaluation.spec.max_new_tokens", eval_spec.max_new_tokens(), 0);
    if (evaluation.has_raw_checkpoints()) {
      CheckSelection("evaluation.raw_checkpoints", evaluation.raw_checkpoints());
    }
    if (evaluation.has_after_sft()) CheckAfterSft();
  }

  // A selection must pick something.
  void CheckSelection(const std::string& field, const v1::CheckpointSelection& selection) {
    AtLeast(field + ".every_steps", selection.every_steps(), 0);
    if (!selection.stage_ends() && selection.every_steps() <= 0) {
      Add(field, "selects no checkpoint: set stage_ends or every_steps");
    }
  }

  void CheckAfterSft() {
    const v1::AfterSftPolicy& policy = spec_.evaluation().after_sft();
    const std::string at = "evaluation.after_sft.";
    CheckSelection(at + "checkpoints", policy.checkpoints());
    if (policy.checkpoints().every_steps() > 0 && spec_.checkpoint().keep_last() > 0) {
      Add("checkpoint.keep_last",
          "must be 0 with evaluation.after_sft.checkpoints.every_steps: side jobs start from "
          "checkpoints the run may have deleted by then (stage ends are always kept), got " +
              std::to_string(spec_.checkpoint().keep_last()));
    }
    if (policy.stage().rope_theta() != 0) {
      Add(at + "stage.rope_theta",
          absl::StrCat("must be 0: the SFT keeps the checkpoint's RoPE base, got ",
                       Number(policy.stage().rope_theta())));
    }
    const auto& mixture = policy.stage().mixture();
    if (!mixture.empty() && std::none_of(mixture.begin(), mixture.end(), [](const auto& c) {
          return c.packing() == v1::PACKING_SFT;
        })) {
      Add(at + "stage.mixture", "needs a domain with sft packing (chat data), got none");
    }
    for (int i = 0; i < spec_.stages_size(); ++i) {
      if (spec_.stages(i).name() == "after-sft") {
        Add(absl::StrCat("stages[", i, "].name"),
            "\"after-sft\" is the directory of evaluation.after_sft's side jobs; rename the stage");
      }
    }
    if (spec_.model().tokenizer().path().empty() && !spec_.evaluation().on_checkpoint()) {
      Add("model.tokenizer.path",
          "required with evaluation.after_sft: the evaluator tokenizes the prompts with it");
    }
    // The side job as the run of its own it becomes. Its problems that come from the run's own
    // fields were reported above; the rest are named where the operator wrote them.
    v1::Checkpoint example;
    example.set_stage(spec_.stages().empty() ? "stage" : spec_.stages(0).name());
    example.set_step(1);
    example.set_path(spec_.checkpoint().directory() + "/step");
    for (SpecProblem& problem : Checker(SideJobSpec(spec_, example), roots_).Check()) {
      std::string field;
      if (absl::StartsWith(problem.field, "stages[0]")) {
        field = at + "stage" + problem.field.substr(strlen("stages[0]"));
      } else if (absl::StartsWith(problem.field, "resources")) {
        field = policy.has_resources() ? at + problem.field : problem.field;
      } else if (absl::StartsWith(problem.field, "evaluation.spec")) {
        field =
            policy.has_spec() ? at + problem.field.substr(strlen("evaluation.")) : problem.field;
      } else {
        continue;
      }
      // The side job's only stage is the policy's.
      std::string message =
          absl::StrReplaceAll(problem.message, {{"stages[0]", "evaluation.after_sft.stage"}});
      const bool reported =
          std::any_of(problems_.begin(), problems_.end(), [&](const SpecProblem& known) {
            return known.field == field && known.message == message;
          });
      if (!reported) Add(std::move(field), std::move(message));
    }
  }

  void CheckFault() {
    const v1::FaultPolicy& fault = spec_.fault();
    AtLeast("fault.max_restarts", fault.max_restarts(), 0);
    Timeout("fault.heartbeat_timeout", fault.has_heartbeat_timeout(), fault.heartbeat_timeout());
    Timeout("fault.rendezvous_timeout", fault.has_rendezvous_timeout(), fault.rendezvous_timeout());
  }

  const v1::RunSpec& spec_;
  const PathRoots& roots_;
  std::vector<SpecProblem> problems_;
};

}  // namespace

std::vector<SpecProblem> CheckRunSpec(const v1::RunSpec& spec, const PathRoots& roots) {
  return Checker(spec, roots).Check();
}

absl::Status RunSpecStatus(const std::vector<SpecProblem>& problems) {
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrJoin(problems, "; ", [](std::string* out, const SpecProblem& problem) {
        absl::StrAppend(out, problem.field, ": ", problem.message);
      }));
}

Layout StageLayoutOf(const v1::RunSpec& spec, int stage_index) {
  if (stage_index < 0 || stage_index >= spec.stages_size()) {
    std::fprintf(stderr, "StageLayoutOf: stage_index %d is not in [0, %d)\n", stage_index,
                 spec.stages_size());
    std::abort();
  }
  const v1::StageLayout& stage = spec.stages(stage_index).layout();
  const v1::Resources& resources = spec.resources();
  // The stage's value, else the run's, else 1.
  const auto pick = [](int stage_value, int run_value) {
    if (stage_value != 0) return stage_value;
    return run_value != 0 ? run_value : 1;
  };
  Layout layout;
  layout.dp = pick(stage.data_parallel(), resources.data_parallel());
  layout.cp = pick(stage.context_parallel(), resources.context_parallel());
  layout.micro_batch_sequences =
      pick(stage.micro_batch_sequences(), resources.micro_batch_sequences());
  return layout;
}

}  // namespace prolong::scheduler
