#include "cli/sim_compare_report.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pointwise;

std::vector<double> Near(std::initializer_list<double> values) { return values; }

CompareRun Run(uint64_t seed, std::vector<double> auc, double final_auc, double accuracy,
               int64_t bytes, double run_seconds) {
  CompareRun run;
  run.seed = seed;
  run.test_auc = std::move(auc);
  run.test_accuracy = std::vector<double>(run.test_auc.size(), accuracy);
  run.final_auc = final_auc;
  run.final_accuracy = accuracy;
  run.uploaded_bytes = bytes;
  run.run_seconds = run_seconds;
  run.wall_seconds = run_seconds + 10;
  return run;
}

// FedAvg reaches AUC 0.95 in round 2 on seed 0 and round 3 on seed 1;
// Median only on seed 0, in round 3.
std::vector<CompareStrategy> TwoStrategies() {
  CompareStrategy fedavg;
  fedavg.entry.name = "FedAvg";
  fedavg.entry.args = {"--strategy", "fedavg"};
  fedavg.runs = {Run(0, {0.90, 0.96, 0.97}, 0.97, 0.90, 1'000'000, 10),
                 Run(1, {0.85, 0.93, 0.95}, 0.95, 0.86, 3'000'000, 14)};
  CompareStrategy median;
  median.entry.name = "Median";
  median.entry.args = {"--strategy", "median"};
  median.runs = {Run(0, {0.80, 0.90, 0.951}, 0.951, 0.80, 2'000'000, 11),
                 Run(1, {0.70, NAN, 0.94}, 0.94, 0.84, 2'000'000, 12)};
  return {fedavg, median};
}

CompareSetting Setting() {
  CompareSetting setting;
  setting.file = "s.toml";
  setting.seeds = {0, 1};
  setting.target_auc = 0.95;
  setting.sites = 3;
  setting.rounds = 3;
  setting.model = "cnn";
  setting.partition = "dirichlet";
  setting.alpha = 0.5;
  return setting;
}

TEST(SimCompareReportTest, RoundsToTargetIsTheFirstRoundAtOrAboveIt) {
  EXPECT_EQ(RoundsToTarget({0.90, 0.95, 0.97}, 0.95), 2);
  EXPECT_EQ(RoundsToTarget({0.96}, 0.95), 1);
  EXPECT_EQ(RoundsToTarget({0.90, NAN, 0.949}, 0.95), std::nullopt);
  EXPECT_EQ(RoundsToTarget({}, 0.95), std::nullopt);
}

TEST(SimCompareReportTest, CountsUploadsOverRoundsAndSitesAndTheRunsTime) {
  v1::RunStatus run;
  run.set_created_at(1000);
  v1::RoundStatus* first = run.add_rounds();
  first->set_finished_at(1010);
  first->add_sites()->mutable_train_metrics()->set_update_bytes(100);
  first->add_sites()->mutable_train_metrics()->set_update_bytes(200);
  v1::RoundStatus* second = run.add_rounds();
  second->set_finished_at(1025);
  second->add_sites()->mutable_train_metrics()->set_update_bytes(150);
  second->add_sites();  // dropped: no update
  EXPECT_EQ(UploadedBytes(run), 450);
  EXPECT_DOUBLE_EQ(RunSeconds(run), 25);
  EXPECT_DOUBLE_EQ(RunSeconds(v1::RunStatus()), 0);
}

