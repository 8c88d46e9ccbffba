#include "services/prolongctl/run_evaluations.h"

#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace prolong::ctl {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

v1::Run ParseRun(const std::string& text) {
  v1::Run run;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &run)) << text;
  return run;
}

// Two stages; raw evaluations of short 3 and 6 and long 4, after-SFT ones of short 6 and long
// 4, listed newest first as the scheduler keeps them.
v1::Run TwoProtocolRun() {
  return ParseRun(R"pb(
    run_id: "two-stage-abc"
    spec {
      stages { name: "short" }
      stages { name: "long" }
      evaluation {
        on_checkpoint: true
        after_sft { checkpoints { stage_ends: true } }
      }
    }
    evaluations {
      evaluation_id: "ev-5"
      stage: "long"
      step: 4
      protocol: EVALUATION_PROTOCOL_AFTER_SFT
      side_job_run_id: "two-stage-abc-sft-long-4"
      failure: "side job two-stage-abc-sft-long-4 ended FAILED: out of memory"
    }
    evaluations {
      evaluation_id: "ev-4"
      stage: "long"
      step: 4
      protocol: EVALUATION_PROTOCOL_RAW
      category_scores { key: "recall" value: 8.3 }
      category_scores { key: "rag" value: 3 }
    }
    evaluations {
      evaluation_id: "ev-3"
      stage: "short"
      step: 6
      protocol: EVALUATION_PROTOCOL_AFTER_SFT
      side_job_run_id: "two-stage-abc-sft-short-6"
      category_scores { key: "recall" value: 40 }
      category_scores { key: "rag" value: 12.5 }
    }
    evaluations {
      evaluation_id: "ev-2"
      stage: "short"
      step: 6
      category_scores { key: "recall" value: 25 }
      category_scores { key: "rag" value: 2.5 }
    }
    evaluations {
      evaluation_id: "ev-1"
      stage: "short"
      step: 3
      failure: "evaluator refused: checkpoint missing"
    }
  )pb");
}

TEST(DescribeEvaluationTest, RawKeepsItsFormatAndAfterSftSaysSo) {
  const v1::Run run = TwoProtocolRun();
  EXPECT_EQ(DescribeEvaluation(run.evaluations(3)),
            "evaluation short step 6: rag 2.5, recall 25.0");
  EXPECT_EQ(DescribeEvaluation(run.evaluations(2)),
            "evaluation short step 6 after SFT: rag 12.5, recall 40.0");
  EXPECT_EQ(DescribeEvaluation(run.evaluations(0)),
            "evaluation long step 4 after SFT: failed: side job two-stage-abc-sft-long-4 ended "
            "FAILED: out of memory");
  EXPECT_EQ(DescribeEvaluation(run.evaluations(4)),
            "evaluation short step 3: failed: evaluator refused: checkpoint missing");
}

TEST(FormatEvaluationTableTest, BothProtocolsSideBySideInTrainingOrder) {
  EXPECT_EQ(FormatEvaluationTable(TwoProtocolRun()),
            "stage  step  recall (raw)  recall (after SFT)  rag (raw)  rag (after SFT)\n"
            "short     3        failed                   -     failed                -\n"
            "short     6          25.0                40.0        2.5             12.5\n"
            "long      4           8.3              failed        3.0           failed\n");
}

TEST(FormatEvaluationLinesTest, TheTablesOrderWithReasonsAndSideJobs) {
  EXPECT_EQ(FormatEvaluationLines(TwoProtocolRun()),
            "evaluation short step 3: failed: evaluator refused: checkpoint missing\n"
            "evaluation short step 6: rag 2.5, recall 25.0\n"
            "evaluation short step 6 after SFT: rag 12.5, recall 40.0 (side job "
            "two-stage-abc-sft-short-6)\n"
            "evaluation long step 4: rag 3.0, recall 8.3\n"
            "evaluation long step 4 after SFT: failed: side job two-stage-abc-sft-long-4 ended "
            "FAILED: out of memory\n");
}

