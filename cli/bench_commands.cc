// `fedmi bench round`: rounds of real processes (cli/local_federation.h)
// with the synthetic model and no training, timed, with the coordinator's
// peak RSS. A FedAvg run's aggregate is checked against FedAvg computed
// here: bit for bit in plaintext, within the documented error bound with
// secure aggregation. Other strategies and server optimizers (--strategy,
// --server-optimizer) are timed and measured only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/local_federation.h"
#include "cli/optimizer_flags.h"
#include "cli/run_progress.h"
#include "cli/secagg_flags.h"
#include "cli/strategy_flags.h"
#include "common/base/env.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/http/http_listener.h"
#include "common/runspec/strategy_names.h"
#include "common/secagg/secagg.h"
#include "common/tensor/synthetic_model.h"

namespace fedmi::cli {
namespace {

struct BenchOptions {
  int sites = 4;
  int64_t params = 1000000;
  int rounds = 3;
  std::string work_dir;
  bool json = false;
  StrategyFlags strategy;
  OptimizerFlags optimization;
  SecAggFlags secagg = [] {
    SecAggFlags off;
    off.mode = "off";
    return off;
  }();
};

std::vector<float> AsFloats(const TensorBundle& bundle) {
  std::vector<float> values(bundle.body.size() / sizeof(float));
  std::memcpy(values.data(), bundle.body.data(), values.size() * sizeof(float));
  return values;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

constexpr absl::string_view kCoordinatorPhases = "fedmi_coordinator_phase_seconds_total";
constexpr absl::string_view kSitePhases = "fedmi_client_round_phase_seconds_total";

// `family`{phase="..."} by phase, summed over the /metrics of the processes
// listening on `ports` (loopback).
using PhaseSeconds = std::map<std::string, double>;
absl::StatusOr<PhaseSeconds> ScrapePhaseSeconds(const std::vector<int>& ports,
                                                absl::string_view family) {
  const std::string prefix = absl::StrCat(family, "{phase=\"");
  PhaseSeconds seconds;
  for (int port : ports) {
    if (port == 0) return absl::UnavailableError("no --http port");
    ASSIGN_OR_RETURN(http::Response response, http::Get("127.0.0.1", port, "/metrics"));
    if (response.status != 200) {
      return absl::UnavailableError(
          absl::StrCat("/metrics on port ", port, " answered HTTP ", response.status));
    }
    std::istringstream lines(response.body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      const size_t quote = line.find('"', prefix.size());
      const size_t space = line.find(' ', quote == std::string::npos ? line.size() : quote);
      if (space == std::string::npos) continue;
      seconds[line.substr(prefix.size(), quote - prefix.size())] +=
          std::strtod(line.c_str() + space + 1, nullptr);
    }
  }
  return seconds;
}

// What `family` added between two scrapes, divided by `divisor`; empty, with
// a note on stderr, when either scrape failed.
PhaseSeconds PhaseDelta(const absl::StatusOr<PhaseSeconds>& before,
                        const absl::StatusOr<PhaseSeconds>& after, double divisor,
                        absl::string_view whose) {
  PhaseSeconds delta;
  if (!before.ok() || !after.ok()) {
    std::cerr << "fedmi bench: no per-phase breakdown for the " << whose << ": "
              << (before.ok() ? after.status() : before.status()).message() << "\n";
    return delta;
  }
  for (const auto& [phase, seconds] : *after) {
    const auto was = before->find(phase);
    delta[phase] = (seconds - (was == before->end() ? 0 : was->second)) / divisor;
  }
  return delta;
}

// One timed run of the synthetic model and how far its aggregate is from
// FedAvg computed here.
struct BenchRun {
  std::vector<double> round_seconds;
  double median_round_seconds = 0;
  double coordinator_cpu_seconds = -1;
  int64_t mismatches = 0;  // elements not bit-identical to FedAvg
  int64_t first_mismatch = -1;
  double max_abs_error = 0;  // against FedAvg
  bool size_ok = false;
  // The coordinator's audit log during the run: entries appended and the wall
  // time it spent appending them (hash, sign, one SQLite transaction each).
  int64_t audit_entries = 0;
  double audit_seconds = 0;
  double audit_share = 0;  // of the run's total round time
  // The coordinator's thread-seconds per round in each phase of the update
  // path (coordinator/phase_times.h); empty when /metrics could not be read.
  PhaseSeconds phase_seconds_per_round;
  // A site's wall seconds per round in each phase of its train task
  // (client/training_progress.h RoundPhaseTimes), the mean over the sites.
  PhaseSeconds site_phase_seconds_per_round;
};

absl::StatusOr<BenchRun> TimeBenchRun(LocalFederation& federation, const BenchOptions& options,
                                      const std::vector<int64_t>& site_indices,
                                      const v1::RunSpec& spec, const char* label, int http_port,
                                      const std::vector<int>& site_ports) {
  const double cpu_before = federation.coordinator().CpuSeconds().value_or(0);
  const auto phases_before = ScrapePhaseSeconds({http_port}, kCoordinatorPhases);
  const auto site_phases_before = ScrapePhaseSeconds(site_ports, kSitePhases);
  ASSIGN_OR_RETURN(v1::AuditInfo audit_before, federation.admin().GetAuditInfo());
  ASSIGN_OR_RETURN(int64_t run_id, federation.admin().StartRun(spec));
  BenchRun result;
  RunProgressWriter progress(&std::cerr, StderrBarFits(), absl::StrCat("fedmi bench: ", label),
                             StderrColumns());
  auto final_status = WatchRunToEnd(
      federation.admin(), run_id,
      [&](const v1::RoundStatus& round) {
        const double seconds = round.finished_at() - round.started_at();
        result.round_seconds.push_back(seconds);
        progress.Clear();
        std::cout << absl::StrFormat("  %s round %d/%d aggregated in %.2f s", label, round.round(),
                                     options.rounds, seconds)
                  << std::endl;
      },
      [&](const v1::RunStatus& run) { progress.Update(run); });
  progress.Clear();
  RETURN_IF_ERROR(final_status.status());
  if (ParseRunState(final_status->state()) != RunState::kDone) {
    return absl::InternalError(
        absl::StrCat(label, " run ended ", final_status->state(), ": ", final_status->error()));
  }
  result.median_round_seconds = Median(result.round_seconds);
  ASSIGN_OR_RETURN(v1::AuditInfo audit_after, federation.admin().GetAuditInfo());
  result.audit_entries = audit_after.appended() - audit_before.appended();
  result.audit_seconds = audit_after.append_seconds() - audit_before.append_seconds();
  double total_round_seconds = 0;
  for (double seconds : result.round_seconds) total_round_seconds += seconds;
  result.audit_share = result.audit_seconds / std::max(1e-9, total_round_seconds);
  auto cpu = federation.coordinator().CpuSeconds();
  if (cpu.ok()) result.coordinator_cpu_seconds = *cpu - cpu_before;
  result.phase_seconds_per_round =
      PhaseDelta(phases_before, ScrapePhaseSeconds({http_port}, kCoordinatorPhases), options.rounds,
                 "coordinator");
  result.site_phase_seconds_per_round = PhaseDelta(
      site_phases_before, ScrapePhaseSeconds(site_ports, kSitePhases),
      static_cast<double>(options.rounds) * std::max<size_t>(1, site_ports.size()), "sites");

  int32_t exported_round = 0;
  ASSIGN_OR_RETURN(TensorBundle exported,
                   federation.admin().ExportModel(run_id, -1, &exported_round));
  std::vector<float> expected = AsFloats(SyntheticInitialModel(options.params));
  for (int r = 0; r < options.rounds; ++r) {
    expected = ExpectedSyntheticAggregate(expected, site_indices);
  }
  const std::vector<float> actual = AsFloats(exported);
  result.size_ok = actual.size() == expected.size();
  for (size_t i = 0; i < expected.size() && i < actual.size(); ++i) {
    if (std::memcmp(&expected[i], &actual[i], sizeof(float)) != 0) {
      if (result.first_mismatch < 0) result.first_mismatch = static_cast<int64_t>(i);
      ++result.mismatches;
    }
    result.max_abs_error = std::max<double>(result.max_abs_error,
                                            std::abs(static_cast<double>(actual[i]) - expected[i]));
  }
  return result;
}

// The documented bound for `rounds` securely aggregated rounds of the
// synthetic sites: per round the codec's bound over the sum of weights, plus
// float32 rounding of the result.
absl::StatusOr<double> SecAggBound(const v1::RunSpec& spec, int sites, int rounds) {
  secagg::QuantizationOptions quantization;
  quantization.clip = spec.secagg().clip() > 0 ? spec.secagg().clip() : 1.0;
  quantization.max_sites = sites;
  ASSIGN_OR_RETURN(secagg::FixedPointCodec codec, secagg::FixedPointCodec::Create(quantization));
  double total_weight = 0;
  for (int k = 1; k <= sites; ++k) {
    total_weight += static_cast<double>(SyntheticExamples(k)) / spec.secagg().max_examples();
  }
  // The synthetic weights stay below 8 in magnitude: 2^-20 covers float32
  // rounding of each round's result.
  return rounds * (codec.ErrorBound(sites) / total_weight + std::ldexp(1.0, -20));
}

int RunBenchRound(const GlobalOptions& global, BenchOptions options) {
  if (options.sites < 1) return ReportUsageError("--sites must be at least 1");
  if (options.rounds < 1) return ReportUsageError("--rounds must be at least 1");
  if (options.params < 1) return ReportUsageError("--params must be at least 1");
  v1::RunSpec secure_spec;
  secure_spec.set_model("synthetic");
  secure_spec.set_synthetic_params(options.params);
  secure_spec.set_rounds(options.rounds);
  secure_spec.set_min_sites(options.sites);
  ApplyStrategyFlags(options.strategy, &secure_spec);
  ApplyOptimizerFlags(options.optimization, &secure_spec);
  // Only plain FedAvg has an aggregate this command can recompute.
  const bool checks_fedavg =
      options.strategy.strategy == kFedAvgStrategy && !secure_spec.has_server_optimizer();
  if (absl::Status status = ApplySecAggFlags(options.secagg, options.sites, &secure_spec);
      !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }
  const bool secure = secure_spec.secure_aggregation();
  if (secure && secure_spec.secagg().max_examples() == 0) {
    // Synthetic sites have no data to declare; their weights must still be
    // the FedAvg ones.
    secure_spec.mutable_secagg()->set_max_examples(SyntheticExamples(options.sites));
  }
  if (secure && global.insecure) {
    return ReportUsageError("--secure-aggregation on needs mutual TLS; drop --insecure");
  }
  v1::RunSpec plain_spec = secure_spec;
  plain_spec.set_secure_aggregation(false);
  plain_spec.clear_secagg();

  auto work_dir = MakeWorkDir(options.work_dir, "fedmi-bench");
  if (!work_dir.ok()) return ReportError(work_dir.status());
  const uint64_t model_bytes = static_cast<uint64_t>(options.params) * sizeof(float);
  std::cout << absl::StrFormat("fedmi bench round: %d sites, %d params (%.1f MB), %d rounds%s\n",
                               options.sites, options.params, model_bytes / 1e6, options.rounds,
                               secure ? ", plaintext then secure aggregation" : "")
            << "  work dir " << *work_dir << std::endl;

  // The coordinator's /metrics on loopback gives the per-phase breakdown.
  const int http_port = FreeLoopbackPort();
  std::vector<std::string> coordinator_flags;
  if (http_port != 0) coordinator_flags = {"--http", absl::StrCat("127.0.0.1:", http_port)};
  auto started = LocalFederation::Start(*work_dir, global.insecure, coordinator_flags);
  if (!started.ok()) return ReportError(started.status());
  LocalFederation& federation = **started;
  std::vector<int64_t> site_indices;
  // Each site's /metrics on loopback gives its phases. The site binds a
  // port of its own choosing: one picked here could be taken meanwhile by
  // another site's connection (it was, at 100 sites).
  std::vector<std::string> site_port_files;
  for (int k = 1; k <= options.sites; ++k) {
    SiteOptions site;
    site.name = absl::StrCat("site-", k);
    site.threads = 1;
    site_port_files.push_back(absl::StrCat(*work_dir, "/", site.name, ".http-port"));
    site.extra_flags = {"--http", "127.0.0.1:0", "--http-port-file", site_port_files.back()};
    if (absl::Status status = federation.AddSite(site); !status.ok()) return ReportError(status);
    site_indices.push_back(k);
  }
  if (absl::Status status = federation.WaitForSites(absl::Seconds(120)); !status.ok()) {
    return ReportError(status);
  }
  // Written before a site connects; 0 (no breakdown) where one is unreadable.
  std::vector<int> site_ports;
  for (const std::string& path : site_port_files) {
    int port = 0;
    auto text = ReadFileToString(path);
    if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &port)) port = 0;
    site_ports.push_back(port);
  }
  auto plain = TimeBenchRun(federation, options, site_indices, plain_spec, "plaintext", http_port,
                            site_ports);
  if (!plain.ok()) return ReportError(plain.status());
  const bool exact = checks_fedavg && plain->size_ok && plain->mismatches == 0;
  absl::StatusOr<BenchRun> masked = absl::UnknownError("not run");
  double bound = 0;
  if (secure) {
    masked = TimeBenchRun(federation, options, site_indices, secure_spec, "secure", http_port,
                          site_ports);
    if (!masked.ok()) return ReportError(masked.status());
    auto computed = SecAggBound(secure_spec, options.sites, options.rounds);
    if (!computed.ok()) return ReportError(computed.status());
    bound = *computed;
  }
  const bool within_bound =
      !secure || !checks_fedavg || (masked->size_ok && masked->max_abs_error <= bound);
  auto peak_rss = federation.coordinator().PeakRssBytes();
  const int64_t rss = peak_rss.ok() ? *peak_rss : -1;
  const int64_t site_rss = federation.SitePeakRssBytes().value_or(-1);

