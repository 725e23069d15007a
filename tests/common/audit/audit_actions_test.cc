#include "common/audit/audit_actions.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::audit {
namespace {

// Exactly the strings stored in existing, signed audit logs: changing one
// would make old entries unreadable by `fedmi audit` and the run report.
constexpr std::pair<Action, const char*> kStoredNames[] = {
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

TEST(AuditActionsTest, EveryActionHasItsStoredNameAndRoundTrips) {
  for (const auto& [action, name] : kStoredNames) {
    EXPECT_STREQ(ActionName(action), name);
    EXPECT_EQ(ParseAction(name), action) << name;
  }
}

TEST(AuditActionsTest, EveryEnumeratorIsPinned) {
  // The enum is dense from kCoordinatorStarted to kAuditTailMissing; a new
  // action appended after it must be added to kStoredNames.
  EXPECT_EQ(static_cast<int>(Action::kAuditTailMissing) + 1,
            static_cast<int>(std::size(kStoredNames)));
}

TEST(AuditActionsTest, ParsingRefusesUnknownNames) {
  EXPECT_EQ(ParseAction(""), std::nullopt);
  EXPECT_EQ(ParseAction("run"), std::nullopt);
  EXPECT_EQ(ParseAction("Run.Started"), std::nullopt);
  EXPECT_EQ(ParseAction("run.started "), std::nullopt);
}

}  // namespace
}  // namespace fedmi::audit