TEST(FormatEvaluationTableTest, ARawOnlyRunHasNoAfterSftColumns) {
  const v1::Run run = ParseRun(R"pb(
    spec {
      stages { name: "short" }
      evaluation { on_checkpoint: true }
    }
    evaluations {
      stage: "short"
      step: 6
      category_scores { key: "recall" value: 50 }
    }
    evaluations {
      stage: "short"
      step: 3
      category_scores { key: "recall" value: 12.5 }
    }
  )pb");
  EXPECT_EQ(FormatEvaluationTable(run),
            "stage  step  recall (raw)\n"
            "short     3          12.5\n"
            "short     6          50.0\n");
  EXPECT_EQ(FormatEvaluationTable(ParseRun(R"pb(spec { stages { name: "short" } })pb")), "");
}

TEST(FormatEvaluationTableTest, AfterSftPolicyShowsItsColumnsBeforeItsScoresArrive) {
  const v1::Run run = ParseRun(R"pb(
    spec {
      stages { name: "short" }
      evaluation {
        on_checkpoint: true
        after_sft {}
      }
    }
    evaluations {
      stage: "short"
      step: 3
      category_scores { key: "icl" value: 1 }
    }
  )pb");
  EXPECT_EQ(FormatEvaluationTable(run),
            "stage  step  icl (raw)  icl (after SFT)\n"
            "short     3        1.0                -\n");
}

TEST(FormatEvaluationTableTest, EveryEvaluationFailedGivesAColumnPerProtocol) {
  const v1::Run run = ParseRun(R"pb(
    spec { stages { name: "short" } }
    evaluations { stage: "short" step: 3 protocol: EVALUATION_PROTOCOL_AFTER_SFT failure: "x" }
    evaluations { stage: "short" step: 3 failure: "y" }
  )pb");
  EXPECT_EQ(FormatEvaluationTable(run),
            "stage  step     raw  after SFT\n"
            "short     3  failed     failed\n");
}

TEST(FormatEvaluationTableTest, HelmetCategoryOrderThenUnknownByName) {
  const v1::Run run = ParseRun(R"pb(
    spec { stages { name: "s" } }
    evaluations {
      stage: "s"
      step: 1
      category_scores { key: "zeta" value: 1 }
      category_scores { key: "summ" value: 2 }
      category_scores { key: "alpha" value: 3 }
      category_scores { key: "recall" value: 4 }
    }
  )pb");
  EXPECT_EQ(FormatEvaluationTable(run),
            "stage  step  recall (raw)  summ (raw)  alpha (raw)  zeta (raw)\n"
            "s         1           4.0         2.0          3.0         1.0\n");
}

