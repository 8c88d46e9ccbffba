// Early-return helpers for absl::Status and absl::StatusOr (Abseil 20220623 has none), and
// Annotate, which says where an error happened without losing its code.
#ifndef PROLONG_COMMON_STATUS_MACROS_H_
#define PROLONG_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

// RETURN_IF_ERROR(expr): if `expr` (a Status or StatusOr) is not OK, returns its status.
#define RETURN_IF_ERROR(expr)                                               \
  do {                                                                      \
    ::absl::Status prolong_status_ = ::prolong::internal::ToStatus((expr)); \
    if (!prolong_status_.ok()) return prolong_status_;                      \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; returns its status if not OK,
// otherwise moves its value into `lhs` (a declaration such as `auto x` or an lvalue).
#define ASSIGN_OR_RETURN(lhs, expr) \
  PROLONG_ASSIGN_OR_RETURN_IMPL_(PROLONG_CONCAT_(prolong_statusor_, __LINE__), lhs, expr)

#define PROLONG_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = *std::move(statusor)

#define PROLONG_CONCAT_(a, b) PROLONG_CONCAT_INNER_(a, b)
#define PROLONG_CONCAT_INNER_(a, b) a##b

namespace prolong {

// "prefix: message" with the status's code (and payloads); OK stays OK.
inline absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status annotated(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    annotated.SetPayload(url, payload);
  });
  return annotated;
}

}  // namespace prolong

namespace prolong::internal {

inline absl::Status ToStatus(absl::Status status) { return status; }

template <typename T>
absl::Status ToStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace prolong::internal

#endif  // PROLONG_COMMON_STATUS_MACROS_H_
