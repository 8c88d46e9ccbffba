#include "scheduler/run_spec_check.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

using ::prolong::testing::IsOk;
using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ProLong's recipe on one 8-GPU node: Llama-3-8B-Instruct trained at 64K with 8-way data
// parallelism, then at 512K with each sequence split over the 8 GPUs.
constexpr char kProLong[] = R"pb(
  name: "prolong-8b"
  model {
    init_checkpoint: "/models/llama-3-8b-instruct"
    tokenizer { path: "/models/llama-3-8b-instruct/tokenizer.json" }
    precision: PRECISION_BF16
  }
  stages {
    name: "stage1_64k"
    seq_len: 65536
    total_tokens: 20000000000
    batch_tokens: 4194304
    schedule { peak_lr: 1e-5 warmup_fraction: 0.05 shape: SCHEDULE_SHAPE_COSINE min_lr_ratio: 0.1 }
    rope_theta: 8e6
    mixture { domain: "code_repos" proportion: 0.3 packing: PACKING_LONG }
    mixture { domain: "books" proportion: 0.3 packing: PACKING_LONG }
    mixture { domain: "textbooks" proportion: 0.03 packing: PACKING_LONG }
    mixture { domain: "fineweb_edu" proportion: 0.37 packing: PACKING_SHORT }
  }
  stages {
    name: "stage2_512k"
    seq_len: 524288
    total_tokens: 20000000000
    batch_tokens: 8388608
    schedule { peak_lr: 1e-5 warmup_fraction: 0.05 min_lr_ratio: 0.1 }
    rope_theta: 1.28e8
    mixture { domain: "code_repos" proportion: 0.35 packing: PACKING_LONG }
    mixture { domain: "books" proportion: 0.35 packing: PACKING_LONG }
    mixture { domain: "fineweb_edu" proportion: 0.3 packing: PACKING_SHORT min_doc_tokens: 0 }
    layout { data_parallel: 1 context_parallel: 8 }
  }
  optimizer {
    beta1: 0.9
    beta2: 0.95
    weight_decay: 0.1
    grad_clip_norm: 1.0
    non_finite_loss: NON_FINITE_LOSS_POLICY_SKIP_BATCH
  }
  data { datamixer_address: "datamixer.prolong.svc:7410" }
  resources {
    data_parallel: 8
    micro_batch_sequences: 1
    device: DEVICE_CUDA
    context_parallel_scheme: CONTEXT_PARALLEL_SCHEME_RING
    shard_weights: true
    shard_group_size: 8
    slurm {
      partition: "gpu"
      nodes: 1
      tasks_per_node: 8
      gpus_per_node: 8
      time_limit { seconds: 86400 }
    }
  }
  checkpoint { directory: "/ckpt/prolong-8b" every_steps: 500 keep_last: 3 }
  evaluation {
    on_checkpoint: true
    evaluator_address: "[::1]:7420"
    spec {
      tasks {
        name: "json_kv"
        input_lengths: [ 8192, 32768, 131072 ]
        num_examples: 100
        shots: -1
      }
      tasks { name: "ruler_mk_needle" input_lengths: 65536 chat_template: CHAT_TEMPLATE_OFF }
      max_new_tokens: 64
    }
  }
  fault {
    max_restarts: 3
    heartbeat_timeout { seconds: 60 }
    rendezvous_timeout { seconds: 300 }
  }
  seed: 42
)pb";

const PathRoots kRoots = {{"/models", "/ckpt"}};

v1::RunSpec ProLong() {
  v1::RunSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(kProLong, &spec));
  return spec;
}

// ProLong's spec with `text` merged over it.
v1::RunSpec ProLongWith(const std::string& text) {
  v1::RunSpec spec = ProLong();
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(text, &spec)) << text;
  return spec;
}

std::vector<std::string> Fields(const std::vector<SpecProblem>& problems) {
  std::vector<std::string> fields;
  for (const SpecProblem& problem : problems) fields.push_back(problem.field);
  return fields;
}

// The message of the one problem of `spec` (within kRoots).
std::string OnlyMessage(const v1::RunSpec& spec) {
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_EQ(problems.size(), 1u) << RunSpecStatus(problems);
  return problems.empty() ? "" : problems[0].message;
}

TEST(RunSpecCheckTest, ProLongIsValid) {
  const v1::RunSpec spec = ProLong();
  EXPECT_THAT(RunSpecStatus(CheckRunSpec(spec, kRoots)), IsOk());
  EXPECT_THAT(RunSpecStatus(CheckRunSpec(spec, PathRoots{})), IsOk());
}