  // Model payload on the wire per run: the initial upload, then per round
  // one download and one upload per site (synthetic sites skip evaluation).
  const uint64_t payload_bytes =
      model_bytes + static_cast<uint64_t>(options.rounds) * options.sites * 2 * model_bytes;
  std::cout << absl::StrFormat(
      "  plaintext: median round %.3f s; coordinator CPU %.1f s; audit log %d entries in "
      "%.1f ms (%.2f%% of round time); aggregate %s\n",
      plain->median_round_seconds, plain->coordinator_cpu_seconds, plain->audit_entries,
      plain->audit_seconds * 1e3, plain->audit_share * 100,
      !checks_fedavg ? absl::StrCat("not checked (", options.strategy.strategy,
                                    secure_spec.has_server_optimizer()
                                        ? absl::StrCat(", ", secure_spec.server_optimizer().kind())
                                        : "",
                                    ")")
      : exact        ? "exact (bit-identical to FedAvg)"
                     : absl::StrCat("WRONG: ", plain->mismatches, " elements differ, first at ",
                                    plain->first_mismatch));
  if (secure) {
    std::cout << absl::StrFormat(
        "  secure aggregation: median round %.3f s (%.2fx plaintext, +%.3f s); coordinator CPU "
        "%.1f s; max error vs FedAvg %.3g (bound %.3g) %s\n",
        masked->median_round_seconds,
        masked->median_round_seconds / std::max(1e-9, plain->median_round_seconds),
        masked->median_round_seconds - plain->median_round_seconds, masked->coordinator_cpu_seconds,
        masked->max_abs_error, bound,
        !checks_fedavg ? "(not checked)"
        : within_bound ? "within the bound"
                       : "BEYOND THE BOUND");
  }
  std::cout << absl::StrFormat(
      "  coordinator peak RSS %.1f MB (%.2fx model); largest site peak RSS %.1f MB (%.2fx "
      "model); model payload per run %.1f MB\n",
      rss / 1e6, static_cast<double>(rss) / model_bytes, site_rss / 1e6,
      static_cast<double>(site_rss) / model_bytes, payload_bytes / 1e6);
  auto print_phases = [](const PhaseSeconds& phases, const char* what) {
    if (phases.empty()) return;
    std::string text;
    for (const auto& [phase, seconds] : phases) {
      absl::StrAppendFormat(&text, "%s%s %.3f", text.empty() ? "" : ", ", phase, seconds);
    }
    std::cout << "  " << what << ": " << text << "\n";
  };
  print_phases(plain->phase_seconds_per_round, "plaintext coordinator thread-seconds per round");
  print_phases(plain->site_phase_seconds_per_round, "plaintext seconds per round at a site");
  if (secure) {
    print_phases(masked->phase_seconds_per_round, "secure coordinator thread-seconds per round");
    print_phases(masked->site_phase_seconds_per_round, "secure seconds per round at a site");
  }
  if (options.json) {
    nlohmann::json json = {
        {"sites", options.sites},
        {"params", options.params},
        {"rounds", options.rounds},
        {"strategy", options.strategy.strategy},
        {"server_optimizer", options.optimization.server_optimizer},
        {"model_bytes", model_bytes},
        {"median_round_seconds", plain->median_round_seconds},
        {"round_seconds", plain->round_seconds},
        {"coordinator_peak_rss_bytes", rss},
        {"coordinator_peak_rss_over_model", static_cast<double>(rss) / model_bytes},
        {"site_peak_rss_bytes", site_rss},
        {"site_peak_rss_over_model", static_cast<double>(site_rss) / model_bytes},
        {"coordinator_phase_seconds_per_round", plain->phase_seconds_per_round},
        {"site_phase_seconds_per_round", plain->site_phase_seconds_per_round},
        {"coordinator_cpu_seconds", plain->coordinator_cpu_seconds},
        {"payload_bytes", payload_bytes},
        {"aggregate_exact", exact},
        {"aggregate_checked", checks_fedavg},
        {"audit_entries", plain->audit_entries},
        {"audit_seconds", plain->audit_seconds},
        {"audit_share_of_round_time", plain->audit_share},
        {"secure_aggregation", secure}};
    if (secure) {
      json["secure"] = {
          {"median_round_seconds", masked->median_round_seconds},
          {"round_seconds", masked->round_seconds},
          {"coordinator_cpu_seconds", masked->coordinator_cpu_seconds},
          {"overhead_ratio",
           masked->median_round_seconds / std::max(1e-9, plain->median_round_seconds)},
          {"overhead_seconds", masked->median_round_seconds - plain->median_round_seconds},
          {"max_abs_error", masked->max_abs_error},
          {"coordinator_phase_seconds_per_round", masked->phase_seconds_per_round},
          {"site_phase_seconds_per_round", masked->site_phase_seconds_per_round},
          {"error_bound", bound},
          {"within_bound", within_bound}};
    }
    PrintJsonLine(json);
  }
  return (exact || (!checks_fedavg && plain->size_ok)) && within_bound ? kExitOk : kExitFailure;
}

}  // namespace

void AddBenchCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks of the federation machinery");
  bench->require_subcommand(1);
  auto bench_options = std::make_shared<BenchOptions>();
  CLI::App* round = bench->add_subcommand(
      "round",
      "Time rounds of real processes with a synthetic model and no training; checks "
      "that the aggregate is exactly FedAvg (with --secure-aggregation on: also times "
      "securely aggregated rounds and checks them against the error bound)");
  round->add_option("--sites", bench_options->sites, "site processes, each on its own port")
      ->capture_default_str();
  round->add_option("--params", bench_options->params, "float32 parameters in the model")
      ->capture_default_str();
  round->add_option("--rounds", bench_options->rounds, "rounds timed (medians are reported)")
      ->capture_default_str();
  round->add_option("--work-dir", bench_options->work_dir,
                    "keep state and logs here (default: a new /tmp directory)");
  round->add_flag("--json", bench_options->json, "print a JSON summary as the last line");
  // Off by default here: the plain benchmark checks FedAvg bit for bit; "on"
  // runs plaintext, then secure aggregation, and reports the overhead.
  AddSecAggOptions(round, &bench_options->secagg);
  AddStrategyOptions(round, &bench_options->strategy);
  AddServerOptimizerOptions(round, &bench_options->optimization);
  round->callback([&global, &result, bench_options] {
    RunCommand(result, [&] { return RunBenchRound(global, *bench_options); });
  });
}

}  // namespace fedmi::cli
