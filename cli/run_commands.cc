// `fedmi run start|status|list|abort|report` and `fedmi site list|revoke`
// (`run report` lives in run_report.cc).
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/run_report.h"
#include "cli/secagg_flags.h"
#include "client/ml/local_model.h"
#include "common/crypto/identity.h"
#include "common/crypto/sha256.h"
#include "common/runspec/run_spec_json.h"

namespace fedmi::cli {
namespace {

bool IsTerminalRunState(const std::string& state) {
  return state == "done" || state == "failed" || state == "aborted";
}

bool IsDroppedState(const std::string& state) { return state == "dropped" || state == "refused"; }

// A round's state is the run's phase while the round is live; its stored
// state ("committed", "evaluated") once its evaluation is in.
bool IsRoundLive(const std::string& state) {
  return state == "waiting-for-sites" || state == "initializing" || state == "training" ||
         state == "evaluating";
}

// ---- JSON ------------------------------------------------------------------

nlohmann::json MetricsJson(const v1::Metrics& metrics) {
  if (metrics.examples() == 0) return nullptr;  // not measured
  return {{"examples", metrics.examples()},
          {"loss", JsonNumber(metrics.loss())},
          {"auc", JsonNumber(metrics.auc())},
          {"accuracy", JsonNumber(metrics.accuracy())},
          {"sensitivity", JsonNumber(metrics.sensitivity())},
          {"specificity", JsonNumber(metrics.specificity())},
          {"f1", JsonNumber(metrics.f1())}};
}

// Sites report only loss and accuracy for local training.
nlohmann::json TrainMetricsJson(const v1::Metrics& metrics) {
  if (metrics.examples() == 0) return nullptr;
  return {{"examples", metrics.examples()},
          {"loss", JsonNumber(metrics.loss())},
          {"accuracy", JsonNumber(metrics.accuracy())}};
}

nlohmann::json SpecJson(const v1::RunSpec& spec) { return RunSpecToJson(spec); }

nlohmann::json RoundJson(const v1::RoundStatus& round) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& site : round.sites()) {
    sites.push_back({{"site", site.site()},
                     {"state", site.state()},
                     {"examples", site.examples()},
                     {"update_sha256", HexEncode(site.update_sha256())},
                     {"train", TrainMetricsJson(site.train_metrics())},
                     {"eval", MetricsJson(site.eval_metrics())},
                     {"detail", site.detail()}});
  }
  return {{"round", round.round()},
          {"state", round.state()},
          {"started_at", JsonNumber(round.started_at())},
          {"finished_at", JsonNumber(round.finished_at())},
          {"model_sha256", HexEncode(round.model_sha256())},
          {"eval", MetricsJson(round.eval_metrics())},
          {"sites", std::move(sites)}};
}

nlohmann::json RunJson(const v1::RunStatus& run) {
  nlohmann::json rounds = nlohmann::json::array();
  for (const auto& round : run.rounds()) rounds.push_back(RoundJson(round));
  return {{"run_id", run.run_id()},
          {"state", run.state()},
          {"phase", run.phase()},
          {"current_round", run.current_round()},
          {"completed_rounds", run.completed_rounds()},
          {"error", run.error()},
          {"created_at", JsonNumber(run.created_at())},
          {"spec_sha256", HexEncode(run.spec_sha256())},
          {"spec", SpecJson(run.spec())},
          {"rounds", std::move(rounds)}};
}

// ---- Text ------------------------------------------------------------------

void PrintRunHeader(std::ostream& out, const v1::RunStatus& run) {
  const v1::RunSpec& spec = run.spec();
  out << absl::StrFormat("run %d: %s", run.run_id(), run.state());
  if (!IsTerminalRunState(run.state())) {
    out << absl::StrFormat(", %s, round %d of %d", run.phase(), run.current_round(), spec.rounds());
  }
  out << absl::StrFormat(" (%d of %d rounds completed)\n", run.completed_rounds(), spec.rounds());
  out << absl::StrFormat(
      "  %s, %s, min %d sites%s, %d local epochs, batch %d, lr %g, %s, seed %d\n", spec.model(),
      spec.strategy(), spec.min_sites(),
      spec.max_sites() > 0 ? absl::StrCat(", max ", spec.max_sites()) : "", spec.local_epochs(),
      spec.batch_size(), spec.lr(), spec.optimizer(), spec.seed());
  out << "  secure aggregation " << DescribeSecAgg(spec) << "\n";
  out << "  created " << FormatUnixTime(run.created_at()) << "\n";
  if (!run.error().empty()) out << "  error: " << run.error() << "\n";
}