// Llama-3-8B's shape, in place of ProLong's initial checkpoint and its tokenizer (so checkpoints
// are not evaluated, which needs it).
void UseFreshModel(v1::RunSpec& spec) {
  spec.mutable_model()->clear_tokenizer();
  spec.mutable_evaluation()->set_on_checkpoint(false);
  v1::LlamaConfig& config = *spec.mutable_model()->mutable_config();
  config.set_vocab_size(128256);
  config.set_hidden_size(4096);
  config.set_intermediate_size(14336);
  config.set_num_hidden_layers(32);
  config.set_num_attention_heads(32);
  config.set_num_key_value_heads(8);
  config.set_rms_norm_eps(1e-5);
  config.set_rope_theta(500000);
}

TEST(RunSpecCheckTest, AFreshModelAndDefaultsAreValid) {
  v1::RunSpec spec = ProLong();
  UseFreshModel(spec);
  spec.clear_optimizer();
  spec.clear_fault();
  spec.clear_data();
  spec.mutable_evaluation()->Clear();
  spec.mutable_resources()->clear_slurm();  // Local.
  EXPECT_THAT(RunSpecStatus(CheckRunSpec(spec, kRoots)), IsOk());
}

TEST(RunSpecCheckTest, Name) {
  EXPECT_EQ(OnlyMessage(ProLongWith(R"pb(name: "ProLong 8B")pb")),
            "must match [a-z0-9-]{1,63}, got \"ProLong 8B\"");
  EXPECT_THAT(Fields(CheckRunSpec(ProLongWith(R"pb(name: "")pb"), kRoots)), ElementsAre("name"));
  EXPECT_THAT(Fields(CheckRunSpec(ProLongWith("name: \"" + std::string(64, 'a') + "\""), kRoots)),
              ElementsAre("name"));
  EXPECT_THAT(CheckRunSpec(ProLongWith("name: \"" + std::string(63, 'a') + "\""), kRoots),
              IsEmpty());
  // Underscores are for stage names only.
  EXPECT_THAT(Fields(CheckRunSpec(ProLongWith(R"pb(name: "pro_long")pb"), kRoots)),
              ElementsAre("name"));
}

TEST(RunSpecCheckTest, ModelSource) {
  v1::RunSpec spec = ProLong();
  spec.mutable_model()->clear_init_checkpoint();
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("model.source"));
  EXPECT_EQ(OnlyMessage(spec), "give model.config or model.init_checkpoint");
}

TEST(RunSpecCheckTest, ModelConfig) {
  const v1::RunSpec spec = ProLongWith(R"pb(
    model {
      config {
        vocab_size: 0
        hidden_size: 4100
        intermediate_size: -1
        num_hidden_layers: 32
        num_attention_heads: 32
        num_key_value_heads: 5
        rms_norm_eps: -1e-5
        rope_theta: -1
        max_position_embeddings: -8192
      }
      tokenizer { path: "tokenizer.json" }
      precision: 7
    }
  )pb");
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("model.config.vocab_size", "model.config.hidden_size",
                          "model.config.intermediate_size", "model.config.num_key_value_heads",
                          "model.config.rms_norm_eps", "model.config.rope_theta",
                          "model.config.max_position_embeddings", "model.tokenizer.path",
                          "model.precision"));
  EXPECT_EQ(problems[0].message, "must be positive, got 0");
  EXPECT_EQ(problems[1].message, "must be a multiple of num_attention_heads (32), got 4100");
  EXPECT_EQ(problems[3].message, "must divide num_attention_heads (32), got 5");
  EXPECT_EQ(problems[8].message,
            "must be one of PRECISION_UNSPECIFIED, PRECISION_FP32, PRECISION_BF16, got 7");

  const v1::RunSpec no_heads = ProLongWith(R"pb(
    model { config { vocab_size: 1 hidden_size: 1 intermediate_size: 1 num_hidden_layers: 1 } }
  )pb");
  EXPECT_THAT(Fields(CheckRunSpec(no_heads, kRoots)),
              ElementsAre("model.config.num_attention_heads", "model.config.num_key_value_heads"));
}

