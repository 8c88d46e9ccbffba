#include "common/status_macros.h"

#include <memory>
#include <string>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status CheckEven(int x) { return Half(x).status(); }

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status BothEven(int a, int b, int* calls) {
  ++*calls;
  RETURN_IF_ERROR(CheckEven(a));
  ++*calls;
  RETURN_IF_ERROR(Half(b));
  ++*calls;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<std::string>> MakeOwned(bool ok) {
  if (!ok) return absl::NotFoundError("nothing");
  return std::make_unique<std::string>("owned");
}

absl::StatusOr<std::string> Unwrap(bool ok) {
  std::unique_ptr<std::string> value;
  ASSIGN_OR_RETURN(value, MakeOwned(ok));  // Assigns to an existing move-only lvalue.
  return *value;
}

TEST(StatusMacrosTest, AssignOrReturnPassesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), testing::StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(Quarter(7), testing::StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int calls = 0;
  EXPECT_OK(BothEven(2, 4, &calls));
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_THAT(BothEven(3, 4, &calls), testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_FALSE(BothEven(2, 5, &calls).ok());
  EXPECT_EQ(calls, 2);
}

TEST(StatusMacrosTest, AssignOrReturnMovesIntoExistingLvalue) {
  EXPECT_EQ(*Unwrap(true), "owned");
  EXPECT_THAT(Unwrap(false), testing::StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace prolong
