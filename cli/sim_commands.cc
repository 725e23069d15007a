// `fedmi sim` and `fedmi bench round`: a whole federation on this machine.
// They start the real fedmi-coordinator and fedmi-client binaries as child
// processes on loopback, so what they measure is what a deployment runs.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/admin_client.h"
#include "cli/child_process.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_files.h"
#include "cli/secagg_flags.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/data/data_split.h"
#include "common/data/partition.h"
#include "common/provision/kits.h"
#include "common/secagg/secagg.h"
#include "common/tensor/synthetic_model.h"

namespace fedmi::cli {
namespace {

// A coordinator and its sites, torn down (children stopped) on destruction.
// Unless `insecure`, it provisions a throwaway project (CA, a kit per party)
// in the work dir and every process talks mutual TLS, as a deployment does.
class LocalFederation {
 public:
  LocalFederation(std::string work_dir, bool insecure)
      : work_dir_(std::move(work_dir)), insecure_(insecure) {}
  ~LocalFederation() {
    for (auto& site : sites_) site->Stop();
    if (coordinator_) coordinator_->Stop();
  }

  absl::Status StartCoordinator() {
    ASSIGN_OR_RETURN(std::string binary, FindBinary("fedmi-coordinator"));
    mkdir((work_dir_ + "/logs").c_str(), 0700);
    if (!insecure_) {
      ASSIGN_OR_RETURN(auto ca, ProjectCa::Create(ProjectDir(), "fedmi-sim"));
      KitSettings settings;
      settings.coordinator_host = "127.0.0.1";
      RETURN_IF_ERROR(
          AddParty(ProjectDir(), "coordinator", PartyRole::kCoordinator, {}, settings).status());
      RETURN_IF_ERROR(AddParty(ProjectDir(), "sim-admin", PartyRole::kAdmin, {}, {}).status());
    }
    const std::string port_file = work_dir_ + "/coordinator.port";
    std::remove(port_file.c_str());
    std::vector<std::string> argv = {binary,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     port_file,
                                     "--db",
                                     work_dir_ + "/coordinator/state.db"};
    AddTransportFlags("coordinator", &argv);
    ASSIGN_OR_RETURN(coordinator_, ChildProcess::Spawn(argv, work_dir_ + "/logs/coordinator.log"));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        address_ = absl::StrCat("127.0.0.1:", port);
        ASSIGN_OR_RETURN(admin_, AdminClient::Connect(address_, Transport("sim-admin")));
        return absl::OkStatus();
      }
      if (!coordinator_->Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::InternalError(
        absl::StrCat("the coordinator did not start; its log:\n", coordinator_->LogTail()));
  }

  absl::Status StartSite(const std::string& name, const std::string& data, int threads,
                         const std::string& policy = "") {
    ASSIGN_OR_RETURN(std::string binary, FindBinary("fedmi-client"));
    if (!insecure_) {
      RETURN_IF_ERROR(AddParty(ProjectDir(), name, PartyRole::kSite, {}, {}).status());
    }
    std::vector<std::string> argv = {
        binary,      "--coordinator",         address_,          "--site", name,
        "--threads", std::to_string(threads), "--give-up-after", "60"};
    AddTransportFlags(name, &argv);
    if (!data.empty()) {
      argv.push_back("--data");
      argv.push_back(data);
    }
    if (!policy.empty()) {
      argv.push_back("--policy");
      argv.push_back(policy);
    }
    ASSIGN_OR_RETURN(auto site, ChildProcess::Spawn(argv, work_dir_ + "/logs/" + name + ".log"));
    sites_.push_back(std::move(site));
    site_names_.push_back(name);
    return absl::OkStatus();
  }

  // Waits for every site to connect, failing early if one exits.
  absl::Status WaitForSites(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      for (auto& site : sites_) {
        if (!site->Running()) {
          return absl::InternalError(absl::StrCat("site process exited; its log (",
                                                  site->log_path(), "):\n", site->LogTail()));
        }
      }
      if (admin_->WaitForSites(static_cast<int>(sites_.size()), absl::Seconds(1)).ok()) {
        return absl::OkStatus();
      }
    }
    return absl::DeadlineExceededError("sites did not connect in time; see " + work_dir_ + "/logs");
  }

