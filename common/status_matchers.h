// GoogleTest matchers and macros for absl::Status and absl::StatusOr (Abseil 20220623 ships
// none), so that a failing test prints the status it got, not just "false":
//
//   EXPECT_OK(store.Write(...));                      // Status or StatusOr
//   ASSERT_OK_AND_ASSIGN(auto plan, BuildPlan(spec));  // the value, or stops the test
//   EXPECT_THAT(Parse(text), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seq_len")));
//
// Test-only (the :status_matchers target is testonly).
#ifndef PROLONG_COMMON_STATUS_MATCHERS_H_
#define PROLONG_COMMON_STATUS_MATCHERS_H_

#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::testing {
namespace internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

class IsOkMatcher {
 public:
  template <typename StatusType>
  bool MatchAndExplain(const StatusType& value, ::testing::MatchResultListener* listener) const {
    const absl::Status& status = StatusOf(value);
    if (!status.ok()) *listener << "whose status is " << status;
    return status.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

class StatusIsMatcher {
 public:
  StatusIsMatcher(absl::StatusCode code, ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename StatusType>
  bool MatchAndExplain(const StatusType& value, ::testing::MatchResultListener* listener) const {
    const absl::Status& status = StatusOf(value);
    *listener << "whose status is " << status;
    if (status.code() != code_) return false;
    ::testing::StringMatchResultListener message_listener;
    const bool matches = message_.MatchAndExplain(std::string(status.message()), &message_listener);
    if (!matches && !message_listener.str().empty()) {
      *listener << ", and whose message " << message_listener.str();
    }
    return matches;
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has status code " << absl::StatusCodeToString(code_) << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have status code " << absl::StatusCodeToString(code_)
        << " or has a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  absl::StatusCode code_;
  ::testing::Matcher<const std::string&> message_;
};

}  // namespace internal

// Matches an OK Status or StatusOr.
inline ::testing::PolymorphicMatcher<internal::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(internal::IsOkMatcher());
}

// Matches a Status or StatusOr with `code` whose message matches `message` (a string matcher,
// such as HasSubstr, or a string that must equal the message).
inline ::testing::PolymorphicMatcher<internal::StatusIsMatcher> StatusIs(
    absl::StatusCode code, ::testing::Matcher<const std::string&> message = ::testing::_) {
  return ::testing::MakePolymorphicMatcher(internal::StatusIsMatcher(code, std::move(message)));
}

}  // namespace prolong::testing

// Abseil 20220623 cannot print a StatusOr; GoogleTest finds this by argument-dependent lookup
// (absl's inline namespace counts as absl) and prints the status, or the value when OK.
namespace absl {
template <typename T>
void PrintTo(const StatusOr<T>& status_or, std::ostream* os) {
  if (status_or.ok()) {
    *os << "OK: " << ::testing::PrintToString(*status_or);
  } else {
    *os << status_or.status();
  }
}
}  // namespace absl

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::prolong::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::prolong::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(lhs, expr): evaluates the StatusOr `expr`; fails the test (printing the
// status) and returns if it is not OK, otherwise moves its value into `lhs` (a declaration such
// as `auto x`, or an lvalue). Usable where ASSERT_* is: in functions returning void.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  PROLONG_ASSERT_OK_AND_ASSIGN_IMPL_(PROLONG_CONCAT_(prolong_statusor_, __LINE__), lhs, expr)

#define PROLONG_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr)        \
  auto statusor = (expr);                                              \
  ASSERT_THAT(statusor.status(), ::prolong::testing::IsOk()) << #expr; \
  lhs = *std::move(statusor)

#endif  // PROLONG_COMMON_STATUS_MATCHERS_H_
