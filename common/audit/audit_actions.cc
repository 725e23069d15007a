#include "common/audit/audit_actions.h"

#include "common/base/enum_names.h"

namespace fedmi::audit {
namespace {

constexpr EnumName<Action> kActions[] = {
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
    {Action::kSecAggUnmaskRequested, "secagg.unmask_requested"},
    {Action::kSecAggUnmaskAnswered, "secagg.unmask_answered"},
    {Action::kPartyRevoked, "party.revoked"},
    {Action::kPrivacySpent, "privacy.spent"},
};

}  // namespace

const char* ActionName(Action action) { return NameOf(kActions, action); }

std::optional<Action> ParseAction(absl::string_view name) { return ParseName(kActions, name); }

}  // namespace fedmi::audit