  // What an auditor would do at the end: export the coordinator's audit log
  // to `export_path`, verify it against the project CA, and check every
  // site's kept receipts against it.
  struct AuditCheck {
    int64_t entries = 0;
    int64_t receipts = 0;
    std::string signer;
  };
  absl::StatusOr<AuditCheck> ExportAndVerifyAudit(const std::string& export_path) {
    if (insecure_) return absl::FailedPreconditionError("no signed audit log with --insecure");
    ASSIGN_OR_RETURN(audit::ExportedLog log, admin_->FetchAuditLog());
    RETURN_IF_ERROR(audit::WriteExport(export_path, log));
    ASSIGN_OR_RETURN(std::string ca_pem, ReadFileToString(KitFile("sim-admin", "ca.pem")));
    ASSIGN_OR_RETURN(audit::VerifyReport report,
                     audit::VerifyLog(log.entries, log.head, log.signer_certificate_pem, ca_pem));
    AuditCheck check;
    check.entries = report.entries;
    for (const auto& name : site_names_) {
      ASSIGN_OR_RETURN(std::vector<v1::UploadReceipt> receipts,
                       audit::ReadReceiptsDir(KitFile(name, "receipts")));
      RETURN_IF_ERROR(audit::VerifyReceipts(receipts, log.entries, log.signer_certificate_pem));
      check.receipts += static_cast<int64_t>(receipts.size());
    }
    auto signer = ParseCertificatePem(log.signer_certificate_pem);
    if (signer.ok()) check.signer = signer->common_name;
    return check;
  }

  AdminClient& admin() { return *admin_; }
  ChildProcess& coordinator() { return *coordinator_; }
  const std::string& address() const { return address_; }
  const char* transport_name() const { return insecure_ ? "plaintext (--insecure)" : "mutual TLS"; }

 private:
  std::string ProjectDir() const { return work_dir_ + "/pki"; }
  std::string KitFile(const std::string& party, const char* file) const {
    return absl::StrCat(ProjectDir(), "/kits/", party, "/", file);
  }
  TransportOptions Transport(const std::string& party) const {
    TransportOptions transport;
    transport.insecure = insecure_;
    if (!insecure_) {
      transport.cert_file = KitFile(party, "cert.pem");
      transport.key_file = KitFile(party, "key.pem");
      transport.ca_file = KitFile(party, "ca.pem");
    }
    return transport;
  }
  void AddTransportFlags(const std::string& party, std::vector<std::string>* argv) const {
    if (insecure_) {
      argv->push_back("--insecure");
      return;
    }
    for (const char* file : {"cert", "key", "ca"}) {
      argv->push_back(absl::StrCat("--", file));
      argv->push_back(KitFile(party, absl::StrCat(file, ".pem").c_str()));
    }
  }

