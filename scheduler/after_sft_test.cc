#include "scheduler/after_sft.h"

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

// A two-stage run (6 and 4 steps planned) whose policy fine-tunes each stage's last checkpoint.
v1::Run TwoStageRun() {
  v1::Run run;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        run_id: "two-stage-abc123"
        spec {
          name: "two-stage"
          seed: 3
          deterministic: true
          model {
            config { vocab_size: 256 }
            tokenizer { path: "/data/tok.json" }
          }
          stages { name: "short" seq_len: 64 }
          stages { name: "long" seq_len: 128 rope_theta: 40000 }
          optimizer { beta2: 0.95 }
          resources {
            data_parallel: 2
            local {}
          }
          checkpoint { directory: "/ckpt" every_steps: 2 keep_last: 3 }
          evaluation {
            on_checkpoint: true
            evaluator_address: "127.0.0.1:7000"
            spec { tasks { name: "json_kv" input_lengths: 1024 } }
            raw_checkpoints { every_steps: 3 }
            after_sft {
              stage {
                name: "sft"
                seq_len: 64
                mixture { domain: "chat" proportion: 1 packing: PACKING_SFT }
              }
              checkpoints { stage_ends: true }
            }
          }
          fault { max_restarts: 2 }
        }
        stage_plans { steps: 6 }
        stage_plans { steps: 4 }
      )pb",
      &run));
  return run;
}

v1::Checkpoint At(const std::string& stage, int64_t step) {
  v1::Checkpoint checkpoint;
  checkpoint.set_stage(stage);
  checkpoint.set_step(step);
  checkpoint.set_path("/ckpt/" + stage + "/step-" + std::to_string(step));
  return checkpoint;
}

TEST(AfterSftTest, SelectionsPickStageEndsAndMultiples) {
  const v1::Run run = TwoStageRun();
  // after_sft: each stage's last checkpoint, by the stage's own plan.
  EXPECT_TRUE(NeedsSideJob(run, At("short", 6)));
  EXPECT_TRUE(NeedsSideJob(run, At("long", 4)));
  EXPECT_FALSE(NeedsSideJob(run, At("short", 4)));
  EXPECT_FALSE(NeedsSideJob(run, At("long", 6)));  // stage 2 has 4 steps
  EXPECT_FALSE(NeedsSideJob(run, At("unknown", 6)));
  // raw: every third step of a stage.
  EXPECT_TRUE(EvaluatesRaw(run, At("short", 3)));
  EXPECT_TRUE(EvaluatesRaw(run, At("short", 6)));
  EXPECT_FALSE(EvaluatesRaw(run, At("long", 4)));

  v1::Run unselected = run;
  unselected.mutable_spec()->mutable_evaluation()->clear_raw_checkpoints();
  EXPECT_TRUE(EvaluatesRaw(unselected, At("long", 4)));  // unset: every checkpoint
  unselected.mutable_spec()->mutable_evaluation()->set_on_checkpoint(false);
  EXPECT_FALSE(EvaluatesRaw(unselected, At("long", 4)));
  unselected.mutable_spec()->mutable_evaluation()->clear_after_sft();
  EXPECT_FALSE(NeedsSideJob(unselected, At("short", 6)));

  // A stage not planned yet has no known end.
  v1::Run unplanned = run;
  unplanned.mutable_stage_plans()->RemoveLast();
  EXPECT_FALSE(NeedsSideJob(unplanned, At("long", 4)));
}

TEST(AfterSftTest, TheRunAwaitsEachSelectedCheckpointsAfterSftEvaluation) {
  v1::Run run = TwoStageRun();
  for (const auto& [stage, step] : {std::pair{"short", 3}, {"short", 6}, {"long", 4}}) {
    *run.add_checkpoints() = At(stage, step);
  }
  ASSERT_EQ(AwaitingAfterSft(run).size(), 2u);
  // A raw evaluation of the stage end does not count.
  v1::EvaluationSummary* raw = run.add_evaluations();
  raw->set_stage("short");
  raw->set_step(6);
  EXPECT_EQ(AwaitingAfterSft(run).size(), 2u);
  EXPECT_TRUE(HasEvaluation(run, "short", 6, v1::EVALUATION_PROTOCOL_RAW));  // unspecified: raw
  EXPECT_FALSE(HasEvaluation(run, "short", 6, v1::EVALUATION_PROTOCOL_AFTER_SFT));
  v1::EvaluationSummary* after = run.add_evaluations();
  after->set_stage("short");
  after->set_step(6);
  after->set_protocol(v1::EVALUATION_PROTOCOL_AFTER_SFT);
  after->set_failure("side job failed");  // a failure ends the wait too
  const std::vector<v1::Checkpoint> awaiting = AwaitingAfterSft(run);
  ASSERT_EQ(awaiting.size(), 1u);
  EXPECT_EQ(awaiting[0].stage(), "long");
}

