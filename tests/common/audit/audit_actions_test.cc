#include "common/audit/audit_actions.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::audit {
namespace {

// Every action, in declaration order (the enum is dense up to its last
// member; a new action goes after it and into this test).
std::vector<Action> AllActions() {
  std::vector<Action> actions;
  for (int i = 0; i <= static_cast<int>(Action::kPrivacySpent); ++i) {
    actions.push_back(static_cast<Action>(i));
  }
  return actions;
}

TEST(AuditActionsTest, NamesAreExactlyTheStringsInStoredLogs) {
  // Changing one would make old, signed entries unreadable by `fedmi audit`
  // and the run report.
  std::vector<std::string> names;
  for (Action action : AllActions()) names.push_back(ActionName(action));
  EXPECT_EQ(absl::StrJoin(names, " "),
            "coordinator.started coordinator.stopped site.registered site.connected "
            "site.disconnected site.refused site.revoked auth.denied run.started run.aborted "
            "run.finished round.opened update.received update.refused site.dropped "
            "site.refused_task round.aggregated round.evaluated round.failed model.exported "
            "audit.tail_missing secagg.unmask_requested secagg.unmask_answered party.revoked "
            "privacy.spent");
}

TEST(AuditActionsTest, EveryActionRoundTrips) {
  for (Action action : AllActions()) {
    EXPECT_EQ(ParseAction(ActionName(action)), action) << ActionName(action);
  }
}

TEST(AuditActionsTest, ParsingRefusesUnknownNames) {
  EXPECT_EQ(ParseAction(""), std::nullopt);
  EXPECT_EQ(ParseAction("run"), std::nullopt);
  EXPECT_EQ(ParseAction("Run.Started"), std::nullopt);
  EXPECT_EQ(ParseAction("run.started "), std::nullopt);
}

}  // namespace
}  // namespace fedmi::audit