  std::string work_dir_;
  bool insecure_;
  std::string address_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> sites_;
  std::vector<std::string> site_names_;
  std::unique_ptr<AdminClient> admin_;
};

absl::StatusOr<std::string> MakeWorkDir(const std::string& requested, const char* prefix) {
  if (!requested.empty()) {
    mkdir(requested.c_str(), 0700);
    return requested;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError("cannot create a working directory in /tmp");
  }
  return pattern;
}

std::string DefaultDataPath() {
  if (const char* env = std::getenv("FEDMI_DATA")) return env;
  return "../shared/data/pneumoniamnist.npz";
}

nlohmann::json MetricsJson(const v1::Metrics& metrics) {
  return {{"examples", metrics.examples()},
          {"loss", JsonNumber(metrics.loss())},
          {"auc", JsonNumber(metrics.auc())},
          {"accuracy", JsonNumber(metrics.accuracy())},
          {"sensitivity", JsonNumber(metrics.sensitivity())},
          {"specificity", JsonNumber(metrics.specificity())},
          {"f1", JsonNumber(metrics.f1())}};
}

// Watches a run to its end, calling on_round once per newly evaluated round.
absl::StatusOr<v1::RunStatus> WatchToEnd(
    AdminClient& admin, int64_t run_id,
    const std::function<void(const v1::RoundStatus&)>& on_round) {
  v1::RunStatus last;
  int32_t reported = 0;
  absl::Status status = admin.WatchRun(run_id, [&](const v1::RunStatus& update) {
    last = update;
    for (const auto& round : update.rounds()) {
      if (round.state() == "evaluated" && round.round() > reported) {
        on_round(round);
        reported = round.round();
      }
    }
    return true;
  });
  RETURN_IF_ERROR(status);
  return last;
}

struct SimOptions {
  int sites = 3;
  int rounds = 10;
  std::string data;
  std::string partition = "dirichlet";
  double alpha = 0.5;
  std::string model = "cnn";
  int local_epochs = 1;
  int batch_size = 64;
  double lr = 1e-3;
  std::string optimizer = "adam";
  uint64_t seed = 0;
  int threads = 0;
  std::string json_out;
  std::string work_dir;
  bool json = false;
  SecAggFlags secagg;
};

int RunSim(const GlobalOptions& global, SimOptions options) {
  if (options.sites < 1) return ReportUsageError("--sites must be at least 1");
  if (options.rounds < 1) return ReportUsageError("--rounds must be at least 1");
  if (options.data.empty()) options.data = DefaultDataPath();
  if (access(options.data.c_str(), R_OK) != 0) {
    return ReportError(absl::NotFoundError(absl::StrCat(
        "data file ", options.data,
        " not found. Get PneumoniaMNIST (pneumoniamnist.npz) from the MedMNIST release "
        "(https://medmnist.com, Zenodo record 10519652) and pass --data or set FEDMI_DATA.")));
  }
  auto partition = ParsePartitionKind(options.partition);
  if (!partition.ok()) return ReportUsageError(std::string(partition.status().message()));
  auto work_dir = MakeWorkDir(options.work_dir, "fedmi-sim");
  if (!work_dir.ok()) return ReportError(work_dir.status());
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads =
      options.threads > 0 ? options.threads : std::max(1, static_cast<int>(cores) / options.sites);
  const absl::Time started = absl::Now();
  std::cout << "fedmi sim: " << options.sites << " sites, " << options.rounds << " rounds, "
            << options.model << ", " << options.partition << " partition (alpha " << options.alpha
            << "), " << threads << " thread(s) per site\n  work dir " << *work_dir << std::endl;

  DataSplitOptions split;
  split.input = options.data;
  split.sites = options.sites;
  split.partition.kind = *partition;
  split.partition.alpha = options.alpha;
  split.partition.seed = options.seed;
  split.out_dir = *work_dir + "/shards";
  auto shards = SplitDataset(split);
  if (!shards.ok()) return ReportError(shards.status());
  for (const auto& shard : *shards) {
    int64_t train = 0, val = 0;
    for (int64_t c : shard.train_class_counts) train += c;
    for (int64_t c : shard.val_class_counts) val += c;
    std::cout << "  " << shard.site << ": " << train << " train, " << val << " val; train classes";
    for (int64_t c : shard.train_class_counts) std::cout << " " << c;
    std::cout << "\n";
  }

  LocalFederation federation(*work_dir, global.insecure);
  if (absl::Status status = federation.StartCoordinator(); !status.ok()) return ReportError(status);
  for (const auto& shard : *shards) {
    if (absl::Status status = federation.StartSite(shard.site, shard.path, threads); !status.ok()) {
      return ReportError(status);
    }
  }
  if (absl::Status status = federation.WaitForSites(absl::Seconds(120)); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "  coordinator on " << federation.address() << " (" << federation.transport_name()
            << "), all sites connected" << std::endl;

  v1::RunSpec spec;
  spec.set_model(options.model);
  spec.set_strategy("fedavg");
  spec.set_rounds(options.rounds);
  spec.set_min_sites(options.sites);
  spec.set_local_epochs(options.local_epochs);
  spec.set_batch_size(options.batch_size);
  spec.set_lr(options.lr);
  spec.set_optimizer(options.optimizer);
  spec.set_seed(options.seed);
  spec.set_num_classes(2);
  if (absl::Status status = ApplySecAggFlags(options.secagg, options.sites, &spec); !status.ok()) {
    return ReportUsageError(std::string(status.message()));
  }
  auto run_id = federation.admin().StartRun(spec);
  if (!run_id.ok()) return ReportError(run_id.status());
  std::cout << "  run " << *run_id << " started, secure aggregation " << DescribeSecAgg(spec)
            << "\n"
            << "  round   loss     auc      acc      sens     spec     seconds" << std::endl;

  nlohmann::json rounds = nlohmann::json::array();
  auto final_status = WatchToEnd(federation.admin(), *run_id, [&](const v1::RoundStatus& round) {
    const v1::Metrics& m = round.eval_metrics();
    const double seconds = round.finished_at() - round.started_at();
    std::cout << absl::StrFormat("  %3d/%-3d %-8s %-8s %-8s %-8s %-8s %.1f", round.round(),
                                 options.rounds, FormatMetric(m.loss()), FormatMetric(m.auc()),
                                 FormatMetric(m.accuracy()), FormatMetric(m.sensitivity()),
                                 FormatMetric(m.specificity()), seconds)
              << std::endl;
    nlohmann::json entry = MetricsJson(m);
    entry["round"] = round.round();
    entry["seconds"] = seconds;
    rounds.push_back(entry);
  });
  if (!final_status.ok()) return ReportError(final_status.status());
  if (final_status->state() != "done") {
    return ReportError(
        absl::InternalError(absl::StrCat("run ", *run_id, " ended ", final_status->state(), ": ",
                                         final_status->error(), "\n  logs: ", *work_dir, "/logs")));
  }

  const std::string model_path = *work_dir + "/final-model.pt";
  std::string summary;
  if (absl::Status status =
          ExportModelToFile(federation.admin(), *run_id, -1, model_path, &summary);
      !status.ok()) {
    return ReportError(status);
  }
  auto test = EvaluateModelOnSplit(model_path, options.data, "test");
  if (!test.ok()) return ReportError(test.status());
  nlohmann::json audit_json = nullptr;
  if (!global.insecure) {
    const std::string audit_path = *work_dir + "/audit.jsonl";
    auto audit = federation.ExportAndVerifyAudit(audit_path);
    if (!audit.ok()) {
      return ReportError(absl::Status(audit.status().code(),
                                      absl::StrCat("audit log: ", audit.status().message())));
    }
    std::cout << absl::StrFormat(
                     "audit log: %d entries intact (signed by %s); %d upload receipts kept by "
                     "the sites are in it; export %s",
                     audit->entries, audit->signer, audit->receipts, audit_path)
              << std::endl;
    audit_json = {{"entries", audit->entries},
                  {"receipts", audit->receipts},
                  {"intact", true},
                  {"export", audit_path}};
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - started);
  std::cout << absl::StrFormat(
                   "final model on the test split (%d images): auc %s  accuracy %s  "
                   "sensitivity %s  specificity %s  f1 %s  loss %s\n",
                   test->metrics.examples, FormatMetric(test->metrics.auc),
                   FormatMetric(test->metrics.accuracy), FormatMetric(test->metrics.sensitivity),
                   FormatMetric(test->metrics.specificity), FormatMetric(test->metrics.f1),
                   FormatMetric(test->loss))
            << "  model: " << model_path << "\n"
            << absl::StrFormat("  wall time %.1f s", wall) << std::endl;

  nlohmann::json result = {{"run_id", *run_id},
                           {"sites", options.sites},
                           {"rounds", options.rounds},
                           {"model", options.model},
                           {"partition", options.partition},
                           {"alpha", options.alpha},
                           {"seed", options.seed},
                           {"secure_aggregation", spec.secure_aggregation()},
                           {"per_round", rounds},
                           {"test",
                            {{"examples", test->metrics.examples},
                             {"auc", JsonNumber(test->metrics.auc)},
                             {"accuracy", JsonNumber(test->metrics.accuracy)},
                             {"sensitivity", JsonNumber(test->metrics.sensitivity)},
                             {"specificity", JsonNumber(test->metrics.specificity)},
                             {"f1", JsonNumber(test->metrics.f1)},
                             {"loss", JsonNumber(test->loss)}}},
                           {"final_model", model_path},
                           {"audit", audit_json},
                           {"wall_seconds", wall}};
  if (!options.json_out.empty()) {
    std::ofstream out(options.json_out);
    out << result.dump(2) << "\n";
    if (!out) return ReportError(absl::InternalError("cannot write " + options.json_out));
  }
  if (options.json) PrintJsonLine(result);
  return kExitOk;
}

struct BenchOptions {
  int sites = 4;
  int64_t params = 1000000;
  int rounds = 3;
  std::string work_dir;
  bool json = false;
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
};

absl::StatusOr<BenchRun> TimeBenchRun(LocalFederation& federation, const BenchOptions& options,
                                      const std::vector<int64_t>& site_indices,
                                      const v1::RunSpec& spec, const char* label) {
  const double cpu_before = federation.coordinator().CpuSeconds().value_or(0);
  ASSIGN_OR_RETURN(v1::AuditInfo audit_before, federation.admin().GetAuditInfo());
  ASSIGN_OR_RETURN(int64_t run_id, federation.admin().StartRun(spec));
  BenchRun result;
  ASSIGN_OR_RETURN(v1::RunStatus final_status,
                   WatchToEnd(federation.admin(), run_id, [&](const v1::RoundStatus& round) {
                     const double seconds = round.finished_at() - round.started_at();
                     result.round_seconds.push_back(seconds);
                     std::cout << absl::StrFormat("  %s round %d/%d aggregated in %.2f s", label,
                                                  round.round(), options.rounds, seconds)
                               << std::endl;
                   }));
  if (final_status.state() != "done") {
    return absl::InternalError(
        absl::StrCat(label, " run ended ", final_status.state(), ": ", final_status.error()));
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

  LocalFederation federation(*work_dir, global.insecure);
  if (absl::Status status = federation.StartCoordinator(); !status.ok()) return ReportError(status);
  std::vector<int64_t> site_indices;
  for (int k = 1; k <= options.sites; ++k) {
    if (absl::Status status = federation.StartSite(absl::StrCat("site-", k), "", 1); !status.ok()) {
      return ReportError(status);
    }
    site_indices.push_back(k);
  }
  if (absl::Status status = federation.WaitForSites(absl::Seconds(120)); !status.ok()) {
    return ReportError(status);
  }
  auto plain = TimeBenchRun(federation, options, site_indices, plain_spec, "plaintext");
  if (!plain.ok()) return ReportError(plain.status());
  const bool exact = plain->size_ok && plain->mismatches == 0;
  absl::StatusOr<BenchRun> masked = absl::UnknownError("not run");
  double bound = 0;
  if (secure) {
    masked = TimeBenchRun(federation, options, site_indices, secure_spec, "secure");
    if (!masked.ok()) return ReportError(masked.status());
    auto computed = SecAggBound(secure_spec, options.sites, options.rounds);
    if (!computed.ok()) return ReportError(computed.status());
    bound = *computed;
  }
  const bool within_bound = !secure || (masked->size_ok && masked->max_abs_error <= bound);
  auto peak_rss = federation.coordinator().PeakRssBytes();
  const int64_t rss = peak_rss.ok() ? *peak_rss : -1;

  // Model payload on the wire per run: the initial upload, then per round
  // one download and one upload per site (synthetic sites skip evaluation).
  const uint64_t payload_bytes =
      model_bytes + static_cast<uint64_t>(options.rounds) * options.sites * 2 * model_bytes;
  std::cout << absl::StrFormat(
      "  plaintext: median round %.3f s; coordinator CPU %.1f s; audit log %d entries in "
      "%.1f ms (%.2f%% of round time); aggregate %s\n",
      plain->median_round_seconds, plain->coordinator_cpu_seconds, plain->audit_entries,
      plain->audit_seconds * 1e3, plain->audit_share * 100,
      exact ? "exact (bit-identical to FedAvg)"
            : absl::StrCat("WRONG: ", plain->mismatches, " elements differ, first at ",
                           plain->first_mismatch));
  if (secure) {
    std::cout << absl::StrFormat(
        "  secure aggregation: median round %.3f s (%.2fx plaintext, +%.3f s); coordinator CPU "
        "%.1f s; max error vs FedAvg %.3g (bound %.3g) %s\n",
        masked->median_round_seconds,
        masked->median_round_seconds / std::max(1e-9, plain->median_round_seconds),
        masked->median_round_seconds - plain->median_round_seconds, masked->coordinator_cpu_seconds,
        masked->max_abs_error, bound, within_bound ? "within the bound" : "BEYOND THE BOUND");
  }
  std::cout << absl::StrFormat(
      "  coordinator peak RSS %.1f MB (%.2fx model); model payload per run %.1f MB\n", rss / 1e6,
      static_cast<double>(rss) / model_bytes, payload_bytes / 1e6);
  if (options.json) {
    nlohmann::json json = {
        {"sites", options.sites},
        {"params", options.params},
        {"rounds", options.rounds},
        {"model_bytes", model_bytes},
        {"median_round_seconds", plain->median_round_seconds},
        {"round_seconds", plain->round_seconds},
        {"coordinator_peak_rss_bytes", rss},
        {"coordinator_peak_rss_over_model", static_cast<double>(rss) / model_bytes},
        {"coordinator_cpu_seconds", plain->coordinator_cpu_seconds},
        {"payload_bytes", payload_bytes},
        {"aggregate_exact", exact},
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
          {"error_bound", bound},
          {"within_bound", within_bound}};
    }
    PrintJsonLine(json);
  }
  return exact && within_bound ? kExitOk : kExitFailure;
}

}  // namespace

void AddSimCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  auto sim_options = std::make_shared<SimOptions>();
  CLI::App* sim = app.add_subcommand(
      "sim",
      "Run a whole federation on this machine: split the data, start a coordinator and "
      "one client process per site on loopback, train, and test the final model");
  sim->add_option("--sites", sim_options->sites, "number of hospital sites")->capture_default_str();
  sim->add_option("--rounds", sim_options->rounds, "federated rounds")->capture_default_str();
  sim->add_option("--data", sim_options->data,
                  "MedMNIST .npz (default: $FEDMI_DATA or ../shared/data/pneumoniamnist.npz)");
  sim->add_option("--partition", sim_options->partition, "iid | dirichlet | quantity")
      ->capture_default_str();
  sim->add_option("--alpha", sim_options->alpha, "Dirichlet concentration (smaller = more skew)")
      ->capture_default_str();
  sim->add_option("--model", sim_options->model, "architecture: cnn | resnet18")
      ->capture_default_str();
  sim->add_option("--local-epochs", sim_options->local_epochs, "local epochs per round")
      ->capture_default_str();
  sim->add_option("--batch-size", sim_options->batch_size)->capture_default_str();
  sim->add_option("--lr", sim_options->lr, "learning rate")->capture_default_str();
  sim->add_option("--optimizer", sim_options->optimizer, "adam | sgd")->capture_default_str();
  sim->add_option("--seed", sim_options->seed, "seeds the split, the model and training")
      ->capture_default_str();
  sim->add_option("--threads", sim_options->threads,
                  "LibTorch threads per site (default: cores / sites, at least 1)");
  sim->add_option("--json-out", sim_options->json_out, "write the JSON summary to this file");
  sim->add_option("--work-dir", sim_options->work_dir,
                  "keep shards, state and logs here (default: a new /tmp directory)");
  sim->add_flag("--json", sim_options->json, "print the JSON summary as the last line");
  AddSecAggOptions(sim, &sim_options->secagg);
  sim->callback([&global, &result, sim_options] {
    RunCommand(result, [&] { return RunSim(global, *sim_options); });
  });