TEST(SimCompareReportTest, SummarizesTheMeanAndTheWorstOverSeeds) {
  const std::vector<CompareStrategy> strategies = TwoStrategies();
  const StrategySummary fedavg = Summarize(strategies[0], 0.95);
  EXPECT_NEAR(fedavg.test_auc.mean, 0.96, 1e-12);
  EXPECT_NEAR(fedavg.test_auc.worst, 0.95, 1e-12);
  EXPECT_NEAR(fedavg.accuracy.mean, 0.88, 1e-12);
  EXPECT_NEAR(fedavg.accuracy.worst, 0.86, 1e-12);
  EXPECT_EQ(fedavg.reached, 2);
  EXPECT_DOUBLE_EQ(fedavg.rounds_to_target.mean, 2.5);
  EXPECT_DOUBLE_EQ(fedavg.rounds_to_target.worst, 3);
  EXPECT_DOUBLE_EQ(fedavg.uploaded_bytes.mean, 2e6);
  EXPECT_DOUBLE_EQ(fedavg.uploaded_bytes.worst, 3e6);
  EXPECT_DOUBLE_EQ(fedavg.run_seconds.mean, 12);
  EXPECT_DOUBLE_EQ(fedavg.run_seconds.worst, 14);
  EXPECT_THAT(fedavg.auc_mean, Pointwise(DoubleNear(1e-12), Near({0.875, 0.945, 0.96})));
  EXPECT_THAT(fedavg.auc_min, Pointwise(DoubleNear(1e-12), Near({0.85, 0.93, 0.95})));
  EXPECT_THAT(fedavg.auc_max, Pointwise(DoubleNear(1e-12), Near({0.90, 0.96, 0.97})));

  // A seed that never reaches the target makes the worst "never"; the mean
  // is over the seeds that do. An undefined AUC stays undefined.
  const StrategySummary median = Summarize(strategies[1], 0.95);
  EXPECT_EQ(median.reached, 1);
  EXPECT_DOUBLE_EQ(median.rounds_to_target.mean, 3);
  EXPECT_TRUE(std::isnan(median.rounds_to_target.worst));
  EXPECT_TRUE(std::isnan(median.auc_mean[1]));
  EXPECT_NEAR(median.auc_min[2], 0.94, 1e-12);

  EXPECT_TRUE(std::isnan(HigherIsBetter({}).mean));
  EXPECT_TRUE(std::isnan(HigherIsBetter({0.9, NAN}).worst));
  EXPECT_DOUBLE_EQ(LowerIsBetter({3, 1, 2}).worst, 3);
}

TEST(SimCompareReportTest, TableHasALinePerStrategyAndSaysWhatItCounts) {
  const std::string table = CompareTable(TwoStrategies(), Setting());
  EXPECT_THAT(table, HasSubstr("strategy  test AUC          accuracy          rounds to AUC 0.95   "
                               "uploaded MB  run s\n"));
  EXPECT_THAT(table, HasSubstr("FedAvg    0.9600   0.9500   0.8800   0.8600   2.5      3        "
                               "   2.00         12.0    14.0\n"));
  EXPECT_THAT(table, HasSubstr("Median    0.9455   0.9400   0.8200   0.8000   3.0      never    "
                               "   2.00         11.5    12.0\n"));
  EXPECT_THAT(table, HasSubstr("seed(s) 0, 1: 3 sites, dirichlet partition (alpha 0.5), 3 rounds"));
  EXPECT_THAT(table, HasSubstr("not counted"));
}

TEST(SimCompareReportTest, JsonHoldsSummariesAndEveryRun) {
  const nlohmann::json json = CompareJson(TwoStrategies(), Setting());
  EXPECT_EQ(json["bytes_counted"], "uploads");
  EXPECT_EQ(json["seeds"], nlohmann::json({0, 1}));
  EXPECT_EQ(json["target_auc"], 0.95);
  ASSERT_EQ(json["strategies"].size(), 2u);
  const nlohmann::json& fedavg = json["strategies"][0];
  EXPECT_EQ(fedavg["name"], "FedAvg");
  EXPECT_EQ(fedavg["flags"], nlohmann::json({"--strategy", "fedavg"}));
  EXPECT_NEAR(fedavg["test_auc"]["mean"].get<double>(), 0.96, 1e-12);
  EXPECT_EQ(fedavg["rounds_to_target"]["worst"], 3.0);
  EXPECT_EQ(fedavg["rounds_to_target"]["reached"], 2);
  EXPECT_NEAR(fedavg["auc_per_round"]["mean"][0].get<double>(), 0.875, 1e-12);
  ASSERT_EQ(fedavg["runs"].size(), 2u);
  EXPECT_EQ(fedavg["runs"][1]["seed"], 1);
  EXPECT_EQ(fedavg["runs"][1]["rounds_to_target"], 3);
  EXPECT_EQ(fedavg["runs"][1]["uploaded_bytes"], 3'000'000);

  const nlohmann::json& median = json["strategies"][1];
  EXPECT_TRUE(median["rounds_to_target"]["worst"].is_null());
  EXPECT_TRUE(median["runs"][1]["rounds_to_target"].is_null());
  EXPECT_TRUE(median["runs"][1]["auc_per_round"][1].is_null());
}

