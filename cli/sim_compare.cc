#include "cli/sim_compare.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/command_support.h"
#include "cli/local_federation.h"
#include "cli/model_export.h"
#include "cli/model_runner.h"
#include "cli/sim_compare_file.h"
#include "cli/sim_compare_report.h"
#include "common/base/status.h"
#include "common/data/metrics.h"

namespace fedmi::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double NumberOr(const nlohmann::json& value, double otherwise) {
  return value.is_number() ? value.get<double>() : otherwise;
}

// Sends std::cout to a file while it lives, and keeps what goes to
// std::cerr to add to the file at the end: a run's `fedmi sim` output and
// errors go to its log, and the comparison's progress to where std::cout
// wrote before.
class CoutToFile {
 public:
  explicit CoutToFile(const std::string& path)
      : file_(path),
        saved_out_(std::cout.rdbuf()),
        saved_err_(std::cerr.rdbuf()),
        progress_(saved_out_),
        terminal_errors_(saved_err_) {
    if (!file_) return;
    std::cout.rdbuf(file_.rdbuf());
    std::cerr.rdbuf(&errors_);
  }
  ~CoutToFile() {
    std::cout.flush();
    std::cout.rdbuf(saved_out_);
    std::cerr.rdbuf(saved_err_);
    if (file_) file_ << errors_.str();
  }
  CoutToFile(const CoutToFile&) = delete;
  CoutToFile& operator=(const CoutToFile&) = delete;

  bool ok() const { return static_cast<bool>(file_); }
  std::ostream& progress() { return progress_; }
  std::ostream& terminal_errors() { return terminal_errors_; }
  // The last line the run wrote to std::cerr, without its "error: ".
  std::string LastError() const {
    std::vector<std::string> lines = absl::StrSplit(errors_.str(), '\n', absl::SkipWhitespace());
    if (lines.empty()) return "";
    absl::string_view last = absl::StripAsciiWhitespace(lines.back());
    absl::ConsumePrefix(&last, "error: ");
    return std::string(last);
  }

 private:
  std::ofstream file_;
  std::stringbuf errors_;
  std::streambuf* saved_out_;
  std::streambuf* saved_err_;
  std::ostream progress_;
  std::ostream terminal_errors_;
};

// Collects one run: the sites' validation AUC as rounds end (progress
// only), then each round's global model tested on the test split.
class CompareRunObserver : public SimObserver {
 public:
  CompareRunObserver(std::ostream& progress, int rounds, ModelRunner& runner)
      : progress_(progress), rounds_(rounds), runner_(runner) {}

  void OnRound(const v1::RoundStatus& round) override {
    progress_ << absl::StrFormat("    round %d/%d: validation AUC %s, %.1f s", round.round(),
                                 rounds_, FormatMetric(round.eval_metrics().auc()),
                                 round.finished_at() - round.started_at())
              << std::endl;
  }

  absl::Status OnRunDone(AdminClient& admin, const v1::RunStatus& run, const std::string& work_dir,
                         const std::string& data) override {
    std::vector<v1::RoundStatus> rounds(run.rounds().begin(), run.rounds().end());
    std::sort(rounds.begin(), rounds.end(), [](const v1::RoundStatus& a, const v1::RoundStatus& b) {
      return a.round() < b.round();
    });
    // One file, rewritten for each round: a run of many rounds of a large
    // model would otherwise fill the disk.
    const std::string path = work_dir + "/round-model.safetensors";
    ExportFormat format;
    format.kind = ModelFileKind::kSafetensors;
    for (const v1::RoundStatus& round : rounds) {
      int32_t exported = round.round();
      ASSIGN_OR_RETURN(TensorBundle weights,
                       admin.ExportModel(run.run_id(), round.round(), &exported));
      RETURN_IF_ERROR(WriteRunModelFile(run, exported, weights, path, format, &runner_, nullptr));
      absl::StatusOr<ModelEvaluation> test = runner_.EvaluateOnSplit(path, data, "test", 0.5);
      last_round_unusable_ = IsNaNPredictionError(test.status());
      if (last_round_unusable_) {
        // A model that predicts NaN (an attack the strategy let through) is
        // a result of the strategy: the round's AUC is undefined.
        if (unusable_model_.empty()) {
          unusable_model_ = absl::StrCat("round ", round.round(),
                                         "'s model on the test split: ", test.status().message());
        }
        result_.test_auc.push_back(kNaN);
        result_.test_accuracy.push_back(kNaN);
        continue;
      }
      if (!test.ok()) return test.status();
      if (test->segmentation.has_value()) {
        return absl::FailedPreconditionError(
            "sim --compare compares test AUC, and this run trains a segmentation model");
      }
      result_.test_auc.push_back(test->metrics.auc);
      result_.test_accuracy.push_back(test->metrics.accuracy);
    }
    std::remove(path.c_str());
    result_.run_id = run.run_id();
    result_.uploaded_bytes = UploadedBytes(run);
    result_.run_seconds = RunSeconds(run);
    std::vector<std::string> aucs;
    for (double auc : result_.test_auc) aucs.push_back(FormatMetric(auc));
    progress_ << "    test AUC per round: " << absl::StrJoin(aucs, " ")
              << absl::StrFormat("; uploaded %.2f MB; run %.1f s", result_.uploaded_bytes / 1e6,
                                 result_.run_seconds)
              << std::endl;
    run_done_ = true;
    return absl::OkStatus();
  }

