#include "common/base/fault_hook.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

// The names integration tests put in FEDMI_TEST_CRASH_AT and
// docs/operations.md lists; they must not change.
constexpr std::pair<FaultPoint, const char*> kPoints[] = {
    {FaultPoint::kCoordinatorMidUpload, "coordinator-mid-upload"},
    {FaultPoint::kCoordinatorMidAggregation, "coordinator-mid-aggregation"},
    {FaultPoint::kCoordinatorCommit, "coordinator-commit"},
    {FaultPoint::kCoordinatorEvaluation, "coordinator-evaluation"},
    {FaultPoint::kCoordinatorBetweenRounds, "coordinator-between-rounds"},
    {FaultPoint::kSiteBeforeMaskedUpload, "secagg-before-masked-upload"},
};

TEST(FaultHookTest, EveryPointPrintsItsNameAndParsesBack) {
  for (const auto& [point, name] : kPoints) {
    EXPECT_STREQ(FaultPointName(point), name);
    EXPECT_EQ(ParseFaultPoint(name), point) << name;
  }
}

TEST(FaultHookTest, ParsingRefusesUnknownNames) {
  EXPECT_EQ(ParseFaultPoint(""), std::nullopt);
  EXPECT_EQ(ParseFaultPoint("coordinator-commit:3"), std::nullopt);
  EXPECT_EQ(ParseFaultPoint("Coordinator-Commit"), std::nullopt);
  EXPECT_EQ(ParseFaultPoint("unknown"), std::nullopt);
}

TEST(FaultHookTest, NoFaultsDoesNothingAtAnyPoint) {
  FaultHook& hook = NoFaults();
  EXPECT_EQ(&hook, &NoFaults());
  for (const auto& [point, name] : kPoints) {
    hook.Reached(point, -1);
    hook.Reached(point, 3);
  }
  SUCCEED() << "still alive";
}

TEST(FaultHookTest, WithoutTheVariableTheEnvironmentHookIsNoFaults) {
  unsetenv("FEDMI_TEST_CRASH_AT");
  FaultHook& hook = CrashAtFaultPointFromEnvironment();
  EXPECT_EQ(&hook, &NoFaults());
  hook.Reached(FaultPoint::kCoordinatorCommit, 1);
}

TEST(FaultHookDeathTest, TheEnvironmentHookKillsAtTheNamedPointAndRoundOnly) {
  // The hook reads the variable once per process; the death test's child is
  // a fresh process (threadsafe style re-executes the binary).
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        setenv("FEDMI_TEST_CRASH_AT", "coordinator-commit:2", 1);
        FaultHook& hook = CrashAtFaultPointFromEnvironment();
        hook.Reached(FaultPoint::kCoordinatorEvaluation, 2);
        hook.Reached(FaultPoint::kCoordinatorCommit, 1);
        hook.Reached(FaultPoint::kCoordinatorCommit, 2);
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
}

}  // namespace
}  // namespace fedmi
