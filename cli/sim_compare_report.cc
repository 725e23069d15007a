#include "cli/sim_compare_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command_support.h"

namespace fedmi::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json MeanWorstJson(const MeanWorst& value) {
  return {{"mean", JsonNumber(value.mean)}, {"worst", JsonNumber(value.worst)}};
}

nlohmann::json NumbersJson(const std::vector<double>& values) {
  nlohmann::json list = nlohmann::json::array();
  for (double value : values) list.push_back(JsonNumber(value));
  return list;
}

nlohmann::json RoundsJson(std::optional<int> rounds) {
  return rounds.has_value() ? nlohmann::json(*rounds) : nlohmann::json(nullptr);
}

MeanWorst Summary(const std::vector<double>& values, bool higher_is_better) {
  if (values.empty()) return {kNaN, kNaN};
  double sum = 0;
  double worst = values.front();
  for (double value : values) {
    if (std::isnan(value)) return {kNaN, kNaN};
    sum += value;
    worst = higher_is_better ? std::min(worst, value) : std::max(worst, value);
  }
  return {sum / static_cast<double>(values.size()), worst};
}

std::string Seconds(double value) {
  return std::isnan(value) ? "-" : absl::StrFormat("%.1f", value);
}

std::string Megabytes(double bytes) {
  return std::isnan(bytes) ? "-" : absl::StrFormat("%.2f", bytes / 1e6);
}

std::string SeedList(const std::vector<uint64_t>& seeds) { return absl::StrJoin(seeds, ", "); }

// A strategy's final-model columns: over the completed runs, with the worst
// named by what happened to the others.
std::string WorstText(const StrategySummary& s, double worst) {
  if (s.failed > 0) return "failed";
  if (s.model_unusable > 0) return "ruined";
  return FormatMetric(worst);
}

}  // namespace

const char* CompareOutcomeName(CompareOutcome outcome) {
  switch (outcome) {
    case CompareOutcome::kCompleted:
      return "completed";
    case CompareOutcome::kModelUnusable:
      return "model_unusable";
    case CompareOutcome::kFailed:
      return "failed";
  }
  return "failed";
}

std::optional<int> RoundsToTarget(const std::vector<double>& auc_per_round, double target) {
  for (size_t i = 0; i < auc_per_round.size(); ++i) {
    if (auc_per_round[i] >= target) return static_cast<int>(i) + 1;
  }
  return std::nullopt;
}

int64_t UploadedBytes(const v1::RunStatus& run) {
  int64_t bytes = 0;
  for (const v1::RoundStatus& round : run.rounds()) {
    for (const v1::SiteParticipation& site : round.sites()) {
      bytes += site.train_metrics().update_bytes();
    }
  }
  return bytes;
}

double RunSeconds(const v1::RunStatus& run) {
  double last = 0;
  for (const v1::RoundStatus& round : run.rounds()) last = std::max(last, round.finished_at());
  return last > 0 ? last - run.created_at() : 0;
}

MeanWorst HigherIsBetter(const std::vector<double>& values) { return Summary(values, true); }
MeanWorst LowerIsBetter(const std::vector<double>& values) { return Summary(values, false); }

StrategySummary Summarize(const CompareStrategy& strategy, double target_auc) {
  StrategySummary summary;
  std::vector<double> auc, accuracy, reached_rounds, uploaded, run_seconds, wall_seconds;
  size_t rounds = 0;
  for (const CompareRun& run : strategy.runs) {
    switch (run.outcome) {
      case CompareOutcome::kCompleted:
        ++summary.completed;
        auc.push_back(run.final_auc);
        accuracy.push_back(run.final_accuracy);
        break;
      case CompareOutcome::kModelUnusable:
        ++summary.model_unusable;
        break;
      case CompareOutcome::kFailed:
        ++summary.failed;
        break;
    }
    if (std::optional<int> reached = RoundsToTarget(run.test_auc, target_auc)) {
      reached_rounds.push_back(*reached);
    }
    // A failed run may have stopped anywhere: its bytes and times say
    // nothing of the strategy.
    if (run.outcome != CompareOutcome::kFailed) {
      uploaded.push_back(static_cast<double>(run.uploaded_bytes));
      run_seconds.push_back(run.run_seconds);
    }
    // sim's summary, and so its wall time, comes only with a completed run.
    if (run.outcome == CompareOutcome::kCompleted) wall_seconds.push_back(run.wall_seconds);
    rounds = std::max(rounds, run.test_auc.size());
  }
  summary.test_auc = HigherIsBetter(auc);
  summary.accuracy = HigherIsBetter(accuracy);
  if (summary.completed < static_cast<int>(strategy.runs.size())) {
    summary.test_auc.worst = kNaN;
    summary.accuracy.worst = kNaN;
  }
  summary.reached = static_cast<int>(reached_rounds.size());
  summary.rounds_to_target = LowerIsBetter(reached_rounds);
  if (reached_rounds.size() < strategy.runs.size()) summary.rounds_to_target.worst = kNaN;
  summary.uploaded_bytes = LowerIsBetter(uploaded);
  summary.run_seconds = LowerIsBetter(run_seconds);
  summary.wall_seconds = LowerIsBetter(wall_seconds);
  for (size_t r = 0; r < rounds; ++r) {
    std::vector<double> values;
    for (const CompareRun& run : strategy.runs) {
      if (r < run.test_auc.size()) values.push_back(run.test_auc[r]);
    }
    const MeanWorst round = HigherIsBetter(values);
    summary.auc_mean.push_back(round.mean);
    summary.auc_min.push_back(round.worst);
    summary.auc_max.push_back(
        std::isnan(round.mean) ? kNaN : *std::max_element(values.begin(), values.end()));
  }
  return summary;
}