  void OnSummary(const nlohmann::json& summary) override {
    summary_ = summary;
    const nlohmann::json& test = summary.value("test", nlohmann::json::object());
    result_.final_auc = NumberOr(test.value("auc", nlohmann::json()), kNaN);
    result_.final_accuracy = NumberOr(test.value("accuracy", nlohmann::json()), kNaN);
    result_.wall_seconds = NumberOr(summary.value("wall_seconds", nlohmann::json()), 0);
  }

  const CompareRun& result() const { return result_; }
  const nlohmann::json& summary() const { return summary_; }
  // Whether the last round's model predicts NaN, and why the first such
  // round's could not be tested ("" when none).
  bool final_model_unusable() const { return run_done_ && last_round_unusable_; }
  const std::string& unusable_model() const { return unusable_model_; }

 private:
  std::ostream& progress_;
  int rounds_;
  ModelRunner& runner_;
  CompareRun result_;
  nlohmann::json summary_;
  bool run_done_ = false;
  bool last_round_unusable_ = false;
  std::string unusable_model_;
};

// The setting every strategy shared, as sim reported it for a run.
void FillSetting(const nlohmann::json& summary, CompareSetting* setting) {
  setting->sites = summary.value("sites", 0);
  setting->rounds = summary.value("rounds", 0);
  setting->model = summary.value("model", "");
  setting->partition = summary.value("partition", "");
  setting->alpha = NumberOr(summary.value("alpha", nlohmann::json()), 0);
}

absl::Status WriteJsonFile(const nlohmann::json& json, const std::string& path) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

void AddCompareOptions(CLI::App* sim, CompareOptions* options) {
  sim->add_option("--compare", options->file,
                  "compare strategies: run each [[strategy]] of this TOML file (a name and sim "
                  "flags) on the same split and seeds; prints a table and writes compare.json "
                  "and compare.png (test AUC per round)");
  sim->add_option("--seeds", options->seeds,
                  "with --compare: comma-separated seeds, each splitting the data and seeding "
                  "every strategy's run, e.g. 0,1,2 (default: --seed)");
  sim->add_option("--seed-count", options->seed_count,
                  "with --compare: this many seeds from --seed on")
      ->check(CLI::Range(1, 1000));
  AddCheckedOption(sim, "--target-auc", options->target_auc,
                   "with --compare: report the first round whose test AUC reaches this",
                   CLI::Range(0.0, 1.0));
  sim->add_option("--out", options->out_dir,
                  "with --compare: write compare.json and compare.png here (default: the work "
                  "directory)");
}

std::string CompareFlagsWithoutFile(const CLI::App& sim, const CompareOptions& options) {
  if (!options.file.empty()) return "";
  for (const char* flag : {"--seeds", "--seed-count", "--target-auc", "--out"}) {
    if (sim.get_option(flag)->count() > 0) return absl::StrCat(flag, " needs --compare FILE");
  }
  return "";
}