TEST(RunSpecCheckTest, Stages) {
  EXPECT_THAT(Fields(CheckRunSpec(ProLongWith(""), kRoots)), IsEmpty());
  v1::RunSpec none = ProLong();
  none.clear_stages();
  EXPECT_THAT(Fields(CheckRunSpec(none, kRoots)), ElementsAre("stages"));

  v1::RunSpec spec = ProLong();
  v1::StageSpec& second = *spec.mutable_stages(1);
  second.set_name("stage1_64k");
  second.set_seq_len(1);
  second.set_total_tokens(-1);
  second.mutable_schedule()->set_peak_lr(std::nan(""));
  second.mutable_schedule()->set_warmup_fraction(1);
  second.mutable_schedule()->set_shape(static_cast<v1::ScheduleShape>(9));
  second.mutable_schedule()->set_min_lr_ratio(1.5);
  second.set_rope_theta(-1);
  second.mutable_layout()->set_micro_batch_sequences(-2);
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("stages[1].name", "stages[1].seq_len", "stages[1].total_tokens",
                          "stages[1].schedule.peak_lr", "stages[1].schedule.warmup_fraction",
                          "stages[1].schedule.shape", "stages[1].schedule.min_lr_ratio",
                          "stages[1].rope_theta", "stages[1].layout.micro_batch_sequences"));
  EXPECT_EQ(problems[0].message, "must be unique, got \"stage1_64k\", the name of stages[0]");
  EXPECT_EQ(problems[1].message, "must be at least 2, got 1");
  EXPECT_EQ(problems[3].message, "must be a finite number > 0, got nan");
  EXPECT_EQ(problems[4].message, "must be in [0, 1), got 1");
  EXPECT_EQ(problems[6].message, "must be in [0, 1], got 1.5");

  EXPECT_THAT(
      Fields(CheckRunSpec(ProLongWith(R"pb(stages { name: "SFT" })pb"), kRoots)),
      ElementsAre("stages[2].name", "stages[2].seq_len", "stages[2].total_tokens",
                  "stages[2].batch_tokens", "stages[2].schedule.peak_lr", "stages[2].mixture"));
}

TEST(RunSpecCheckTest, BatchTokens) {
  v1::RunSpec spec = ProLong();
  spec.mutable_stages(0)->set_batch_tokens(65536 * 3 + 1);
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("stages[0].batch_tokens"));
  EXPECT_EQ(OnlyMessage(spec), "must be a multiple of seq_len (65536), got 196609");

  // 12 sequences do not split over the run's 8 data-parallel ranks.
  spec.mutable_stages(0)->set_batch_tokens(65536 * 12);
  EXPECT_EQ(OnlyMessage(spec),
            "batch_tokens / seq_len = 12 sequences per batch must split evenly over "
            "data_parallel = 8");
  // The stage's own layout decides.
  spec.mutable_stages(0)->mutable_layout()->set_data_parallel(4);
  spec.mutable_stages(0)->mutable_layout()->set_context_parallel(2);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());

  spec = ProLong();
  spec.mutable_stages(1)->mutable_layout()->set_data_parallel(3);
  spec.mutable_stages(1)->mutable_layout()->set_context_parallel(0);
  spec.mutable_resources()->set_shard_weights(false);
  spec.mutable_resources()->set_shard_group_size(0);
  spec.mutable_resources()->mutable_slurm()->set_tasks_per_node(0);
  EXPECT_EQ(OnlyMessage(spec),
            "batch_tokens / seq_len = 16 sequences per batch must split evenly over "
            "data_parallel = 3");
  EXPECT_EQ(CheckRunSpec(spec, kRoots)[0].field, "stages[1].batch_tokens");
}

