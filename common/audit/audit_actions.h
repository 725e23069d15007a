// The audit log's action names: the code that writes entries (coordinator)
// and the code that reads them (run report, verify) both use these, so a
// renamed action cannot silently stop matching. The names are stored in
// signed entries and must never change; add new ones at the end.
#ifndef FEDMI_COMMON_AUDIT_AUDIT_ACTIONS_H_
#define FEDMI_COMMON_AUDIT_AUDIT_ACTIONS_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace fedmi::audit {

enum class Action {
  kCoordinatorStarted,
  kCoordinatorStopped,
  kSiteRegistered,
  kSiteConnected,
  kSiteDisconnected,
  kSiteRefused,
  kSiteRevoked,
  kAuthDenied,
  kRunStarted,
  kRunAborted,
  kRunFinished,
  kRoundOpened,
  kUpdateReceived,
  kUpdateRefused,
  kSiteDropped,
  kSiteRefusedTask,
  kRoundAggregated,
  kRoundEvaluated,
  kRoundFailed,
  kModelExported,
  kAuditTailMissing,
  kSecAggUnmaskRequested,
  kSecAggUnmaskAnswered,
  // An admin or auditor revoked by name (sites keep site.revoked).
  kPartyRevoked,
  kPrivacySpent,
};

// "round.aggregated", ...
const char* ActionName(Action action);
std::optional<Action> ParseAction(absl::string_view name);

}  // namespace fedmi::audit

#endif  // FEDMI_COMMON_AUDIT_AUDIT_ACTIONS_H_
