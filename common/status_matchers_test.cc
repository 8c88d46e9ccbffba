#include "common/status_matchers.h"

#include <memory>
#include <string>

#include "gtest/gtest-spi.h"

namespace prolong {
namespace {

using ::prolong::testing::IsOk;
using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<std::unique_ptr<int>> Boxed(int x) {
  if (x < 0) return absl::InvalidArgumentError(absl::StrCat("x: ", x, " is negative"));
  return std::make_unique<int>(x);
}

// What a matcher says about a value it does not match.
template <typename Matcher, typename Value>
std::string Explain(const Matcher& matcher, const Value& value) {
  ::testing::StringMatchResultListener listener;
  EXPECT_FALSE(::testing::ExplainMatchResult(matcher, value, &listener));
  return listener.str();
}

TEST(StatusMatchersTest, IsOkMatchesOkStatusesAndValues) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(Boxed(1), IsOk());
  EXPECT_THAT(absl::NotFoundError("gone"), Not(IsOk()));
  EXPECT_THAT(Boxed(-1), Not(IsOk()));
  EXPECT_OK(absl::OkStatus());
  ASSERT_OK(Boxed(2));
}

TEST(StatusMatchersTest, AFailureNamesTheStatus) {
  EXPECT_EQ(Explain(IsOk(), Boxed(-3)), "whose status is INVALID_ARGUMENT: x: -3 is negative");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(absl::DataLossError("flipped byte")),
                          "DATA_LOSS: flipped byte");
  EXPECT_FATAL_FAILURE(ASSERT_OK(absl::UnavailableError("no datamixer")),
                       "UNAVAILABLE: no datamixer");
}

TEST(StatusMatchersTest, StatusIsChecksTheCodeAndTheMessage) {
  EXPECT_THAT(Boxed(-1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Boxed(-1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(absl::NotFoundError("a"), StatusIs(absl::StatusCode::kNotFound, "a"));
  EXPECT_THAT(Boxed(-1), Not(StatusIs(absl::StatusCode::kNotFound)));
  EXPECT_THAT(Boxed(-1), Not(StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zero"))));
  EXPECT_THAT(Boxed(1), Not(StatusIs(absl::StatusCode::kInvalidArgument)));
  EXPECT_THAT(Boxed(1), StatusIs(absl::StatusCode::kOk));
  EXPECT_THAT(Explain(StatusIs(absl::StatusCode::kNotFound), Boxed(-2)),
              HasSubstr("INVALID_ARGUMENT: x: -2 is negative"));
}

TEST(StatusMatchersTest, AssertOkAndAssignTakesTheValue) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<int> boxed, Boxed(7));
  EXPECT_EQ(*boxed, 7);
  int plain = 0;
  ASSERT_OK_AND_ASSIGN(plain, absl::StatusOr<int>(8));
  EXPECT_EQ(plain, 8);
}

bool reached_after_assign = false;

void AssignFromAnError() {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<int> boxed, Boxed(-5));
  reached_after_assign = true;
}

TEST(StatusMatchersTest, AssertOkAndAssignStopsOnAnError) {
  EXPECT_FATAL_FAILURE(AssignFromAnError(), "INVALID_ARGUMENT: x: -5 is negative");
  EXPECT_FALSE(reached_after_assign);
}

TEST(AnnotateTest, PrefixesTheMessageAndKeepsTheCode) {
  const absl::Status annotated = Annotate(absl::NotFoundError("no such file"), "--stage");
  EXPECT_THAT(annotated, StatusIs(absl::StatusCode::kNotFound, "--stage: no such file"));
  EXPECT_OK(Annotate(absl::OkStatus(), "--stage"));
  absl::Status with_payload = absl::InternalError("x");
  with_payload.SetPayload("type.prolong/rank", absl::Cord("3"));
  EXPECT_EQ(Annotate(with_payload, "step 2").GetPayload("type.prolong/rank"), absl::Cord("3"));
}

}  // namespace
}  // namespace prolong