TEST(RunSpecCheckTest, Mixture) {
  v1::RunSpec spec = ProLong();
  v1::StageSpec& stage = *spec.mutable_stages(0);
  stage.mutable_mixture(0)->set_domain("");
  stage.mutable_mixture(1)->set_proportion(0);
  stage.mutable_mixture(2)->set_packing(v1::PACKING_UNSPECIFIED);
  stage.mutable_mixture(3)->set_min_doc_tokens(-1);
  stage.mutable_mixture(3)->set_domain("books");
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("stages[0].mixture[0].domain", "stages[0].mixture[1].proportion",
                          "stages[0].mixture[2].packing", "stages[0].mixture[3].domain",
                          "stages[0].mixture[3].min_doc_tokens", "stages[0].mixture"));
  EXPECT_EQ(problems[1].message, "must be in (0, 1], got 0");
  EXPECT_EQ(problems[2].message,
            "must be one of PACKING_LONG, PACKING_SHORT, PACKING_SFT, got PACKING_UNSPECIFIED");
  EXPECT_EQ(problems[3].message,
            "must be unique in the stage, got \"books\", the domain of stages[0].mixture[1]");
  EXPECT_EQ(problems[5].message, "proportions must sum to 1 (within 1e-06), got 0.7");

  // Within 1e-6 of 1 is 1; proportions above 1 are wrong on their own.
  spec = ProLong();
  spec.mutable_stages(0)->mutable_mixture(3)->set_proportion(0.37 + 5e-7);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());
  spec.mutable_stages(0)->mutable_mixture(3)->set_proportion(0.37 + 2e-6);
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("stages[0].mixture"));
  spec.mutable_stages(0)->mutable_mixture(3)->set_proportion(1.5);
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)),
              ElementsAre("stages[0].mixture[3].proportion", "stages[0].mixture"));

  spec = ProLong();
  spec.mutable_stages(1)->clear_mixture();
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("stages[1].mixture"));
}

TEST(RunSpecCheckTest, Optimizer) {
  const std::vector<SpecProblem> problems = CheckRunSpec(ProLongWith(R"pb(
                                                           optimizer {
                                                             beta1: 1
                                                             beta2: -0.1
                                                             epsilon: -1e-8
                                                             weight_decay: inf
                                                             grad_clip_norm: -1
                                                             non_finite_loss: 5
                                                           }
                                                         )pb"),
                                                         kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("optimizer.beta1", "optimizer.beta2", "optimizer.epsilon",
                          "optimizer.weight_decay", "optimizer.grad_clip_norm",
                          "optimizer.non_finite_loss"));
  EXPECT_EQ(problems[0].message, "must be in [0, 1), got 1");
  EXPECT_EQ(problems[3].message, "must be a finite number >= 0, got inf");
}

TEST(RunSpecCheckTest, Resources) {
  const std::vector<SpecProblem> problems = CheckRunSpec(ProLongWith(R"pb(
                                                           resources {
                                                             data_parallel: -1
                                                             context_parallel: -2
                                                             micro_batch_sequences: -3
                                                             context_parallel_scheme: 9
                                                             shard_group_size: -1
                                                           }
                                                         )pb"),
                                                         kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("resources.data_parallel", "resources.context_parallel",
                          "resources.micro_batch_sequences", "resources.context_parallel_scheme",
                          "resources.shard_group_size"));
  EXPECT_EQ(problems[0].message, "must not be negative, got -1");
}

TEST(RunSpecCheckTest, ShardGroupSize) {
  v1::RunSpec spec = ProLong();
  spec.mutable_resources()->set_shard_weights(false);
  EXPECT_EQ(OnlyMessage(spec), "must be 0 without resources.shard_weights, got 8");
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("resources.shard_group_size"));

  // 8 does not divide stage 2's 3 x 4 = 12 ranks (stage 1's 8 is fine).
  spec = ProLong();
  spec.mutable_stages(1)->mutable_layout()->set_data_parallel(2);
  spec.mutable_stages(1)->mutable_layout()->set_context_parallel(6);
  spec.mutable_resources()->mutable_slurm()->set_tasks_per_node(12);
  EXPECT_EQ(OnlyMessage(spec),
            "must divide every stage's world size (data_parallel x context_parallel); stages[1] "
            "has 2 x 6 = 12, got 8");
  spec.mutable_resources()->set_shard_group_size(4);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());
}

TEST(RunSpecCheckTest, Slurm) {
  v1::RunSpec spec = ProLong();
  spec.mutable_resources()->mutable_slurm()->set_nodes(2);
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("resources.slurm"));
  EXPECT_EQ(OnlyMessage(spec),
            "nodes x tasks_per_node must equal the largest stage's world size, 8 (stages[0]), "
            "got 2 x 8 = 16");
  // Unset counts leave the allocation to Slurm.
  spec.mutable_resources()->mutable_slurm()->set_tasks_per_node(0);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());

  spec = ProLongWith(R"pb(
    resources {
      slurm {
        nodes: -1
        tasks_per_node: -1
        gpus_per_node: -1
        time_limit { seconds: -5 }
      }
    }
  )pb");
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)),
              ElementsAre("resources.slurm.nodes", "resources.slurm.tasks_per_node",
                          "resources.slurm.gpus_per_node", "resources.slurm.time_limit"));
}