  CLI::App* bench = app.add_subcommand("bench", "Benchmarks of the federation machinery");
  bench->require_subcommand(1);
  auto bench_options = std::make_shared<BenchOptions>();
  CLI::App* round = bench->add_subcommand(
      "round",
      "Time rounds of real processes with a synthetic model and no training; checks "
      "that the aggregate is exactly FedAvg (with --secure-aggregation on: also times "
      "securely aggregated rounds and checks them against the error bound)");
  round->add_option("--sites", bench_options->sites)->capture_default_str();
  round->add_option("--params", bench_options->params, "float32 parameters in the model")
      ->capture_default_str();
  round->add_option("--rounds", bench_options->rounds)->capture_default_str();
  round->add_option("--work-dir", bench_options->work_dir,
                    "keep state and logs here (default: a new /tmp directory)");
  round->add_flag("--json", bench_options->json, "print a JSON summary as the last line");
  // Off by default here: the plain benchmark checks FedAvg bit for bit; "on"
  // runs plaintext, then secure aggregation, and reports the overhead.
  AddSecAggOptions(round, &bench_options->secagg);
  round->callback([&global, &result, bench_options] {
    RunCommand(result, [&] { return RunBenchRound(global, *bench_options); });
  });
}

}  // namespace fedmi::cli