TEST(AfterSftTest, TheSideJobFineTunesTheCheckpointIntoItsOwnDirectory) {
  const v1::Run run = TwoStageRun();
  const v1::Checkpoint checkpoint = At("long", 4);
  const v1::RunSpec side = SideJobSpec(run.spec(), checkpoint);
  EXPECT_EQ(side.name(), "two-stage-sft");
  EXPECT_EQ(side.model().init_checkpoint(), checkpoint.path());
  EXPECT_FALSE(side.model().has_config());
  EXPECT_EQ(side.model().tokenizer().path(), "/data/tok.json");
  ASSERT_EQ(side.stages_size(), 1);
  EXPECT_EQ(side.stages(0).name(), "sft");
  EXPECT_EQ(side.stages(0).rope_theta(), 0);  // the checkpoint's base is kept
  EXPECT_EQ(side.checkpoint().directory(), "/ckpt/after-sft/long-step-4");
  EXPECT_EQ(side.checkpoint().every_steps(), 2);
  // Reproducible: the run's seed, determinism and optimizer.
  EXPECT_EQ(side.seed(), 3u);
  EXPECT_TRUE(side.deterministic());
  EXPECT_EQ(side.optimizer().beta2(), 0.95);
  EXPECT_EQ(side.resources().data_parallel(), 2);
  EXPECT_EQ(side.fault().max_restarts(), 2);
  // It evaluates its own last checkpoint, with the policy's spec (here the run's), and has no
  // side jobs of its own.
  EXPECT_TRUE(side.evaluation().on_checkpoint());
  EXPECT_TRUE(side.evaluation().raw_checkpoints().stage_ends());
  EXPECT_EQ(side.evaluation().raw_checkpoints().every_steps(), 0);
  EXPECT_EQ(side.evaluation().evaluator_address(), "127.0.0.1:7000");
  EXPECT_EQ(side.evaluation().spec().tasks(0).name(), "json_kv");
  EXPECT_FALSE(side.evaluation().has_after_sft());
  EXPECT_NE(SideJobRequestId(run.run_id(), checkpoint),
            SideJobRequestId(run.run_id(), At("short", 6)));

  // The policy's resources and evaluation, where it names them.
  v1::RunSpec spec = run.spec();
  v1::AfterSftPolicy& policy = *spec.mutable_evaluation()->mutable_after_sft();
  policy.mutable_resources()->set_data_parallel(1);
  policy.mutable_spec()->add_tasks()->set_name("ruler_niah_mv");
  spec.set_name(std::string(63, 'a'));
  const v1::RunSpec named = SideJobSpec(spec, checkpoint);
  EXPECT_EQ(named.resources().data_parallel(), 1);
  EXPECT_EQ(named.evaluation().spec().tasks(0).name(), "ruler_niah_mv");
  EXPECT_EQ(named.name().size(), 63u);
}

TEST(AfterSftTest, AnEndedSideJobGivesItsParentOneAfterSftEvaluation) {
  v1::Run side;
  side.set_run_id("two-stage-sft-def456");
  *side.mutable_side_job_of()->mutable_checkpoint() = At("short", 6);
  side.mutable_side_job_of()->set_run_id("two-stage-abc123");
  side.set_state(v1::RUN_STATE_SUCCEEDED);
  v1::EvaluationSummary* evaluated = side.add_evaluations();
  evaluated->set_evaluation_id("eval-1");
  evaluated->set_stage("sft");
  evaluated->set_step(4);
  (*evaluated->mutable_category_scores())["recall"] = 12.5;

  v1::EvaluationSummary summary = AfterSftSummary(side);
  EXPECT_EQ(summary.stage(), "short");
  EXPECT_EQ(summary.step(), 6);
  EXPECT_EQ(summary.protocol(), v1::EVALUATION_PROTOCOL_AFTER_SFT);
  EXPECT_EQ(summary.side_job_run_id(), side.run_id());
  EXPECT_EQ(summary.evaluation_id(), "eval-1");
  EXPECT_EQ(summary.category_scores().at("recall"), 12.5);
  EXPECT_EQ(summary.failure(), "");

  side.set_state(v1::RUN_STATE_FAILED);
  side.set_message("rank 0: exit code 1");
  summary = AfterSftSummary(side);
  EXPECT_TRUE(summary.category_scores().empty());
  EXPECT_EQ(summary.failure(), "side job two-stage-sft-def456 ended FAILED: rank 0: exit code 1");
}

}  // namespace
}  // namespace prolong::scheduler