TEST(RunSpecCheckTest, KubernetesAndLocal) {
  v1::RunSpec spec = ProLong();
  spec.mutable_resources()->mutable_kubernetes()->set_image("registry.example/prolong:1.0");
  spec.mutable_resources()->mutable_kubernetes()->set_namespace_("ml-training");
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());

  spec.mutable_resources()->mutable_kubernetes()->set_namespace_("-ML_training");
  spec.mutable_resources()->mutable_kubernetes()->clear_image();
  spec.mutable_resources()->mutable_kubernetes()->set_gpus_per_pod(-1);
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems),
              ElementsAre("resources.kubernetes.namespace", "resources.kubernetes.image",
                          "resources.kubernetes.gpus_per_pod"));
  EXPECT_EQ(problems[0].message,
            "must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63), got "
            "\"-ML_training\"");

  spec.mutable_resources()->mutable_local()->set_work_dir("/tmp/prolong");
  EXPECT_EQ(OnlyMessage(spec), "/tmp/prolong is outside the allowed roots (/models, /ckpt)");
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("resources.local.work_dir"));
  spec.mutable_resources()->mutable_local()->clear_work_dir();
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());
}

TEST(RunSpecCheckTest, Checkpoint) {
  v1::RunSpec spec = ProLongWith(R"pb(checkpoint { every_steps: -1 keep_last: -1 })pb");
  spec.mutable_checkpoint()->clear_directory();
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems), ElementsAre("checkpoint.directory", "checkpoint.every_steps",
                                            "checkpoint.keep_last"));
  EXPECT_EQ(problems[0].message, "must be an absolute path, got \"\"");
}

TEST(RunSpecCheckTest, Evaluation) {
  v1::RunSpec spec = ProLong();
  spec.mutable_evaluation()->mutable_spec()->clear_tasks();
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("evaluation.spec.tasks"));
  spec.mutable_evaluation()->set_on_checkpoint(false);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());

  // Evaluating checkpoints needs the tokenizer.
  spec = ProLong();
  spec.mutable_model()->clear_tokenizer();
  const std::vector<SpecProblem> untokenized = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(untokenized), ElementsAre("model.tokenizer.path"));
  spec.mutable_evaluation()->set_on_checkpoint(false);
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());

  spec = ProLongWith(R"pb(
    evaluation {
      spec {
        tasks {
          input_lengths: [ 8192, 0 ]
          num_examples: -1
          shots: -2
          chat_template: 3
        }
        max_new_tokens: -1
      }
    }
  )pb");
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(
      Fields(problems),
      ElementsAre("evaluation.spec.tasks[2].name", "evaluation.spec.tasks[2].input_lengths[1]",
                  "evaluation.spec.tasks[2].num_examples", "evaluation.spec.tasks[2].shots",
                  "evaluation.spec.tasks[2].chat_template", "evaluation.spec.max_new_tokens"));
  EXPECT_EQ(problems[3].message, "must be at least -1, got -2");
}

// ProLong's protocol: each stage's last checkpoint fine-tuned on UltraChat before evaluation.
constexpr char kAfterSft[] = R"pb(
  evaluation {
    after_sft {
      stage {
        name: "sft"
        seq_len: 65536
        total_tokens: 1000000000
        batch_tokens: 4194304
        schedule { peak_lr: 2e-5 warmup_fraction: 0.05 min_lr_ratio: 0.1 }
        mixture { domain: "ultrachat" proportion: 1 packing: PACKING_SFT }
      }
      checkpoints { stage_ends: true }
    }
  }
)pb";