constexpr char kRoundRowFormat[] = "%5s  %-10s  %5s  %8s  %8s  %8s  %8s  %8s  %8s\n";

void PrintRoundTableHeader(std::ostream& out) {
  out << absl::StrFormat(kRoundRowFormat, "ROUND", "STATE", "SITES", "EXAMPLES", "LOSS", "AUC",
                         "ACC", "SENS", "SPEC");
}

void PrintRoundRow(std::ostream& out, const v1::RoundStatus& round) {
  int dropped = 0;
  for (const auto& site : round.sites()) dropped += IsDroppedState(site.state()) ? 1 : 0;
  const int total = round.sites_size();
  std::string sites =
      dropped == 0 ? absl::StrCat(total) : absl::StrCat(total - dropped, "/", total);
  const v1::Metrics& m = round.eval_metrics();
  const bool measured = m.examples() > 0;
  auto metric = [&](double value) { return measured ? FormatMetric(value) : std::string("-"); };
  out << absl::StrFormat(kRoundRowFormat, absl::StrCat(round.round()), round.state(), sites,
                         measured ? absl::StrCat(m.examples()) : "-", metric(m.loss()),
                         metric(m.auc()), metric(m.accuracy()), metric(m.sensitivity()),
                         metric(m.specificity()));
}

void PrintSiteRows(std::ostream& out, const v1::RoundStatus& round) {
  for (const auto& site : round.sites()) {
    const v1::Metrics& e = site.eval_metrics();
    out << absl::StrFormat(
        "       %-20s %-10s examples %-7d train loss %-8s eval auc %-8s acc %s\n", site.site(),
        site.state(), site.examples(),
        site.train_metrics().examples() > 0 ? FormatMetric(site.train_metrics().loss()) : "-",
        e.examples() > 0 ? FormatMetric(e.auc()) : "-",
        e.examples() > 0 ? FormatMetric(e.accuracy()) : "-");
  }
}

// Why sites left the round, e.g. "site-2 refused: site policy: ...". Shown
// without --sites too: a refusal by a site's policy is the operator's to see.
void PrintDroppedSites(std::ostream& out, const v1::RoundStatus& round) {
  for (const auto& site : round.sites()) {
    if (!IsDroppedState(site.state())) continue;
    // The coordinator's detail may already start with the state ("refused: ...").
    absl::string_view detail = site.detail();
    absl::ConsumePrefix(&detail, absl::StrCat(site.state(), ": "));
    out << "       " << site.site() << " " << site.state();
    if (!detail.empty()) out << ": " << detail;
    out << "\n";
  }
}

void PrintRunStatus(std::ostream& out, const v1::RunStatus& run, bool with_sites) {
  PrintRunHeader(out, run);
  if (run.rounds_size() == 0) {
    out << "  no rounds yet\n";
    return;
  }
  out << "\n";
  PrintRoundTableHeader(out);
  for (const auto& round : run.rounds()) {
    PrintRoundRow(out, round);
    if (with_sites) PrintSiteRows(out, round);
    PrintDroppedSites(out, round);
  }
}