TEST(DescribeSideJobTest, NamesTheParentAndCheckpoint) {
  EXPECT_EQ(DescribeSideJob(ParseRun(R"pb(
              side_job_of {
                run_id: "two-stage-abc"
                checkpoint { stage: "short" step: 6 }
              }
            )pb")),
            "side job of two-stage-abc: short step 6 (after-SFT evaluation)");
  EXPECT_EQ(DescribeSideJob(TwoProtocolRun()), "");
}

TEST(ParseCheckpointReferenceTest, RawByDefault) {
  absl::StatusOr<CheckpointReference> reference = ParseCheckpointReference("two-stage-abc:short:6");
  ASSERT_OK(reference);
  EXPECT_EQ(reference->run_id, "two-stage-abc");
  EXPECT_EQ(reference->stage, "short");
  EXPECT_EQ(reference->step, 6);
  EXPECT_EQ(reference->protocol, v1::EVALUATION_PROTOCOL_RAW);
  EXPECT_EQ(DescribeCheckpointReference(*reference), "run two-stage-abc: short step 6 (raw)");

  reference = ParseCheckpointReference("r:long:0:raw");
  ASSERT_OK(reference);
  EXPECT_EQ(reference->step, 0);
  EXPECT_EQ(reference->protocol, v1::EVALUATION_PROTOCOL_RAW);

  reference = ParseCheckpointReference("r:long:4:after-sft");
  ASSERT_OK(reference);
  EXPECT_EQ(reference->protocol, v1::EVALUATION_PROTOCOL_AFTER_SFT);
  EXPECT_EQ(DescribeCheckpointReference(*reference), "run r: long step 4 after SFT");
}

TEST(ParseCheckpointReferenceTest, NamesWhatIsWrong) {
  EXPECT_THAT(ParseCheckpointReference("r:short"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a checkpoint reference RUN_ID:STAGE:STEP[:raw|:after-sft]")));
  EXPECT_THAT(ParseCheckpointReference("r:short:6:raw:x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a checkpoint")));
  EXPECT_THAT(ParseCheckpointReference(":short:6"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no run id")));
  EXPECT_THAT(ParseCheckpointReference("r::6"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no stage")));
  EXPECT_THAT(ParseCheckpointReference("r:short:six"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("step \"six\"")));
  EXPECT_THAT(ParseCheckpointReference("r:short:-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("step \"-1\"")));
  EXPECT_THAT(ParseCheckpointReference("r:short:6:sft"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("protocol \"sft\" of \"r:short:6:sft\" is not raw or after-sft")));
}

TEST(FindEvaluationTest, PicksTheProtocolAskedFor) {
  const v1::Run run = TwoProtocolRun();
  absl::StatusOr<v1::EvaluationSummary> found =
      FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:short:6"));
  ASSERT_OK(found);
  EXPECT_EQ(found->evaluation_id(), "ev-2");  // UNSPECIFIED counts as raw
  found = FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:short:6:after-sft"));
  ASSERT_OK(found);
  EXPECT_EQ(found->evaluation_id(), "ev-3");
  found = FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:long:4:raw"));
  ASSERT_OK(found);
  EXPECT_EQ(found->evaluation_id(), "ev-4");
}

TEST(FindEvaluationTest, TheNewestOfACheckpointAndProtocol) {
  const v1::Run run = ParseRun(R"pb(
    evaluations { evaluation_id: "ev-new" stage: "s" step: 1 protocol: EVALUATION_PROTOCOL_RAW }
    evaluations { evaluation_id: "ev-old" stage: "s" step: 1 }
  )pb");
  absl::StatusOr<v1::EvaluationSummary> found =
      FindEvaluation(run, *ParseCheckpointReference("r:s:1"));
  ASSERT_OK(found);
  EXPECT_EQ(found->evaluation_id(), "ev-new");
}

TEST(FindEvaluationTest, AMissingOneListsWhatTheRunHas) {
  const v1::Run run = TwoProtocolRun();
  EXPECT_THAT(FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:short:3:after-sft")),
              StatusIs(absl::StatusCode::kNotFound,
                       "run two-stage-abc has no after-SFT evaluation of short step 3; its "
                       "evaluations: short:3 (raw), short:6 (raw, after-sft), long:4 (raw, "
                       "after-sft)"));
  EXPECT_THAT(FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:medium:3")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("(its stages: short, long)")));
  EXPECT_THAT(FindEvaluation(ParseRun(R"pb(run_id: "r")pb"), *ParseCheckpointReference("r:s:1")),
              StatusIs(absl::StatusCode::kNotFound,
                       "run r has no raw evaluation of s step 1: it has no evaluations"));
}

TEST(FindEvaluationTest, AFailedOneSaysWhy) {
  const v1::Run run = TwoProtocolRun();
  EXPECT_THAT(
      FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:long:4:after-sft")),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("run two-stage-abc's after-SFT evaluation of long step 4 failed: "),
                     HasSubstr("out of memory"))));
  EXPECT_THAT(FindEvaluation(run, *ParseCheckpointReference("two-stage-abc:short:3")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("failed: evaluator refused: checkpoint missing")));
  EXPECT_THAT(FindEvaluation(ParseRun(R"pb(run_id: "r"
                                           evaluations { stage: "s" step: 1 })pb"),
                             *ParseCheckpointReference("r:s:1")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no evaluation id")));
}

TEST(ClassifyCompareOperandTest, PathsThenReferencesThenIds) {
  EXPECT_EQ(ClassifyCompareOperand("first", /*exists=*/true), CompareOperand::kFile);
  EXPECT_EQ(ClassifyCompareOperand("out/evaluation.json", false), CompareOperand::kFile);
  EXPECT_EQ(ClassifyCompareOperand("evaluation.json", false), CompareOperand::kFile);
  EXPECT_EQ(ClassifyCompareOperand("./r:short:6", false), CompareOperand::kFile);
  EXPECT_EQ(ClassifyCompareOperand("r:short:6", false), CompareOperand::kCheckpointReference);
  EXPECT_EQ(ClassifyCompareOperand("r:short:6:after-sft", false),
            CompareOperand::kCheckpointReference);
  EXPECT_EQ(ClassifyCompareOperand("ev-0123456789abcdef", false), CompareOperand::kEvaluationId);
}

}  // namespace
}  // namespace prolong::ctl