TEST(RunSpecCheckTest, AfterSft) {
  EXPECT_THAT(RunSpecStatus(CheckRunSpec(ProLongWith(kAfterSft), kRoots)), IsOk());
  // Its own evaluation spec and resources are checked as the run's are.
  EXPECT_THAT(
      RunSpecStatus(CheckRunSpec(ProLongWith(absl::StrCat(kAfterSft, R"pb(
                                   evaluation {
                                     after_sft {
                                       spec { tasks { name: "json_kv" input_lengths: 1024 } }
                                       resources {
                                         data_parallel: 2
                                         local {}
                                       }
                                     }
                                   }
                                 )pb")),
                                 kRoots)),
      IsOk());

  v1::RunSpec wrong = ProLongWith(absl::StrCat(kAfterSft, R"pb(
    evaluation {
      after_sft {
        stage { seq_len: 0 rope_theta: 1e6 }
        checkpoints { stage_ends: false every_steps: -1 }
        spec { max_new_tokens: -1 }
        resources { data_parallel: -1 }
      }
    }
  )pb"));
  wrong.mutable_evaluation()->mutable_after_sft()->mutable_stage()->mutable_mixture(0)->set_packing(
      v1::PACKING_SHORT);
  const std::vector<SpecProblem> problems = CheckRunSpec(wrong, kRoots);
  EXPECT_THAT(
      Fields(problems),
      ElementsAre("evaluation.after_sft.checkpoints.every_steps",
                  "evaluation.after_sft.checkpoints", "evaluation.after_sft.stage.rope_theta",
                  "evaluation.after_sft.stage.mixture", "evaluation.after_sft.stage.seq_len",
                  "evaluation.after_sft.resources.data_parallel", "evaluation.after_sft.spec.tasks",
                  "evaluation.after_sft.spec.max_new_tokens"))
      << RunSpecStatus(problems);

  // A run without a tokenizer cannot evaluate after SFT either.
  v1::RunSpec untokenized = ProLongWith(kAfterSft);
  untokenized.mutable_model()->clear_tokenizer();
  untokenized.mutable_evaluation()->set_on_checkpoint(false);
  EXPECT_THAT(Fields(CheckRunSpec(untokenized, kRoots)), ElementsAre("model.tokenizer.path"));
  // Without its own spec the run's is used, which must then have tasks.
  v1::RunSpec taskless = ProLongWith(kAfterSft);
  taskless.mutable_evaluation()->set_on_checkpoint(false);
  taskless.mutable_evaluation()->mutable_spec()->clear_tasks();
  EXPECT_THAT(Fields(CheckRunSpec(taskless, kRoots)), ElementsAre("evaluation.spec.tasks"));

  // Every N-th checkpoint would be gone before its side job starts if the run deletes old ones.
  EXPECT_THAT(
      OnlyMessage(ProLongWith(absl::StrCat(
          kAfterSft, R"pb(evaluation { after_sft { checkpoints { every_steps: 500 } } })pb"))),
      HasSubstr("must be 0 with evaluation.after_sft.checkpoints.every_steps"));
  // Side jobs write under <checkpoint.directory>/after-sft.
  EXPECT_THAT(Fields(CheckRunSpec(
                  ProLongWith(absl::StrCat(kAfterSft, R"pb(stages { name: "x" })pb")), kRoots)),
              ::testing::Contains("stages[2].seq_len"));
  v1::RunSpec clash = ProLongWith(kAfterSft);
  clash.mutable_stages(1)->set_name("after-sft");
  EXPECT_THAT(Fields(CheckRunSpec(clash, kRoots)), ElementsAre("stages[1].name"));
  // The side job runs with the run's Slurm allocation, which must fit its stage's layout.
  v1::RunSpec wide = ProLongWith(kAfterSft);
  wide.mutable_evaluation()
      ->mutable_after_sft()
      ->mutable_stage()
      ->mutable_layout()
      ->set_data_parallel(4);
  const std::vector<SpecProblem> narrow = CheckRunSpec(wide, kRoots);
  ASSERT_THAT(Fields(narrow), ::testing::Contains("resources.slurm"));
  EXPECT_THAT(narrow.back().message, HasSubstr("(evaluation.after_sft.stage)"));
  // Raw evaluations may be limited to some checkpoints, which must be some.
  EXPECT_THAT(Fields(CheckRunSpec(ProLongWith(R"pb(evaluation { raw_checkpoints {} })pb"), kRoots)),
              ElementsAre("evaluation.raw_checkpoints"));
}

TEST(RunSpecCheckTest, Fault) {
  const std::vector<SpecProblem> problems =
      CheckRunSpec(ProLongWith(R"pb(
                     fault {
                       max_restarts: -1
                       heartbeat_timeout { seconds: 0 }
                       rendezvous_timeout { seconds: -1 nanos: -5 }
                     }
                   )pb"),
                   kRoots);
  EXPECT_THAT(Fields(problems), ElementsAre("fault.max_restarts", "fault.heartbeat_timeout",
                                            "fault.rendezvous_timeout"));
  EXPECT_EQ(problems[1].message, "must be positive when set, got 0s");

  v1::RunSpec spec = ProLong();
  spec.mutable_fault()->mutable_heartbeat_timeout()->set_seconds(0);
  spec.mutable_fault()->mutable_heartbeat_timeout()->set_nanos(500'000'000);
  spec.mutable_fault()->clear_rendezvous_timeout();
  EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty());
}

TEST(RunSpecCheckTest, Addresses) {
  for (const char* address : {"localhost:7410", "10.0.0.5:1", "[::1]:65535", "[fe80::1]:80"}) {
    v1::RunSpec spec = ProLong();
    spec.mutable_data()->set_datamixer_address(address);
    EXPECT_THAT(CheckRunSpec(spec, kRoots), IsEmpty()) << address;
  }
  for (const char* address : {"localhost", ":7410", "host:0", "host:65536", "host:http", "::1:80",
                              "[::1]", "[]:80", "host:-1", "a b:80"}) {
    v1::RunSpec spec = ProLong();
    spec.mutable_evaluation()->set_evaluator_address(address);
    EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)), ElementsAre("evaluation.evaluator_address"))
        << address;
  }
  v1::RunSpec spec = ProLong();
  spec.mutable_data()->set_datamixer_address("datamixer");
  EXPECT_EQ(OnlyMessage(spec),
            "must be host:port (or [v6]:port) with a port in 1..65535, got \"datamixer\"");
}

