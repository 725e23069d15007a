// RunSimCompare's loop with a fake `fedmi sim`: a run that fails is
// reported with the reason sim gave, and the comparison goes on with the
// others whatever strategy comes first. A run that got through its rounds
// but failed afterwards (an audit check, say) is a failure too: only a final
// model that predicts NaN counts as ruined (the real-sim path, shown in
// docs/strategies.md's measured tables).
#include "cli/sim_compare.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

bool Has(const std::vector<std::string>& args, const char* flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

// What sim does for an entry's flags: --late gets through its rounds and
// then fails (after OnRunDone); --fail dies before the run ends; --usage is
// refused as sim would refuse a bad flag; anything else completes with test
// AUC 0.9. Failures say why on std::cerr, as sim's ReportError does.
int FakeSim(const std::vector<std::string>& args, uint64_t seed, const std::string& work_dir,
            SimObserver& observer) {
  if (Has(args, "--usage")) return kExitUsage;
  v1::RoundStatus round;
  round.set_round(1);
  observer.OnRound(round);
  if (Has(args, "--fail")) {
    std::cerr << "error: run 1 ended failed: site-2 left\n";
    return kExitFailure;
  }
  // No rounds: OnRunDone exports nothing, so the admin client is never
  // called.
  TransportOptions insecure;
  insecure.insecure = true;
  absl::StatusOr<std::unique_ptr<AdminClient>> admin =
      AdminClient::Connect("127.0.0.1:1", insecure);
  if (!admin.ok()) return kExitFailure;
  v1::RunStatus run;
  run.set_run_id(static_cast<int64_t>(seed) + 1);
  EXPECT_TRUE(observer.OnRunDone(**admin, run, work_dir, "data.npz").ok());
  if (Has(args, "--late")) {
    std::cerr << "error: audit log: entry 7 does not chain\n";
    return kExitFailure;
  }
  observer.OnSummary({{"sites", 5},
                      {"rounds", 1},
                      {"model", "cnn"},
                      {"partition", "dirichlet"},
                      {"alpha", 0.5},
                      {"wall_seconds", 3.0},
                      {"test", {{"auc", 0.9}, {"accuracy", 0.8}}}});
  return kExitOk;
}

class SimCompareTest : public ::testing::Test {
 protected:
  int Compare(const std::string& toml) {
    const std::string file = dir_.Join("strategies.toml");
    std::ofstream(file) << toml;
    CompareOptions options;
    options.file = file;
    options.seeds = "0,1";
    options.out_dir = dir_.Join("out");
    SimDriver driver;
    driver.rounds = 1;
    driver.work_dir = dir_.Join("runs");
    driver.check_flags = [](const std::vector<std::string>&) { return absl::OkStatus(); };
    driver.run = FakeSim;
    return RunSimCompare(options, driver);
  }

  nlohmann::json Report() {
    absl::StatusOr<std::string> text = ReadFileToString(dir_.Join("out/compare.json"));
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? nlohmann::json::parse(*text) : nlohmann::json();
  }

  ScratchDir dir_;
};

constexpr char kFailingFirst[] = R"([[strategy]]
name = "late"
flags = "--late"
[[strategy]]
name = "good"
flags = "--good"
[[strategy]]
name = "dies"
flags = "--fail"
)";

TEST_F(SimCompareTest, FailedRunsAreReportedWithTheirReasonsAndTheOthersStillRun) {
  ASSERT_EQ(Compare(kFailingFirst), kExitFailure);
  const nlohmann::json report = Report();
  ASSERT_EQ(report["strategies"].size(), 3u);
  const nlohmann::json& late = report["strategies"][0];
  EXPECT_EQ(late["completed_runs"], 0);
  ASSERT_EQ(late["runs"].size(), 2u) << "both seeds ran";
  EXPECT_EQ(late["runs"][1]["outcome"], "failed") << "its final model was never found NaN";
  EXPECT_EQ(late["runs"][1]["failure"], "audit log: entry 7 does not chain");
  const nlohmann::json& dies = report["strategies"][2];
  EXPECT_EQ(dies["runs"][0]["outcome"], "failed");
  EXPECT_EQ(dies["runs"][0]["failure"], "run 1 ended failed: site-2 left");
  EXPECT_TRUE(dies["runs"][0]["uploaded_bytes"].is_null());
  const nlohmann::json& good = report["strategies"][1];
  EXPECT_EQ(good["completed_runs"], 2);
  EXPECT_DOUBLE_EQ(good["test_auc"]["mean"].get<double>(), 0.9);
  // The setting comes from the first completed run's summary.
  EXPECT_EQ(report["sites"], 5);
  EXPECT_EQ(report["model"], "cnn");
  // Each run's log holds what sim wrote to std::cerr.
  ASSERT_OK_AND_ASSIGN(
      std::string log,
      ReadFileToString(late["runs"][0]["work_dir"].get<std::string>() + "/sim.log"));
  EXPECT_THAT(log, ::testing::HasSubstr("error: audit log: entry 7 does not chain"));
}

TEST_F(SimCompareTest, CompletedRunsAloneExitZero) {
  EXPECT_EQ(Compare("[[strategy]]\nname = \"good\"\nflags = \"--good\"\n"), kExitOk);
  EXPECT_EQ(Report()["strategies"][0]["completed_runs"], 2);
}

TEST_F(SimCompareTest, ARefusedFlagStopsTheComparisonAsAUsageError) {
  EXPECT_EQ(Compare("[[strategy]]\nname = \"bad\"\nflags = \"--usage\"\n"), kExitUsage);
}

}  // namespace
}  // namespace fedmi::cli
