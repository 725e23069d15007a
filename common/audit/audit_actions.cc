#include "common/audit/audit_actions.h"

namespace fedmi::audit {
namespace {

struct ActionEntry {
  Action action;
  const char* name;
};

constexpr ActionEntry kActions[] = {
    {Action::kCoordinatorStarted, "coordinator.started"},
    {Action::kCoordinatorStopped, "coordinator.stopped"},
    {Action::kSiteRegistered, "site.registered"},
    {Action::kSiteConnected, "site.connected"},
    {Action::kSiteDisconnected, "site.disconnected"},
    {Action::kSiteRefused, "site.refused"},
    {Action::kSiteRevoked, "site.revoked"},
    {Action::kAuthDenied, "auth.denied"},
    {Action::kRunStarted, "run.started"},
    {Action::kRunAborted, "run.aborted"},
    {Action::kRunFinished, "run.finished"},
    {Action::kRoundOpened, "round.opened"},
    {Action::kUpdateReceived, "update.received"},
    {Action::kUpdateRefused, "update.refused"},
    {Action::kSiteDropped, "site.dropped"},
    {Action::kSiteRefusedTask, "site.refused_task"},
    {Action::kRoundAggregated, "round.aggregated"},
    {Action::kRoundEvaluated, "round.evaluated"},
    {Action::kRoundFailed, "round.failed"},
    {Action::kModelExported, "model.exported"},
    {Action::kAuditTailMissing, "audit.tail_missing"},
};

}  // namespace

const char* ActionName(Action action) {
  for (const ActionEntry& entry : kActions) {
    if (entry.action == action) return entry.name;
  }
  return "unknown";
}

std::optional<Action> ParseAction(absl::string_view name) {
  for (const ActionEntry& entry : kActions) {
    if (name == entry.name) return entry.action;
  }
  return std::nullopt;
}

}  // namespace fedmi::audit