// The one problem of ProLong's spec (its only path the checkpoint directory) with `directory`
// as its checkpoint directory, or "".
std::string CheckpointDirectoryProblem(const std::string& directory, const PathRoots& roots) {
  v1::RunSpec spec = ProLong();
  UseFreshModel(spec);
  spec.mutable_checkpoint()->set_directory(directory);
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, roots);
  if (problems.empty()) return "";
  EXPECT_THAT(Fields(problems), ElementsAre("checkpoint.directory"));
  return problems[0].message;
}

TEST(RunSpecCheckTest, PathWithDotDot) {
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/../etc", kRoots),
            "must not contain a \"..\" component, got \"/ckpt/../etc\"");
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/run/..", PathRoots{}),
            "must not contain a \"..\" component, got \"/ckpt/run/..\"");
  // Names that only start with dots are names.
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/..run/.hidden", kRoots), "");
}

TEST(RunSpecCheckTest, PathWithDot) {
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/./run", kRoots),
            "must not contain a \".\" component, got \"/ckpt/./run\"");
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/.", kRoots),
            "must not contain a \".\" component, got \"/ckpt/.\"");
}

TEST(RunSpecCheckTest, PathWithEmptyComponent) {
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt//run", kRoots),
            "must not contain an empty component, got \"/ckpt//run\"");
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/run//", kRoots),
            "must not contain an empty component, got \"/ckpt/run//\"");
  EXPECT_EQ(CheckpointDirectoryProblem("/ckpt/run/", kRoots), "");
}

TEST(RunSpecCheckTest, RelativePath) {
  EXPECT_EQ(CheckpointDirectoryProblem("ckpt/run", PathRoots{}),
            "must be an absolute path, got \"ckpt/run\"");
  EXPECT_EQ(CheckpointDirectoryProblem("./ckpt", PathRoots{}),
            "must be an absolute path, got \"./ckpt\"");
}

TEST(RunSpecCheckTest, PathWithControlCharacters) {
  EXPECT_EQ(CheckpointDirectoryProblem(std::string("/ckpt/run\0x", 11), kRoots),
            "must not contain control characters, got \"/ckpt/run\\000x\"");
}

TEST(RunSpecCheckTest, PathOutsideRoots) {
  EXPECT_EQ(CheckpointDirectoryProblem("/etc/x", kRoots),
            "/etc/x is outside the allowed roots (/models, /ckpt)");
  EXPECT_EQ(CheckpointDirectoryProblem("/", kRoots),
            "/ is outside the allowed roots (/models, /ckpt)");
}

TEST(RunSpecCheckTest, PathSharingOnlyAPrefixWithARoot) {
  const PathRoots roots = {{"/data/runs"}};
  EXPECT_EQ(CheckpointDirectoryProblem("/data/runs-evil", roots),
            "/data/runs-evil is outside the allowed roots (/data/runs)");
  EXPECT_EQ(CheckpointDirectoryProblem("/data/runsx/a", roots),
            "/data/runsx/a is outside the allowed roots (/data/runs)");
  EXPECT_EQ(CheckpointDirectoryProblem("/data", roots),
            "/data is outside the allowed roots (/data/runs)");
}

