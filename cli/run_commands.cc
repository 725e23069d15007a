// `fedmi run start|status|list|abort|report` (`run report` lives in
// run_report_command.cc, the status text in run_status_text.cc).
#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/dp_flags.h"
#include "cli/optimizer_flags.h"
#include "cli/recipe_flags.h"
#include "cli/run_report.h"
#include "cli/run_status_text.h"
#include "cli/secagg_flags.h"
#include "cli/strategy_flags.h"
#include "cli/transfer_flags.h"
#include "cli/watch_table.h"
#include "common/base/names.h"
#include "common/base/terminal_text.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_names.h"
#include "common/runspec/model_task.h"

namespace fedmi::cli {
namespace {

// The terminal's width on `fd`; 0 when unknown.
int TerminalColumns(int fd) {
  struct winsize size {};
  if (ioctl(fd, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

struct StartOptions {
  std::string model = kDefaultModel;
  int rounds = 5;
  int min_sites = 1;
  int max_sites = 0;
  int local_epochs = 1;
  int batch_size = 64;
  double lr = 1e-3;
  uint64_t seed = 0;
  std::string optimizer = "adam";
  int num_classes = 2;
  double round_timeout_s = 3600;
  int64_t synthetic_params = 0;
  int round_retries = 0;
  SecAggFlags secagg;
  DpFlags dp;
  RecipeFlags recipe;
  TransferFlags transfer;
  StrategyFlags strategy;
  OptimizerFlags optimization;
};

int StartRun(const GlobalOptions& global, const StartOptions& options, ModelRunner* runner) {
  if (options.max_sites != 0 && options.max_sites < options.min_sites) {
    return ReportUsageError(absl::StrCat("--max-sites (", options.max_sites,
                                         ") must be 0 (every site) or at least --min-sites (",
                                         options.min_sites, ")"));
  }
  if (!IsRunModel(options.model)) {
    return ReportUsageError(absl::StrCat("--model '", options.model, "' is unknown; use one of ",
                                         absl::StrJoin(RunModelNames(), ", ")));
  }
  if (options.model == kSyntheticModel && options.synthetic_params <= 0) {
    return ReportUsageError("--model synthetic needs --synthetic-params > 0");
  }
  v1::RunSpec spec;
  spec.set_model(options.model);
  ApplyStrategyFlags(options.strategy, &spec);
  ApplyOptimizerFlags(options.optimization, &spec);
  spec.set_rounds(options.rounds);
  spec.set_min_sites(options.min_sites);
  spec.set_max_sites(options.max_sites);
  spec.set_local_epochs(options.local_epochs);
  spec.set_batch_size(options.batch_size);
  spec.set_lr(options.lr);
  spec.set_seed(options.seed);
  spec.set_optimizer(options.optimizer);
  spec.set_num_classes(options.num_classes);
  spec.set_round_timeout_s(options.round_timeout_s);
  spec.set_synthetic_params(options.synthetic_params);
  spec.set_max_round_retries(options.round_retries);
  if (absl::Status status = ApplySecAggFlags(options.secagg, options.min_sites, &spec);
      !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }
  if (absl::Status status = ApplyDpFlags(options.dp, &spec); !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }
  if (absl::Status status = ApplyRecipeFlags(options.recipe, &spec); !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }

  if (absl::Status status = CheckTransferFlags(options.transfer, spec); !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }

  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  // With --json, stdout holds only the final object.
  if (absl::Status status = ApplyTransferFlags(options.transfer, **admin, runner,
                                               global.json ? std::cerr : std::cout, &spec);
      !status.ok()) {
    return ReportError(status);
  }
  auto run_id = (*admin)->StartRun(spec);
  if (!run_id.ok()) return ReportError(run_id.status());
  if (global.json) {
    PrintJsonLine({{"run_id", *run_id}});
    return kExitOk;
  }
  // The spec as the coordinator completed it (DP noise and sample rate, the
  // encoding's clip for distributed DP noise).
  auto started = (*admin)->GetRun(*run_id);
  if (!started.ok()) return ReportError(started.status());
  const v1::RunSpec& stored = started->spec();
  std::cout << "run " << *run_id << " started (secure aggregation " << DescribeSecAgg(stored) << ")"
            << "\ntraining: " << DescribeRecipe(stored) << std::endl;
  if (const std::string optimization = DescribeOptimization(stored); !optimization.empty()) {
    std::cout << "optimization: " << optimization << std::endl;
  }
  if (HasDifferentialPrivacy(stored)) {
    std::cout << "differential privacy: " << DescribeDp(stored.dp()) << std::endl;
    // A given --noise-multiplier may be too small for every planned round.
    auto affordable = privacy::RoundsWithinBudget(stored.dp(), stored.rounds());
    if (affordable.ok() && *affordable < stored.rounds()) {
      std::cout << "warning: the budget affords " << *affordable << " of " << stored.rounds()
                << " rounds at this noise; the run will stop after round " << *affordable
                << " (privacy budget exhausted)" << std::endl;
    }
  }
  return kExitOk;
}

int ShowRunStatus(const GlobalOptions& global, int64_t run_id, bool with_sites) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto run = (*admin)->GetRun(run_id);
  if (!run.ok()) return ReportError(run.status());
  if (global.json) {
    PrintJsonLine(RunJson(*run));
  } else {
    PrintRunStatus(std::cout, *run, with_sites);
  }
  return kExitOk;
}

// Streams updates until the run ends. Human-readable text goes to stdout, or
// to stderr with --json so that stdout holds only the final JSON object. On
// a terminal the compact table (cli/watch_table.h) is redrawn in place;
// elsewhere rounds are printed line by line as they settle, with a "# "
// line whenever the progress changes.
int WatchRunStatus(const GlobalOptions& global, int64_t run_id, bool with_sites) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  std::ostream& out = global.json ? std::cerr : std::cout;
  const int fd = global.json ? STDERR_FILENO : STDOUT_FILENO;
  const bool terminal = isatty(fd) == 1;
  std::set<int32_t> printed_rounds;
  std::string last_progress;
  int drawn_lines = 0;
  v1::RunStatus last;
  bool any = false;
  absl::Status status = (*admin)->WatchRun(run_id, [&](const v1::RunStatus& run) {
    if (!any && !terminal) {
      PrintRunHeader(out, run);
      out << "\n";
    }
    any = true;
    std::string progress = ProgressLine(run);
    if (terminal) {
      // The header too, so that its state and round stay current.
      std::ostringstream header;
      PrintRunHeader(header, run);
      std::vector<std::string> lines = absl::StrSplit(header.str(), '\n');
      std::vector<std::string> table = WatchTableLines(run);
      lines.insert(lines.end(), table.begin(), table.end());
      lines.push_back("# " + progress);
      const int columns = TerminalColumns(fd);
      out << RedrawPrefix(drawn_lines);
      for (const std::string& line : lines) out << FitToColumns(line, columns) << "\n";
      drawn_lines = static_cast<int>(lines.size());
    } else {
      for (const v1::RoundStatus* round : SettledRounds(run, printed_rounds)) {
        if (printed_rounds.empty()) PrintRoundTableHeader(out, IsSegmentationRun(run.spec()));
        PrintRoundRows(out, *round, with_sites, IsSegmentationRun(run.spec()));
        printed_rounds.insert(round->round());
      }
      if (progress != last_progress) out << "# " << progress << "\n";
    }
    last_progress = std::move(progress);
    out.flush();
    last = run;
    return true;
  });
  if (!status.ok()) return ReportError(status);
  if (!any) return ReportError(absl::UnavailableError("the watch ended before any update"));
  if (!terminal) {
    if (std::string sparkline = MetricSparklineLine(last); !sparkline.empty()) {
      out << sparkline << std::endl;
    }
  }
  if (global.json) PrintJsonLine(RunJson(last));
  if (!IsTerminalRunState(last.state())) {
    return ReportError(absl::UnavailableError(
        absl::StrCat("the watch ended while run ", run_id, " was still ", last.state())));
  }
  return ParseRunState(last.state()) == RunState::kDone ? kExitOk : kExitFailure;
}

int ListRuns(const GlobalOptions& global) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto runs = (*admin)->ListRuns();
  if (!runs.ok()) return ReportError(runs.status());
  if (global.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& run : *runs) {
      list.push_back({{"run_id", run.run_id()},
                      {"state", run.state()},
                      {"phase", run.phase()},
                      {"model", run.spec().model()},
                      {"strategy", run.spec().strategy()},
                      {"current_round", run.current_round()},
                      {"completed_rounds", run.completed_rounds()},
                      {"rounds", run.spec().rounds()},
                      {"created_at", JsonNumber(run.created_at())},
                      {"error", run.error()}});
    }
    PrintJsonLine({{"runs", std::move(list)}});
    return kExitOk;
  }
  if (runs->empty()) {
    std::cout << "no runs" << std::endl;
    return kExitOk;
  }
  constexpr char kFormat[] = "%5s  %-8s  %-17s  %-9s  %-10s  %-23s  %s\n";
  std::cout << absl::StrFormat(kFormat, "RUN", "STATE", "PHASE", "ROUNDS", "MODEL", "CREATED",
                               "ERROR");
  for (const auto& run : *runs) {
    std::cout << absl::StrFormat(kFormat, absl::StrCat(run.run_id()), run.state(), run.phase(),
                                 absl::StrCat(run.completed_rounds(), "/", run.spec().rounds()),
                                 run.spec().model(), FormatUnixTime(run.created_at()), run.error());
  }
  return kExitOk;
}

int AbortRun(const GlobalOptions& global, int64_t run_id, const std::string& reason) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  if (absl::Status status = (*admin)->AbortRun(run_id, reason); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "run " << run_id << " aborted" << std::endl;
  return kExitOk;
}

}  // namespace

void AddRunCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                    std::shared_ptr<ModelRunner> runner) {
  CLI::App* run =
      app.add_subcommand("run", "Start, watch, list, abort and report on federated training runs");
  run->require_subcommand(1);

  auto start_options = std::make_shared<StartOptions>();
  CLI::App* start = run->add_subcommand(
      "start", "Start a training run; prints its id. Sites join when min-sites are connected.");
  start
      ->add_option("--model", start_options->model,
                   absl::StrCat("model architecture: ", absl::StrJoin(RunModelNames(), ", ")))
      ->capture_default_str();
  AddStrategyOptions(start, &start_options->strategy);
  AddOptimizerOptions(start, &start_options->optimization);
  AddCheckedOption(start, "--rounds", start_options->rounds, "number of federated rounds",
                   CLI::Range(1, 100000));
  AddCheckedOption(start, "--min-sites", start_options->min_sites,
                   "connected sites needed before a round opens", CLI::Range(1, 100000));
  AddCheckedOption(start, "--max-sites", start_options->max_sites,
                   "most sites per round; 0 means every connected site", CLI::Range(0, 100000));
  AddCheckedOption(start, "--local-epochs", start_options->local_epochs,
                   "epochs each site trains per round", CLI::Range(1, 1000));
  AddCheckedOption(start, "--batch-size", start_options->batch_size, "local training batch size",
                   CLI::Range(1, 65536));
  AddCheckedOption(start, "--lr", start_options->lr, "local learning rate", CLI::PositiveNumber);
  AddCheckedOption(start, "--optimizer", start_options->optimizer, "local optimizer",
                   CLI::IsMember({"adam", "sgd"}));
  start
      ->add_option("--seed", start_options->seed,
                   "seed for initial weights and every site's shuffling")
      ->capture_default_str();
  AddCheckedOption(start, "--num-classes", start_options->num_classes, "number of label classes",
                   CLI::Range(2, 100000));
  AddCheckedOption(start, "--round-timeout", start_options->round_timeout_s,
                   "seconds a round may take before slow sites are dropped", CLI::PositiveNumber);
  AddCheckedOption(start, "--synthetic-params", start_options->synthetic_params,
                   "parameter count of --model synthetic (benchmarks)", CLI::NonNegativeNumber);
  AddCheckedOption(start, "--round-retries", start_options->round_retries,
                   "times a failed round (too few sites, a secure-aggregation violation) is "
                   "started afresh before the run fails",
                   CLI::Range(0, 100));
  AddSecAggOptions(start, &start_options->secagg);
  AddDpOptions(start, &start_options->dp);
  AddRecipeOptions(start, &start_options->recipe);
  AddTransferOptions(start, &start_options->transfer);
  AddJsonFlag(start, global);
  start->callback([&global, &result, start_options, runner] {
    RunCommand(result, [&] { return StartRun(global, *start_options, runner.get()); });
  });

  auto status_run = std::make_shared<int64_t>(0);
  auto status_watch = std::make_shared<bool>(false);
  auto status_sites = std::make_shared<bool>(false);
  CLI::App* status = run->add_subcommand(
      "status", "Show a run's state and per-round evaluation metrics (optionally follow it)");
  status->add_option("RUN", *status_run, "run id")->required()->check(CLI::PositiveNumber);
  status->add_flag("--watch", *status_watch,
                   "follow the run until it ends: on a terminal a live table redrawn in place "
                   "(each site's state per round, a sparkline of the validation AUC), otherwise "
                   "each round as it completes; exits 1 if the run fails or is aborted");
  status->add_flag("--sites", *status_sites, "also show each site's part in every round");
  AddJsonFlag(status, global);
  status->callback([&global, &result, status_run, status_watch, status_sites] {
    RunCommand(result, [&] {
      return *status_watch ? WatchRunStatus(global, *status_run, *status_sites)
                           : ShowRunStatus(global, *status_run, *status_sites);
    });
  });

  CLI::App* list = run->add_subcommand("list", "List every run the coordinator knows");
  AddJsonFlag(list, global);
  list->callback([&global, &result] { RunCommand(result, [&] { return ListRuns(global); }); });

  auto abort_run = std::make_shared<int64_t>(0);
  auto abort_reason = std::make_shared<std::string>();
  CLI::App* abort = run->add_subcommand("abort", "Abort a pending or running run");
  abort->add_option("RUN", *abort_run, "run id")->required()->check(CLI::PositiveNumber);
  abort->add_option("--reason", *abort_reason, "why, recorded with the run");
  abort->callback([&global, &result, abort_run, abort_reason] {
    RunCommand(result, [&] { return AbortRun(global, *abort_run, *abort_reason); });
  });

  AddRunReportCommand(run, global, result);
}

}  // namespace fedmi::cli