int RunSimCompare(const CompareOptions& options, const SimDriver& driver) {
  auto entries = LoadCompareFile(options.file);
  if (!entries.ok()) return ReportUsageError(std::string(entries.status().message()));
  auto seeds = ResolveSeeds(options.seeds, options.seed_count, driver.seed);
  if (!seeds.ok()) return ReportUsageError(std::string(seeds.status().message()));
  for (const CompareEntry& entry : *entries) {
    if (absl::Status refused = driver.check_flags(entry.args); !refused.ok()) {
      return ReportUsageError(
          absl::StrCat(entry.where, ": strategy '", entry.name, "': ", refused.message()));
    }
  }
  std::unique_ptr<ModelRunner> runner = MakeModelRunner();
  if (runner == nullptr) return ReportError(TrainingUnavailableError("fedmi sim --compare"));
  auto work_dir = MakeWorkDir(driver.work_dir, "fedmi-compare");
  if (!work_dir.ok()) return ReportError(work_dir.status());
  const std::string out_dir = options.out_dir.empty() ? *work_dir : options.out_dir;
  if (auto made = MakeWorkDir(out_dir, "fedmi-compare"); !made.ok()) {
    return ReportError(made.status());
  }

  CompareSetting setting;
  setting.file = options.file;
  setting.seeds = *seeds;
  setting.target_auc = options.target_auc;
  std::vector<CompareStrategy> strategies(entries->size());
  for (size_t i = 0; i < entries->size(); ++i) strategies[i].entry = (*entries)[i];
  const size_t total = entries->size() * seeds->size();
  std::cout << "fedmi sim --compare " << options.file << ": " << entries->size() << " strategies x "
            << seeds->size() << " seed(s) (" << absl::StrJoin(*seeds, ", ") << ")\n  work dir "
            << *work_dir << std::endl;

  // Seed by seed, so that the strategies can be compared on the first seed
  // while later ones run.
  size_t started = 0;
  int failed_runs = 0;
  for (uint64_t seed : *seeds) {
    for (size_t i = 0; i < strategies.size(); ++i) {
      const CompareEntry& entry = strategies[i].entry;
      const std::string run_dir =
          absl::StrFormat("%s/%02d-%s-seed%d", *work_dir, i + 1, EntrySlug(entry.name), seed);
      std::error_code error;
      std::filesystem::create_directories(run_dir, error);
      const std::string log = run_dir + "/sim.log";
      std::cout << absl::StrFormat("[%d/%d] %s, seed %d (output in %s)", ++started, total,
                                   entry.name, seed, log)
                << std::endl;
      CoutToFile redirect(log);
      if (!redirect.ok()) return ReportError(absl::InternalError("cannot write " + log));
      CompareRunObserver observer(redirect.progress(), driver.rounds, *runner);
      const int code = driver.run(entry.args, seed, run_dir, observer);
      if (code == kExitUsage) {
        const std::string error = redirect.LastError();
        redirect.terminal_errors()
            << "error: strategy '" << entry.name
            << "': " << (error.empty() ? "fedmi sim refused its flags" : error)
            << " (output: " << log << ")" << std::endl;
        return code;
      }
      CompareRun run = observer.result();
      run.seed = seed;
      run.work_dir = run_dir;
      if (code != kExitOk) {
        // The comparison goes on: one strategy's collapse is what it is
        // there to show, and a failed run should not cost the others.
        // Ruined only when the final model predicts NaN; anything else
        // (a crash, a failed audit check) is a failure.
        const std::string error = redirect.LastError();
        if (observer.final_model_unusable()) {
          run.outcome = CompareOutcome::kModelUnusable;
          run.failure = observer.unusable_model();
        } else {
          run.outcome = CompareOutcome::kFailed;
          run.failure = error.empty() ? absl::StrCat("fedmi sim exited with code ", code) : error;
        }
        if (run.outcome == CompareOutcome::kFailed) ++failed_runs;
        redirect.progress() << "    " << CompareOutcomeName(run.outcome) << ": " << run.failure
                            << "\n    (output: " << log << ", processes' logs: " << run_dir
                            << "/logs)" << std::endl;
      }
      strategies[i].runs.push_back(std::move(run));
      // Only a completed run reports sim's summary.
      if (!observer.summary().is_object()) continue;
      if (setting.sites == 0) {
        FillSetting(observer.summary(), &setting);
      } else if (observer.summary().value("model", "") != setting.model) {
        // An entry may choose its own --model; the notes then name none.
        setting.model = "several models";
      }
    }
  }

  // With no completed run, sim reported no setting: the command line's.
  if (setting.rounds == 0) setting.rounds = driver.rounds;
  std::cout << "\n" << CompareTable(strategies, setting);
  nlohmann::json json = CompareJson(strategies, setting);
  const std::string json_path = out_dir + "/compare.json";
  const std::string chart_path = out_dir + "/compare.png";
  json["json_file"] = json_path;
  json["chart"] = chart_path;
  if (absl::Status status = WriteJsonFile(json, json_path); !status.ok())
    return ReportError(status);
  if (!driver.json_out.empty()) {
    if (absl::Status status = WriteJsonFile(json, driver.json_out); !status.ok()) {
      return ReportError(status);
    }
  }
  if (absl::Status status = WriteCompareChart(strategies, setting, chart_path); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "  wrote " << json_path << " and " << chart_path << std::endl;
  if (driver.json) PrintJsonLine(json);
  if (failed_runs > 0) {
    std::cerr << "error: " << failed_runs << " of " << total
              << " runs failed (listed under the table)" << std::endl;
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace fedmi::cli
