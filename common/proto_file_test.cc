#include "common/proto_file.h"

#include <string>

#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "prolong/v1/run_spec.pb.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;

TEST(ProtoFileTest, YamlFillsNestedRepeatedAndEnumFields) {
  v1::StageSpec stage;
  const absl::Status status = ParseYamlProto(R"(
name: stage1
seq_len: 65_536
batchTokens: 4194304   # the JSON name works too
total_tokens: 20000000000
allow_repetition: true
rope_theta: 8e6
mixture:
  - {domain: books, proportion: 0.3, packing: long, min_doc_tokens: 65536}
  - domain: web
    proportion: 0.7
    packing: PACKING_SHORT
)",
                                             "stage.yaml", &stage);
  ASSERT_OK(status);
  EXPECT_EQ(stage.name(), "stage1");
  EXPECT_EQ(stage.seq_len(), 65536);
  EXPECT_EQ(stage.batch_tokens(), 4194304);
  EXPECT_EQ(stage.total_tokens(), 20000000000);
  EXPECT_TRUE(stage.allow_repetition());
  EXPECT_EQ(stage.rope_theta(), 8e6);
  ASSERT_EQ(stage.mixture_size(), 2);
  EXPECT_EQ(stage.mixture(0).packing(), v1::PACKING_LONG);
  EXPECT_EQ(stage.mixture(0).min_doc_tokens(), 65536);
  EXPECT_EQ(stage.mixture(1).domain(), "web");
  EXPECT_EQ(stage.mixture(1).packing(), v1::PACKING_SHORT);
}

TEST(ProtoFileTest, JsonIsYaml) {
  v1::StageSpec stage;
  ASSERT_OK(ParseYamlProto(R"({"seq_len": 8, "mixture": [{"domain": "a", "packing": "Sft"}]})",
                           "s.json", &stage));
  EXPECT_EQ(stage.seq_len(), 8);
  EXPECT_EQ(stage.mixture(0).packing(), v1::PACKING_SFT);
}

TEST(ProtoFileTest, DurationsAreWrittenAsText) {
  v1::FaultPolicy fault;
  ASSERT_OK(
      ParseYamlProto("heartbeat_timeout: 1m30s\nrendezvous_timeout: 250ms\n", "f.yaml", &fault));
  EXPECT_EQ(fault.heartbeat_timeout().seconds(), 90);
  EXPECT_EQ(fault.heartbeat_timeout().nanos(), 0);
  EXPECT_EQ(fault.rendezvous_timeout().seconds(), 0);
  EXPECT_EQ(fault.rendezvous_timeout().nanos(), 250000000);
  // The message form works too.
  ASSERT_OK(ParseYamlProto("heartbeat_timeout: {seconds: 5}\n", "f.yaml", &fault));
  EXPECT_EQ(fault.heartbeat_timeout().seconds(), 5);
  EXPECT_THAT(ParseYamlProto("heartbeat_timeout: soon\n", "f.yaml", &fault),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "f.yaml:1: heartbeat_timeout: expected a duration such as 90s, 5m or "
                       "1h30m, got \"soon\""));
  EXPECT_THAT(ParseYamlProto("heartbeat_timeout: -5s\n", "f.yaml", &fault),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProtoFileTest, ErrorsNameTheFileLineAndField) {
  auto error = [](const std::string& yaml) {
    v1::StageSpec stage;
    return ParseYamlProto(yaml, "stage.yaml", &stage).ToString();
  };
  EXPECT_EQ(error("name: a\nseq_lenn: 5\n"),
            "INVALID_ARGUMENT: stage.yaml:2: seq_lenn: no such field; StageSpec has name, "
            "seq_len, total_tokens, batch_tokens, schedule, rope_theta, mixture, "
            "allow_repetition, reset_optimizer_state, layout");
  EXPECT_EQ(error("mixture:\n  - domain: a\n    packing: lng\n"),
            "INVALID_ARGUMENT: stage.yaml:3: mixture[0].packing: \"lng\" is not one of long, "
            "short, sft");
  EXPECT_EQ(error("mixture:\n  - packing: unspecified\n"),
            "INVALID_ARGUMENT: stage.yaml:2: mixture[0].packing: \"unspecified\" is not one of "
            "long, short, sft");
  EXPECT_EQ(error("seq_len: 64K\n"),
            "INVALID_ARGUMENT: stage.yaml:1: seq_len: \"64K\" is not a whole number in range");
  EXPECT_EQ(error("allow_repetition: maybe\n"),
            "INVALID_ARGUMENT: stage.yaml:1: allow_repetition: \"maybe\" is not true or false");
  EXPECT_EQ(error("mixture: books\n"), "INVALID_ARGUMENT: stage.yaml:1: mixture: expected a list");
  EXPECT_EQ(error("- a\n- b\n"),
            "INVALID_ARGUMENT: stage.yaml:1: expected a mapping of field: value");
  EXPECT_EQ(error("name: [a\n").substr(0, 48), "INVALID_ARGUMENT: stage.yaml:2: not valid YAML: ");
}

TEST(ProtoFileTest, FilesByExtension) {
  const std::string dir = ::testing::TempDir();
  ASSERT_OK(
      WriteFileAtomically(dir + "/s.textproto", "seq_len: 16 mixture { packing: PACKING_LONG }"));
  v1::StageSpec stage;
  ASSERT_OK(ReadProtoFile(dir + "/s.textproto", &stage));
  EXPECT_EQ(stage.seq_len(), 16);
  EXPECT_EQ(stage.mixture(0).packing(), v1::PACKING_LONG);

  ASSERT_OK(WriteFileAtomically(dir + "/bad.pbtxt", "seq_len: \"x\""));
  EXPECT_THAT(ReadProtoFile(dir + "/bad.pbtxt", &stage),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadProtoFile(dir + "/missing.yaml", &stage), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace prolong