// One line about what the run is doing now, for --watch.
std::string ProgressLine(const v1::RunStatus& run) {
  if (IsTerminalRunState(run.state())) {
    std::string line = absl::StrFormat("run %d %s after %d of %d rounds", run.run_id(), run.state(),
                                       run.completed_rounds(), run.spec().rounds());
    if (!run.error().empty()) absl::StrAppend(&line, ": ", run.error());
    return line;
  }
  std::string line = absl::StrFormat("run %d %s: %s, round %d of %d", run.run_id(), run.state(),
                                     run.phase(), run.current_round(), run.spec().rounds());
  for (const auto& round : run.rounds()) {
    if (round.round() != run.current_round() || !IsRoundLive(round.state())) continue;
    int uploaded = 0, evaluated = 0, dropped = 0;
    for (const auto& site : round.sites()) {
      uploaded += site.state() == "uploaded" ? 1 : 0;
      evaluated += site.state() == "evaluated" ? 1 : 0;
      dropped += IsDroppedState(site.state()) ? 1 : 0;
    }
    absl::StrAppend(&line, " (", round.sites_size(), " sites");
    if (uploaded > 0) absl::StrAppend(&line, ", ", uploaded, " uploaded");
    if (evaluated > 0) absl::StrAppend(&line, ", ", evaluated, " evaluated");
    if (dropped > 0) absl::StrAppend(&line, ", ", dropped, " dropped");
    absl::StrAppend(&line, ")");
  }
  return line;
}

// ---- Handlers --------------------------------------------------------------

struct StartOptions {
  std::string model = "cnn";
  std::string strategy = "fedavg";
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
};