// A ruined model (an attack FedAvg let through) is a result: the mean is
// over the completed runs, the worst says what happened, and the run is
// listed with its reason. A failed run is told apart from it.
TEST(SimCompareReportTest, RunsThatDidNotCompleteAreCountedAndNamed) {
  std::vector<CompareStrategy> strategies = TwoStrategies();
  CompareRun ruined = cli::Run(2, {0.7, NAN, NAN}, 0, 0, 1'000'000, 9);
  ruined.outcome = CompareOutcome::kModelUnusable;
  ruined.failure = "round 2's model: NaN predictions";
  strategies[0].runs.push_back(ruined);
  CompareRun failed = cli::Run(2, {}, 0, 0, 0, 0);
  failed.outcome = CompareOutcome::kFailed;
  failed.failure = "fedmi sim exited with code 1; see x/sim.log";
  strategies[1].runs.push_back(failed);

  const StrategySummary fedavg = Summarize(strategies[0], 0.95);
  EXPECT_EQ(fedavg.completed, 2);
  EXPECT_EQ(fedavg.model_unusable, 1);
  EXPECT_EQ(fedavg.failed, 0);
  EXPECT_NEAR(fedavg.test_auc.mean, 0.96, 1e-12);
  EXPECT_TRUE(std::isnan(fedavg.test_auc.worst));
  EXPECT_DOUBLE_EQ(fedavg.wall_seconds.mean, 22);  // the completed runs' only
  EXPECT_TRUE(std::isnan(fedavg.auc_mean[1]));

  CompareSetting setting = Setting();
  setting.seeds = {0, 1, 2};
  const std::string table = CompareTable(strategies, setting);
  EXPECT_THAT(table, HasSubstr("FedAvg    0.9600   ruined   0.8800   ruined"));
  EXPECT_THAT(table, HasSubstr("Median    0.9455   failed   0.8200   failed"));
  EXPECT_THAT(table, HasSubstr("FedAvg, seed 2: ruined (the final model could not be tested): "
                               "round 2's model: NaN predictions\n"));
  EXPECT_THAT(table, HasSubstr("Median, seed 2: failed: fedmi sim exited with code 1"));

  const nlohmann::json json = CompareJson(strategies, setting);
  EXPECT_EQ(json["strategies"][0]["completed_runs"], 2);
  EXPECT_TRUE(json["strategies"][0]["test_auc"]["worst"].is_null());
  const nlohmann::json& run = json["strategies"][0]["runs"][2];
  EXPECT_EQ(run["outcome"], "model_unusable");
  EXPECT_EQ(run["failure"], "round 2's model: NaN predictions");
  EXPECT_TRUE(run["test_auc"].is_null());
  EXPECT_EQ(json["strategies"][0]["runs"][0]["outcome"], "completed");
  EXPECT_TRUE(json["strategies"][0]["runs"][0]["failure"].is_null());
  EXPECT_EQ(json["strategies"][1]["runs"][2]["outcome"], "failed");
}

TEST(SimCompareReportTest, ChartHasALinePerStrategyWithABandOverSeeds) {
  std::vector<CompareStrategy> strategies = TwoStrategies();
  strategies[1].runs.pop_back();  // one seed: no band
  const std::vector<LineSeries> series = CompareSeries(strategies, 0.95);
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].label, "FedAvg");
  EXPECT_THAT(series[0].x, ElementsAre(1, 2, 3));
  EXPECT_THAT(series[0].y, Pointwise(DoubleNear(1e-12), Near({0.875, 0.945, 0.96})));
  EXPECT_THAT(series[0].low, Pointwise(DoubleNear(1e-12), Near({0.85, 0.93, 0.95})));
  EXPECT_THAT(series[0].high, Pointwise(DoubleNear(1e-12), Near({0.90, 0.96, 0.97})));
  EXPECT_THAT(series[1].low, IsEmpty());

  const LineChartOptions options = CompareChartOptions(Setting());
  EXPECT_EQ(options.reference_y.value_or(0), 0.95);
  EXPECT_TRUE(options.integer_x);
  EXPECT_THAT(options.y_label, HasSubstr("mean of 2 seeds"));

  ScratchDir dir;
  ASSERT_THAT(WriteCompareChart(strategies, Setting(), dir.Join("c.png")), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string png, ReadFileToString(dir.Join("c.png")));
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

}  // namespace
}  // namespace fedmi::cli