std::string CompareTable(const std::vector<CompareStrategy>& strategies,
                         const CompareSetting& setting) {
  size_t name_width = 8;
  for (const CompareStrategy& strategy : strategies) {
    name_width = std::max(name_width, strategy.entry.name.size());
  }
  const int w = static_cast<int>(name_width) + 2;
  const std::string target = absl::StrFormat("%g", setting.target_auc);
  std::ostringstream out;
  out << absl::StrFormat("%-*s%-18s%-18s%-21s%-13s%s\n", w, "strategy", "test AUC", "accuracy",
                         absl::StrCat("rounds to AUC ", target), "uploaded MB", "run s");
  out << absl::StrFormat("%-*s%-9s%-9s%-9s%-9s%-9s%-12s%-13s%-8s%s\n", w, "", "mean", "worst",
                         "mean", "worst", "mean", "worst", "mean", "mean", "worst");
  std::ostringstream incomplete;
  for (const CompareStrategy& strategy : strategies) {
    const StrategySummary s = Summarize(strategy, setting.target_auc);
    for (const CompareRun& run : strategy.runs) {
      if (run.outcome == CompareOutcome::kCompleted) continue;
      incomplete << absl::StrFormat("  %s, seed %d: %s: %s\n", strategy.entry.name, run.seed,
                                    run.outcome == CompareOutcome::kFailed
                                        ? "failed"
                                        : "ruined (the final model could not be tested)",
                                    run.failure);
    }
    const std::string rounds_mean = std::isnan(s.rounds_to_target.mean)
                                        ? "-"
                                        : absl::StrFormat("%.1f", s.rounds_to_target.mean);
    const std::string rounds_worst = std::isnan(s.rounds_to_target.worst)
                                         ? "never"
                                         : absl::StrFormat("%.0f", s.rounds_to_target.worst);
    out << absl::StrFormat("%-*s%-9s%-9s%-9s%-9s%-9s%-12s%-13s%-8s%s\n", w, strategy.entry.name,
                           FormatMetric(s.test_auc.mean), WorstText(s, s.test_auc.worst),
                           FormatMetric(s.accuracy.mean), WorstText(s, s.accuracy.worst),
                           rounds_mean, rounds_worst, Megabytes(s.uploaded_bytes.mean),
                           Seconds(s.run_seconds.mean), Seconds(s.run_seconds.worst));
  }
  out << absl::StrFormat(
      "  mean and worst over seed(s) %s: %d sites, %s partition (alpha %g), %d rounds, %s\n"
      "  test AUC, accuracy: the final global model on the test split (accuracy at P >= 0.5);\n"
      "    the mean is over the runs that completed; worst: ruined or failed when one did not\n"
      "  rounds to AUC %s: the first round whose global model reaches it on the test split;\n"
      "    mean over the seeds that reach it, never: a seed does not\n"
      "  uploaded MB: the sites' updates as the coordinator received them, over all rounds\n"
      "    (what sites download is not recorded, so it is not counted)\n"
      "  run s: from the run's start to the end of its last round\n",
      SeedList(setting.seeds), setting.sites, setting.partition, setting.alpha, setting.rounds,
      setting.model, target);
  if (!incomplete.str().empty()) out << "runs that did not complete:\n" << incomplete.str();
  return out.str();
}

