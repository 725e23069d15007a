#include "client/privacy_ledger.h"

#include "common/privacy/dp_plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::DpSettings Dp() { return CompletedSampleDp(1.1, 0.05, 20); }

double PlannedAfter(int rounds) { return privacy::EpsilonAfterRounds(Dp(), rounds)->epsilon; }

TEST(PrivacyLedgerTest, EachTrainingIsChargedAndEpsilonMatchesThePlan) {
  ScratchDir dir;
  PrivacyLedger ledger(dir.Join("privacy"), *Env::Default());
  EXPECT_EQ(*ledger.Spent(7, 1e-5), 0);
  for (int round = 1; round <= 3; ++round) {
    ASSERT_OK_AND_ASSIGN(double epsilon, ledger.Charge(7, round, Dp(), std::nullopt));
    EXPECT_NEAR(epsilon, PlannedAfter(round), 1e-9) << round;
  }
  EXPECT_NEAR(*ledger.Spent(7, 1e-5), PlannedAfter(3), 1e-9);
  EXPECT_EQ(*ledger.Spent(8, 1e-5), 0) << "runs are accounted apart";
}

TEST(PrivacyLedgerTest, ARetriedRoundIsChargedAgain) {
  PrivacyLedger ledger("", *Env::Default());
  ASSERT_OK_AND_ASSIGN(double first, ledger.Charge(1, 4, Dp(), std::nullopt));
  ASSERT_OK_AND_ASSIGN(double again, ledger.Charge(1, 4, Dp(), std::nullopt));
  EXPECT_NEAR(first, PlannedAfter(1), 1e-9);
  EXPECT_NEAR(again, PlannedAfter(2), 1e-9) << "new noise and samples are a new release";
}

TEST(PrivacyLedgerTest, ARoundPastMaxEpsilonIsRefusedAndNotCharged) {
  PrivacyLedger ledger("", *Env::Default());
  const double max_epsilon = (PlannedAfter(2) + PlannedAfter(3)) / 2;
  ASSERT_THAT(ledger.Charge(1, 1, Dp(), max_epsilon).status(), IsOk());
  ASSERT_THAT(ledger.Charge(1, 2, Dp(), max_epsilon).status(), IsOk());
  const absl::Status refused = ledger.Charge(1, 3, Dp(), max_epsilon).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()),
              AllOf(StartsWith("site policy: round 3 would take this site's epsilon to"),
                    HasSubstr("past its max_epsilon")));
  EXPECT_NEAR(*ledger.Spent(1, 1e-5), PlannedAfter(2), 1e-9);
}

TEST(PrivacyLedgerTest, AnotherRunGetsNoFreshBudget) {
  ScratchDir dir;
  const double max_epsilon = (PlannedAfter(2) + PlannedAfter(3)) / 2;
  {
    PrivacyLedger ledger(dir.Join("privacy"), *Env::Default());
    ASSERT_THAT(ledger.Charge(1, 1, Dp(), max_epsilon).status(), IsOk());
    ASSERT_THAT(ledger.Charge(2, 1, Dp(), max_epsilon).status(), IsOk());
  }
  // The same patients, a third run, after a restart: refused all the same.
  PrivacyLedger restarted(dir.Join("privacy"), *Env::Default());
  const absl::Status refused = restarted.Charge(3, 1, Dp(), max_epsilon).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("over all 3 trainings it has done in 3 run(s)"));
  EXPECT_NEAR(*restarted.SpentOverAllRuns(1e-5), PlannedAfter(2), 1e-9);
  EXPECT_NEAR(*restarted.Spent(2, 1e-5), PlannedAfter(1), 1e-9);
}

TEST(PrivacyLedgerTest, ARestartedSiteRemembersWhatItSpent) {
  ScratchDir dir;
  {
    PrivacyLedger ledger(dir.Join("privacy"), *Env::Default());
    ASSERT_THAT(ledger.Charge(3, 1, Dp(), std::nullopt).status(), IsOk());
    ASSERT_THAT(ledger.Charge(3, 2, Dp(), std::nullopt).status(), IsOk());
  }
  PrivacyLedger restarted(dir.Join("privacy"), *Env::Default());
  EXPECT_NEAR(*restarted.Spent(3, 1e-5), PlannedAfter(2), 1e-9);
  ASSERT_OK_AND_ASSIGN(double epsilon, restarted.Charge(3, 3, Dp(), std::nullopt));
  EXPECT_NEAR(epsilon, PlannedAfter(3), 1e-9);
}

TEST(PrivacyLedgerTest, ALedgerThatCannotBeWrittenStopsTrainingAndChargesNothing) {
  ScratchDir dir;
  FaultInjectionEnv env;
  env.FailCommits(absl::ResourceExhaustedError("No space left on device"));
  PrivacyLedger ledger(dir.Join("privacy"), env);
  EXPECT_EQ(ledger.Charge(1, 1, Dp(), std::nullopt).status().code(),
            absl::StatusCode::kResourceExhausted);
  env.Heal();
  EXPECT_EQ(*ledger.Spent(1, 1e-5), 0);
  ASSERT_OK_AND_ASSIGN(double epsilon, ledger.Charge(1, 1, Dp(), std::nullopt));
  EXPECT_NEAR(epsilon, PlannedAfter(1), 1e-9);
}

TEST(PrivacyLedgerTest, AnUnreadableLedgerIsNeverReadAsNothingSpent) {
  ScratchDir dir;
  ASSERT_THAT(Env::Default()->CreateDirs(dir.Join("privacy")), IsOk());
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), dir.Join("privacy/run-5.json"), "{truncated"),
              IsOk());
  PrivacyLedger ledger(dir.Join("privacy"), *Env::Default());
  EXPECT_EQ(ledger.Charge(5, 2, Dp(), std::nullopt).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ledger.Spent(5, 1e-5).status().code(), absl::StatusCode::kDataLoss);
  // Valid JSON of the wrong shape is no better, and never crashes the site.
  for (const char* hostile : {R"({"events": [{"round": "one"}]})", R"({"events": [3]})",
                              R"({"events": [{"round": 1}]})", "[]"}) {
    ASSERT_THAT(WriteFileAtomically(*Env::Default(), dir.Join("privacy/run-5.json"), hostile),
                IsOk());
    PrivacyLedger reread(dir.Join("privacy"), *Env::Default());
    EXPECT_EQ(reread.Charge(6, 1, Dp(), std::nullopt).status().code(), absl::StatusCode::kDataLoss)
        << hostile;
  }
}

}  // namespace
}  // namespace fedmi