TEST(RunSpecCheckTest, PathUnderRoots) {
  for (const char* directory : {"/ckpt", "/ckpt/", "/ckpt/prolong-8b", "/models/a/b/c/"}) {
    EXPECT_EQ(CheckpointDirectoryProblem(directory, kRoots), "") << directory;
  }
  // A root with a trailing slash, and the root of everything.
  EXPECT_EQ(CheckpointDirectoryProblem("/data/runs/x", PathRoots{{"/data/runs/"}}), "");
  EXPECT_EQ(CheckpointDirectoryProblem("/etc/x", PathRoots{{"/"}}), "");
  // Without roots, any absolute path.
  EXPECT_EQ(CheckpointDirectoryProblem("/etc/x", PathRoots{}), "");
}

TEST(RunSpecCheckTest, EveryPathIsChecked) {
  v1::RunSpec spec = ProLong();
  spec.mutable_model()->set_init_checkpoint("/etc/model");
  spec.mutable_model()->mutable_tokenizer()->set_path("/models/../etc/tokenizer.json");
  spec.mutable_checkpoint()->set_directory("ckpt");
  EXPECT_THAT(Fields(CheckRunSpec(spec, kRoots)),
              ElementsAre("model.init_checkpoint", "model.tokenizer.path", "checkpoint.directory"));
}

TEST(RunSpecCheckTest, ThreeMistakesAreReportedInFieldOrder) {
  v1::RunSpec spec = ProLong();
  // Set from the last field to the first: the report follows the spec, not the mistakes.
  spec.mutable_fault()->set_max_restarts(-1);
  spec.mutable_stages(1)->mutable_mixture(0)->set_proportion(0.5);
  spec.set_name("ProLong");
  const std::vector<SpecProblem> problems = CheckRunSpec(spec, kRoots);
  EXPECT_THAT(Fields(problems), ElementsAre("name", "stages[1].mixture", "fault.max_restarts"));
  EXPECT_THAT(RunSpecStatus(problems),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "name: must match [a-z0-9-]{1,63}, got \"ProLong\"; stages[1].mixture: "
                       "proportions must sum to 1 (within 1e-06), got 1.15; fault.max_restarts: "
                       "must not be negative, got -1"));
}

TEST(RunSpecCheckTest, RunSpecStatus) {
  EXPECT_THAT(RunSpecStatus({}), IsOk());
  EXPECT_THAT(
      RunSpecStatus({{"stages[1].seq_len", "must be positive, got 0"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "stages[1].seq_len: must be positive, got 0"));
  EXPECT_THAT(
      RunSpecStatus({{"name", "a"}, {"stages", "b"}, {"fault.max_restarts", "c"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "name: a; stages: b; fault.max_restarts: c"));
}

TEST(RunSpecCheckTest, StageLayoutOf) {
  v1::RunSpec spec = ProLong();
  Layout first = StageLayoutOf(spec, 0);
  EXPECT_EQ(first.dp, 8);
  EXPECT_EQ(first.cp, 1);  // Resources' 0.
  EXPECT_EQ(first.micro_batch_sequences, 1);
  Layout second = StageLayoutOf(spec, 1);
  EXPECT_EQ(second.dp, 1);
  EXPECT_EQ(second.cp, 8);
  EXPECT_EQ(second.micro_batch_sequences, 1);

  spec.mutable_resources()->set_data_parallel(0);
  spec.mutable_resources()->set_context_parallel(2);
  spec.mutable_resources()->set_micro_batch_sequences(4);
  spec.mutable_stages(1)->mutable_layout()->set_micro_batch_sequences(2);
  first = StageLayoutOf(spec, 0);
  EXPECT_EQ(first.dp, 1);  // Both 0.
  EXPECT_EQ(first.cp, 2);
  EXPECT_EQ(first.micro_batch_sequences, 4);
  second = StageLayoutOf(spec, 1);
  EXPECT_EQ(second.dp, 1);
  EXPECT_EQ(second.cp, 8);
  EXPECT_EQ(second.micro_batch_sequences, 2);
}

TEST(RunSpecCheckDeathTest, StageLayoutOfAStageThatIsNotThere) {
  const v1::RunSpec spec = ProLong();
  EXPECT_DEATH(StageLayoutOf(spec, 2), "stage_index 2 is not in \\[0, 2\\)");
}

}  // namespace
}  // namespace prolong::scheduler