nlohmann::json CompareJson(const std::vector<CompareStrategy>& strategies,
                           const CompareSetting& setting) {
  nlohmann::json list = nlohmann::json::array();
  for (const CompareStrategy& strategy : strategies) {
    const StrategySummary s = Summarize(strategy, setting.target_auc);
    nlohmann::json runs = nlohmann::json::array();
    for (const CompareRun& run : strategy.runs) {
      const bool failed = run.outcome == CompareOutcome::kFailed;
      runs.push_back(
          {{"seed", run.seed},
           {"outcome", CompareOutcomeName(run.outcome)},
           {"failure", run.failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.failure)},
           {"run_id", run.run_id},
           {"work_dir", run.work_dir},
           {"test_auc", run.outcome == CompareOutcome::kCompleted ? JsonNumber(run.final_auc)
                                                                  : nlohmann::json(nullptr)},
           {"accuracy", run.outcome == CompareOutcome::kCompleted ? JsonNumber(run.final_accuracy)
                                                                  : nlohmann::json(nullptr)},
           {"rounds_to_target", RoundsJson(RoundsToTarget(run.test_auc, setting.target_auc))},
           {"uploaded_bytes",
            failed ? nlohmann::json(nullptr) : nlohmann::json(run.uploaded_bytes)},
           {"run_seconds", failed ? nlohmann::json(nullptr) : nlohmann::json(run.run_seconds)},
           {"wall_seconds", run.outcome == CompareOutcome::kCompleted
                                ? nlohmann::json(run.wall_seconds)
                                : nlohmann::json(nullptr)},
           {"auc_per_round", NumbersJson(run.test_auc)},
           {"accuracy_per_round", NumbersJson(run.test_accuracy)}});
    }
    nlohmann::json rounds_to_target = MeanWorstJson(s.rounds_to_target);
    rounds_to_target["reached"] = s.reached;
    list.push_back({{"name", strategy.entry.name},
                    {"flags", strategy.entry.args},
                    {"test_auc", MeanWorstJson(s.test_auc)},
                    {"accuracy", MeanWorstJson(s.accuracy)},
                    {"rounds_to_target", rounds_to_target},
                    {"uploaded_bytes", MeanWorstJson(s.uploaded_bytes)},
                    {"run_seconds", MeanWorstJson(s.run_seconds)},
                    {"wall_seconds", MeanWorstJson(s.wall_seconds)},
                    {"auc_per_round",
                     {{"mean", NumbersJson(s.auc_mean)},
                      {"min", NumbersJson(s.auc_min)},
                      {"max", NumbersJson(s.auc_max)}}},
                    {"completed_runs", s.completed},
                    {"runs", runs}});
  }
  return {{"compare", setting.file},          {"seeds", setting.seeds},
          {"target_auc", setting.target_auc}, {"sites", setting.sites},
          {"rounds", setting.rounds},         {"model", setting.model},
          {"partition", setting.partition},   {"alpha", setting.alpha},
          {"bytes_counted", "uploads"},       {"strategies", list}};
}

std::vector<LineSeries> CompareSeries(const std::vector<CompareStrategy>& strategies,
                                      double target_auc) {
  std::vector<LineSeries> series;
  for (const CompareStrategy& strategy : strategies) {
    const StrategySummary s = Summarize(strategy, target_auc);
    LineSeries line;
    line.label = strategy.entry.name;
    for (size_t r = 0; r < s.auc_mean.size(); ++r) line.x.push_back(static_cast<double>(r + 1));
    line.y = s.auc_mean;
    if (strategy.runs.size() > 1) {
      line.low = s.auc_min;
      line.high = s.auc_max;
    }
    series.push_back(std::move(line));
  }
  return series;
}

LineChartOptions CompareChartOptions(const CompareSetting& setting) {
  LineChartOptions options;
  const size_t seeds = setting.seeds.size();
  options.title = absl::StrFormat("Test AUC per round: %d sites, %s alpha %g", setting.sites,
                                  setting.partition, setting.alpha);
  options.y_label = seeds > 1
                        ? absl::StrFormat("Test AUC, mean of %d seeds (band: min to max)", seeds)
                        : absl::StrCat("Test AUC, seed ", SeedList(setting.seeds));
  options.x_label = "Round";
  options.integer_x = true;
  options.reference_y = setting.target_auc;
  options.reference_label = absl::StrFormat("target %g", setting.target_auc);
  return options;
}

absl::Status WriteCompareChart(const std::vector<CompareStrategy>& strategies,
                               const CompareSetting& setting, const std::string& path) {
  const std::vector<LineSeries> series = CompareSeries(strategies, setting.target_auc);
  LineChartOptions options = CompareChartOptions(setting);
  // Strategy names are the user's, often long: widen the chart rather than
  // cut them.
  const int legend_width = LineChartLegendWidth(series);
  if (legend_width > options.legend_width) {
    options.width += legend_width - options.legend_width;
    options.legend_width = legend_width;
  }
  return WriteLineChart(series, options, path);
}

}  // namespace fedmi::cli
