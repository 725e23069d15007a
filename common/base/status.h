// Status helpers shared by every fedmi library.
//
// Errors cross module boundaries as absl::Status / absl::StatusOr values.
// These macros keep the happy path readable.
#ifndef FEDMI_COMMON_BASE_STATUS_H_
#define FEDMI_COMMON_BASE_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FEDMI_STATUS_CONCAT_INNER_(a, b) a##b
#define FEDMI_STATUS_CONCAT_(a, b) FEDMI_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` yields a non-OK status.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status fedmi_status_ = (expr);         \
    if (!fedmi_status_.ok()) return fedmi_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, MakeX()); declares `x` or returns the error.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  FEDMI_ASSIGN_OR_RETURN_IMPL_(FEDMI_STATUS_CONCAT_(fedmi_statusor_, __LINE__), lhs, rexpr)

#define FEDMI_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // FEDMI_COMMON_BASE_STATUS_H_