int StartRun(const GlobalOptions& global, const StartOptions& options) {
  if (options.max_sites != 0 && options.max_sites < options.min_sites) {
    return ReportUsageError(absl::StrCat("--max-sites (", options.max_sites,
                                         ") must be 0 (every site) or at least --min-sites (",
                                         options.min_sites, ")"));
  }
  std::vector<std::string> models = ml::ListArchitectures();
  models.push_back("synthetic");
  if (std::find(models.begin(), models.end(), options.model) == models.end()) {
    return ReportUsageError(absl::StrCat("--model '", options.model, "' is unknown; use one of ",
                                         absl::StrJoin(models, ", ")));
  }
  if (options.model == "synthetic" && options.synthetic_params <= 0) {
    return ReportUsageError("--model synthetic needs --synthetic-params > 0");
  }
  v1::RunSpec spec;
  spec.set_model(options.model);
  spec.set_strategy(options.strategy);
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

  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto run_id = (*admin)->StartRun(spec);
  if (!run_id.ok()) return ReportError(run_id.status());
  if (global.json) {
    PrintJsonLine({{"run_id", *run_id}});
  } else {
    std::cout << "run " << *run_id << " started (secure aggregation " << DescribeSecAgg(spec) << ")"
              << std::endl;
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

// Streams updates until the run ends. Human-readable lines go to stdout, or
// to stderr with --json so that stdout holds only the final JSON object.
int WatchRunStatus(const GlobalOptions& global, int64_t run_id, bool with_sites) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  std::ostream& out = global.json ? std::cerr : std::cout;
  std::set<int32_t> printed_rounds;
  std::string last_progress;
  v1::RunStatus last;
  bool any = false;
  absl::Status status = (*admin)->WatchRun(run_id, [&](const v1::RunStatus& run) {
    if (!any) {
      PrintRunHeader(out, run);
      any = true;
    }
    for (const auto& round : run.rounds()) {
      if (IsRoundLive(round.state()) || printed_rounds.count(round.round()) > 0) continue;
      if (printed_rounds.empty()) {
        out << "\n";
        PrintRoundTableHeader(out);
      }
      PrintRoundRow(out, round);
      if (with_sites) PrintSiteRows(out, round);
      PrintDroppedSites(out, round);
      printed_rounds.insert(round.round());
    }
    std::string progress = ProgressLine(run);
    if (progress != last_progress) {
      out << "# " << progress << std::endl;
      last_progress = std::move(progress);
    }
    out.flush();
    last = run;
    return true;
  });
  if (!status.ok()) return ReportError(status);
  if (!any) return ReportError(absl::UnavailableError("the watch ended before any update"));
  if (global.json) PrintJsonLine(RunJson(last));
  if (!IsTerminalRunState(last.state())) {
    return ReportError(absl::UnavailableError(
        absl::StrCat("the watch ended while run ", run_id, " was still ", last.state())));
  }
  return last.state() == "done" ? kExitOk : kExitFailure;
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

// Whole days until `unix_seconds`, rounded down; negative once it has passed.
int64_t DaysUntil(double unix_seconds) {
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  return static_cast<int64_t>(std::floor((unix_seconds - now) / 86400));
}

// "2026-05-01 (364 d left)", "2026-05-01 (expired)", or "-" when the
// coordinator does not know (a site that only ever connected with --insecure).
std::string FormatCertificateExpiry(double unix_seconds) {
  if (unix_seconds <= 0) return "-";
  const std::string date = absl::FormatTime(
      "%Y-%m-%d", absl::FromUnixSeconds(static_cast<int64_t>(unix_seconds)), absl::UTCTimeZone());
  const int64_t days = DaysUntil(unix_seconds);
  return days < 0 ? absl::StrCat(date, " (expired)") : absl::StrCat(date, " (", days, " d left)");
}

nlohmann::json SiteJson(const v1::SiteInfo& site) {
  const nlohmann::json null = nullptr;
  const bool expiry_known = site.certificate_expires() > 0;
  const bool revoked = site.state() == "revoked";
  return {{"site", site.site()},
          {"state", site.state()},
          {"connected", site.connected()},
          {"last_seen", JsonNumber(site.last_seen())},
          {"train_examples", site.train_examples()},
          {"val_examples", site.val_examples()},
          {"registered_at", JsonNumber(site.registered_at())},
          {"certificate_expires", expiry_known ? JsonNumber(site.certificate_expires()) : null},
          {"certificate_days_left",
           expiry_known ? nlohmann::json(DaysUntil(site.certificate_expires())) : null},
          {"revoked_by", revoked ? nlohmann::json(site.revoked_by()) : null},
          {"revoked_at", revoked ? JsonNumber(site.revoked_at()) : null},
          {"revocation_reason", revoked ? nlohmann::json(site.revocation_reason()) : null}};
}

int ListSites(const GlobalOptions& global) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto sites = (*admin)->ListSites();
  if (!sites.ok()) return ReportError(sites.status());
  if (global.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& site : *sites) list.push_back(SiteJson(site));
    PrintJsonLine({{"sites", std::move(list)}});
    return kExitOk;
  }
  if (sites->empty()) {
    std::cout << "no sites have registered" << std::endl;
    return kExitOk;
  }
  constexpr char kFormat[] = "%-20s  %-7s  %-9s  %-36s  %-24s  %8s  %8s\n";
  std::cout << absl::StrFormat(kFormat, "SITE", "STATE", "CONNECTED", "LAST SEEN",
                               "CERTIFICATE EXPIRES", "TRAIN", "VAL");
  for (const auto& site : *sites) {
    std::string last_seen =
        site.last_seen() > 0
            ? absl::StrCat(FormatUnixTime(site.last_seen()), " (", FormatAgo(site.last_seen()), ")")
            : "never";
    std::cout << absl::StrFormat(
        kFormat, site.site(), site.state(), site.connected() ? "yes" : "no", last_seen,
        FormatCertificateExpiry(site.certificate_expires()), absl::StrCat(site.train_examples()),
        absl::StrCat(site.val_examples()));
    if (site.state() == "revoked") {
      std::cout << "  revoked by " << (site.revoked_by().empty() ? "-" : site.revoked_by())
                << " at " << FormatUnixTime(site.revoked_at()) << ": "
                << (site.revocation_reason().empty() ? "(no reason given)"
                                                     : site.revocation_reason())
                << "\n";
    }
  }
  std::cout << std::flush;
  return kExitOk;
}

int RevokeSite(const GlobalOptions& global, const std::string& site, const std::string& reason) {
  if (absl::Status valid = ValidatePartyName(site, "site name"); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  if (absl::Status status = (*admin)->RevokeSite(site, reason); !status.ok()) {
    return ReportError(status);
  }
  if (global.json) {
    PrintJsonLine({{"site", site}, {"state", "revoked"}, {"reason", reason}});
  } else {
    std::cout << "site '" << site
              << "' revoked; the coordinator refuses its certificate from now on" << std::endl;
  }
  return kExitOk;
}

void AddJsonFlag(CLI::App* command, GlobalOptions& global) {
  command->add_flag("--json", global.json,
                    "print one JSON object as the last line of stdout instead of text");
}

}  // namespace

void AddRunCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* run =
      app.add_subcommand("run", "Start, watch, list, abort and report on federated training runs");
  run->require_subcommand(1);

  auto start_options = std::make_shared<StartOptions>();
  CLI::App* start = run->add_subcommand(
      "start", "Start a training run; prints its id. Sites join when min-sites are connected.");
  start->add_option("--model", start_options->model, "model architecture: cnn, resnet18, synthetic")
      ->capture_default_str();
  start
      ->add_option("--strategy", start_options->strategy,
                   "aggregation strategy: fedavg (example-weighted mean), median "
                   "(coordinate-wise; not with secure aggregation)")
      ->capture_default_str();
  start->add_option("--rounds", start_options->rounds, "number of federated rounds")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  start
      ->add_option("--min-sites", start_options->min_sites,
                   "connected sites needed before a round opens")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  start
      ->add_option("--max-sites", start_options->max_sites,
                   "most sites per round; 0 means every connected site")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  start
      ->add_option("--local-epochs", start_options->local_epochs,
                   "epochs each site trains per round")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  start->add_option("--batch-size", start_options->batch_size, "local training batch size")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  start->add_option("--lr", start_options->lr, "local learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  start->add_option("--optimizer", start_options->optimizer, "local optimizer")
      ->check(CLI::IsMember({"adam", "sgd"}))
      ->capture_default_str();
  start
      ->add_option("--seed", start_options->seed,
                   "seed for initial weights and every site's shuffling")
      ->capture_default_str();
  start->add_option("--num-classes", start_options->num_classes, "number of label classes")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  start
      ->add_option("--round-timeout", start_options->round_timeout_s,
                   "seconds a round may take before slow sites are dropped")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  start
      ->add_option("--synthetic-params", start_options->synthetic_params,
                   "parameter count of --model synthetic (benchmarks)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  start
      ->add_option("--round-retries", start_options->round_retries,
                   "times a failed round (too few sites, a secure-aggregation violation) is "
                   "started afresh before the run fails")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  AddSecAggOptions(start, &start_options->secagg);
  AddJsonFlag(start, global);
  start->callback([&global, &result, start_options] {
    RunCommand(result, [&] { return StartRun(global, *start_options); });
  });

  auto status_run = std::make_shared<int64_t>(0);
  auto status_watch = std::make_shared<bool>(false);
  auto status_sites = std::make_shared<bool>(false);
  CLI::App* status = run->add_subcommand(
      "status", "Show a run's state and per-round evaluation metrics (optionally follow it)");
  status->add_option("RUN", *status_run, "run id")->required()->check(CLI::PositiveNumber);
  status->add_flag("--watch", *status_watch,
                   "follow the run until it ends, printing each round as it completes; exits 1 "
                   "if the run fails or is aborted");
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

void AddSiteCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* site =
      app.add_subcommand("site", "Inspect the sites registered with the coordinator; revoke one");
  site->require_subcommand(1);
  CLI::App* list = site->add_subcommand(
      "list",
      "List sites: state (active/revoked), connection, last contact, certificate expiry, "
      "train/val example counts, and who revoked a revoked site, when and why");
  AddJsonFlag(list, global);
  list->callback([&global, &result] { RunCommand(result, [&] { return ListSites(global); }); });

  auto revoke_site = std::make_shared<std::string>();
  auto revoke_reason = std::make_shared<std::string>();
  CLI::App* revoke = site->add_subcommand(
      "revoke",
      "Revoke a site at once (admin only): its stream is closed, it leaves running rounds and "
      "its certificate is refused from then on, across coordinator restarts");
  revoke->add_option("NAME", *revoke_site, "the site's name (its certificate's CN)")->required();
  revoke->add_option("--reason", *revoke_reason, "why, recorded with who revoked it and when");
  AddJsonFlag(revoke, global);
  revoke->callback([&global, &result, revoke_site, revoke_reason] {
    RunCommand(result, [&] { return RevokeSite(global, *revoke_site, *revoke_reason); });
  });
}

}  // namespace fedmi::cli
