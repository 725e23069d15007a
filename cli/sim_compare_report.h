// What `fedmi sim --compare` reports: for each strategy, over the seeds, the
// mean and the worst of the final model's test AUC and accuracy, of the
// rounds it took to reach a target test AUC, of the bytes the sites
// uploaded and of the run's time; as a text table, as JSON, and test AUC
// per round as a line chart (the mean over seeds, the band from the lowest
// to the highest).
//
// Bytes moved are the sites' update bodies as the coordinator received
// them (SiteParticipation train_metrics.update_bytes): the coordinator
// does not record what sites download, so downloads are not counted, and
// the table and JSON say so.
//
// Pure functions of their inputs; thread-safe.
#ifndef FEDMI_CLI_SIM_COMPARE_REPORT_H_
#define FEDMI_CLI_SIM_COMPARE_REPORT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/sim_compare_file.h"
#include "common/plot/line_chart.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

// How a run ended. A run whose model could not be tested (NaN predictions,
// say, after an attack the strategy let through) is a result, not a fault:
// the table reports it, and the other runs go on.
enum class CompareOutcome { kCompleted, kModelUnusable, kFailed };
const char* CompareOutcomeName(CompareOutcome outcome);  // "completed", ...

// One strategy on one seed.
struct CompareRun {
  CompareOutcome outcome = CompareOutcome::kCompleted;
  std::string failure;  // why, when not completed
  uint64_t seed = 0;
  int64_t run_id = 0;
  std::string work_dir;
  // The global model of each round on the test split, round 1 first
  // (accuracy at threshold 0.5). NaN where undefined.
  std::vector<double> test_auc;
  std::vector<double> test_accuracy;
  // `fedmi sim`'s test of the final model (the last round's).
  double final_auc = 0;
  double final_accuracy = 0;
  int64_t uploaded_bytes = 0;
  double run_seconds = 0;   // from the run's start to its last round's end
  double wall_seconds = 0;  // the whole `fedmi sim`: split, processes, run, tests
};

struct CompareStrategy {
  CompareEntry entry;
  std::vector<CompareRun> runs;  // one per seed, in the seeds' order
};

// What every strategy shared.
struct CompareSetting {
  std::string file;
  std::vector<uint64_t> seeds;
  double target_auc = 0.95;
  int sites = 0;
  int rounds = 0;
  std::string model;
  std::string partition;
  double alpha = 0;
};

// The first round (1-based) whose test AUC is at least `target`; nullopt
// when none is (a NaN never is).
std::optional<int> RoundsToTarget(const std::vector<double>& auc_per_round, double target);

// The bytes the sites uploaded over all of `run`'s rounds.
int64_t UploadedBytes(const v1::RunStatus& run);
// Seconds from the run's creation to the end of its last round; 0 with no
// rounds.
double RunSeconds(const v1::RunStatus& run);

// The mean of some values over seeds and the worst of them. NaN for none,
// and where a value is NaN.
struct MeanWorst {
  double mean = 0;
  double worst = 0;
};
MeanWorst HigherIsBetter(const std::vector<double>& values);  // worst: the least
MeanWorst LowerIsBetter(const std::vector<double>& values);   // worst: the most

struct StrategySummary {
  // Final test AUC and accuracy over the completed runs; the worst is NaN
  // when a run did not complete.
  MeanWorst test_auc;
  MeanWorst accuracy;
  int completed = 0;
  int model_unusable = 0;
  int failed = 0;
  // Over seeds that reached the target; `reached` of them did. The worst is
  // "never" (reported as null) when any seed did not, and so is the mean
  // when none did.
  MeanWorst rounds_to_target;
  int reached = 0;
  MeanWorst uploaded_bytes;
  MeanWorst run_seconds;
  MeanWorst wall_seconds;
  // Round r + 1's test AUC over the seeds that have that round.
  std::vector<double> auc_mean;
  std::vector<double> auc_min;
  std::vector<double> auc_max;
};

StrategySummary Summarize(const CompareStrategy& strategy, double target_auc);

// The table printed at the end, with a header naming what each column
// counts, a line per strategy and notes below.
std::string CompareTable(const std::vector<CompareStrategy>& strategies,
                         const CompareSetting& setting);

// {"compare": file, "seeds", "target_auc", "sites", "rounds", "model",
// "partition", "alpha", "bytes_counted": "uploads", "strategies": [{"name",
// "flags", "test_auc": {"mean", "worst"}, "accuracy", "rounds_to_target":
// {"mean", "worst", "reached"}, "uploaded_bytes", "run_seconds",
// "wall_seconds", "auc_per_round": {"mean", "min", "max"}, "completed_runs",
// "runs": [{"seed", "outcome", "failure", "run_id", "work_dir", "test_auc", "accuracy",
// "rounds_to_target", "uploaded_bytes", "run_seconds", "wall_seconds", "auc_per_round",
// "accuracy_per_round"}]}]}. Undefined numbers are null.
nlohmann::json CompareJson(const std::vector<CompareStrategy>& strategies,
                           const CompareSetting& setting);

// The line chart of test AUC per round: one series per strategy, with the
// target as the reference line.
std::vector<LineSeries> CompareSeries(const std::vector<CompareStrategy>& strategies,
                                      double target_auc);
LineChartOptions CompareChartOptions(const CompareSetting& setting);
absl::Status WriteCompareChart(const std::vector<CompareStrategy>& strategies,
                               const CompareSetting& setting, const std::string& path);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SIM_COMPARE_REPORT_H_
