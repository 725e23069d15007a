#include "client/site_main.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/site_daemon.h"
#include "client/site_observability.h"
#include "client/site_policy.h"
#include "client/site_worker.h"
#include "common/base/build_info.h"
#include "common/base/cli_config.h"
#include "common/base/cpu_share.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/base/log.h"
#include "common/crypto/revocation_list.h"
#include "common/data/data_version.h"
#include "common/data/dicom_data.h"
#include "common/data/image_data.h"
#include "common/evaluation/acquisition.h"
#include "common/rpc/channels.h"

namespace fedmi {
namespace {

std::atomic<bool> g_stop{false};
// A second signal quits at once: a --review prompt blocks the task thread on
// the terminal, and a clean stop would wait for its answer.
void OnSignal(int) {
  if (g_stop.exchange(true)) _exit(130);
}

// Approvals live with the policy they extend.
std::string DefaultApprovalsPath(const std::string& policy_path) {
  constexpr char kName[] = "approved-specs.txt";
  if (policy_path.empty()) return kName;
  return (std::filesystem::path(policy_path).parent_path() / kName).string();
}

std::string DescribePolicy(const SitePolicy& policy) {
  std::string text = absl::StrCat("models [", absl::StrJoin(policy.allowed_models, ", "),
                                  "], at most ", policy.max_local_epochs,
                                  " local epochs, images up to ", policy.max_image_size, " px");
  if (!policy.allowed_spec_sha256.empty()) {
    absl::StrAppend(&text, ", pinned to ", policy.allowed_spec_sha256.size(), " run spec(s)");
  }
  if (policy.require_secure_aggregation) absl::StrAppend(&text, ", secure aggregation required");
  if (policy.require_differential_privacy) {
    absl::StrAppend(&text, ", differential privacy required");
  }
  if (policy.max_epsilon) absl::StrAppend(&text, ", epsilon at most ", *policy.max_epsilon);
  return text;
}

}  // namespace

int RunSiteMain(int argc, char** argv, const SiteMainHooks& hooks) {
  CLI::App app{hooks.description.empty()
                   ? std::string("fedmi-client: a hospital site's daemon. Dials out to the "
                                 "coordinator, trains on local images, returns only weights.")
                   : hooks.description,
               hooks.program.empty() ? std::string("fedmi-client") : hooks.program};
  AddConfigOption(app);
  std::string coordinator = "127.0.0.1:7000";
  std::string site;
  std::string data;
  int threads = 0;
  bool insecure = false;
  std::string policy_path;
  bool review = false;
  std::string approvals_path;
  double heartbeat_s = 10;
  double give_up_s = 0;
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT")->capture_default_str();
  app.add_option("--site", site, "this site's name (letters, digits, . _ -)")->required();
  app.add_option("--data", data,
                 "local data: a MedMNIST .npz (train_*/val_*), an image folder with one "
                 "sub-folder per class (or train/ val/ sub-folders of them), or a DICOM folder "
                 "(.dcm files in class sub-folders, or any layout with a labels.csv of "
                 "file|sop_instance_uid,label[,split]; see docs/data.md); omit only for "
                 "synthetic benchmarks");
  app.add_option("--policy", policy_path,
                 "site policy (TOML): the models, local epochs and privacy settings this site "
                 "allows; default: cnn and resnet18, at most 10 local epochs (plus synthetic "
                 "benchmarks when there is no --data)");
  app.add_flag("--review", review,
               "show each new run spec on this terminal and train only after the operator "
               "types yes; approvals are remembered in --approvals");
  app.add_option("--approvals", approvals_path,
                 "file of run spec hashes approved with --review (default: approved-specs.txt "
                 "next to --policy, else in the working directory)");
  std::string privacy_dir;
  app.add_option("--privacy-ledger", privacy_dir,
                 "directory where this site's own privacy accountant records the epsilon each "
                 "differentially private run has spent here (default: privacy/ next to --cert, "
                 "else in the working directory)");
  std::string state_dir;
  app.add_option("--state-dir", state_dir,
                 "directory for what this site remembers between the rounds of a run, such as "
                 "SCAFFOLD's control variates (default: state/ next to --cert, else in the "
                 "working directory)");
  std::string receipts_dir;
  app.add_option("--receipts", receipts_dir,
                 "directory for the coordinator's signed upload receipts and, in heads/, the "
                 "audit log heads sent with each task, for `fedmi audit verify --receipts` "
                 "(default: receipts/ next to --cert)");
  double max_bad_fraction = 0.05;
  app.add_option("--max-bad-fraction", max_bad_fraction,
                 "DICOM data: the largest share of unreadable files (skipped and counted) with "
                 "which the site still trains; above it the site refuses runs and says why")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--threads", threads,
                 "LibTorch and DICOM decoding threads (0 = this site's share of the CPUs it "
                 "may use, shared with the other site daemons on this machine)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--heartbeat", heartbeat_s, "seconds between heartbeats")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--give-up-after", give_up_s,
                 "exit when the coordinator stays unreachable this many seconds (0 = never)")
      ->capture_default_str();
  std::string http_address;
  app.add_option("--http", http_address,
                 "HOST:PORT to serve this site's Prometheus /metrics on (off by default). On a "
                 "loopback address plain HTTP, for anyone on this machine; on any other address "
                 "HTTPS with the site's kit, for admin and auditor certificates of the project CA");
  std::string http_port_file;
  app.add_option("--http-port-file", http_port_file,
                 "write the port --http bound to this file once serving (for --http HOST:0)");
  app.add_flag("--insecure", insecure,
               "plaintext transport, for local experiments on a trusted network only");
  std::string semi_supervised = "off";
  LocalLabelOptions local_labels;
  std::string noisy_labels_path;
  app.add_option("--semi-supervised", semi_supervised,
                 "learn from this site's unlabelled images too: pseudo-label (confident "
                 "predictions of each round's global model join training, weighted up over "
                 "--pseudo-label-ramp-rounds), fixmatch (the same pseudo-labels, trained on "
                 "strongly augmented views) or off; see docs/scarce-labels.md")
      ->check(CLI::IsMember({"off", "pseudo-label", "fixmatch"}))
      ->capture_default_str();
  app.add_option("--pseudo-label-threshold", local_labels.pseudo_label_threshold,
                 "--semi-supervised: least probability of a pseudo-label's class, "
                 "above 0.5")
      ->check(CLI::Range(0.5, 1.0))
      ->capture_default_str();
  app.add_option("--pseudo-label-ramp-rounds", local_labels.pseudo_label_ramp_rounds,
                 "--semi-supervised: rounds over which pseudo-labels' weight rises "
                 "to 1")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--noisy-labels", noisy_labels_path,
                 "suspects.csv from `fedmi data audit-labels`: train on the flagged images at "
                 "--noisy-label-weight");
  app.add_option("--noisy-label-weight", local_labels.noisy_label_weight,
                 "weight of the images --noisy-labels flags (default 0: no loss term, though they "
                 "still fill batches; up to 1)")
      ->check(CLI::Range(0.0, 1.0));
  std::string al_rounds, al_budget = "5%", al_method = "bald", al_out;
  app.add_option("--al-rounds", al_rounds,
                 "active learning inside a run: comma-separated rounds (4,7) at whose start this "
                 "site ranks its unlabelled images with the round's global model and writes the "
                 "ones to label next to --al-out (a site not picked for such a round ranks at "
                 "its next one). Nothing is labelled automatically: labels join once the "
                 "operator runs `fedmi al import`, from the next round on");
  app.add_option("--al-budget", al_budget,
                 "--al-rounds: images per list, a count (40) or a share of the site's training "
                 "images, labelled and not (5%)")
      ->capture_default_str();
  app.add_option("--al-method", al_method, absl::StrCat("--al-rounds: ", AcquisitionMethodNames()))
      ->capture_default_str();
  app.add_option("--al-out", al_out,
                 "--al-rounds: folder for the lists (default: active-learning/ next to the kit, or "
                 "active-learning/SITE without one)");
  TlsFlags tls;
  AddTlsOptions(app, tls);
  if (hooks.add_options) hooks.add_options(app);
  app.set_version_flag(
      "--version", [name = app.get_name()] { return VersionText(name); },
      "print the git commit, build type and whether training is built in, and exit");
  if (int code = ParseCommandLine(app, argc, argv); code >= 0) return code;
  SetLogTag(site.c_str());
  const std::string config_file = ConfigFileOf(app);
  data = ResolveConfigPath(data, "--data", argc, argv, config_file);
  policy_path = ResolveConfigPath(policy_path, "--policy", argc, argv, config_file);
  approvals_path = ResolveConfigPath(approvals_path, "--approvals", argc, argv, config_file);

  std::optional<SitePolicy> policy;
  if (!policy_path.empty()) {
    auto loaded = SitePolicy::Load(policy_path);
    if (!loaded.ok()) {
      std::cerr << "error: " << loaded.status().message() << "\n";
      return loaded.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    }
    policy = *std::move(loaded);
    // Fail closed: a pin that plaintext transport cannot check must not be
    // silently ignored.
    if (!policy->coordinator_fingerprint.empty() && insecure) {
      std::cerr << "error: " << policy_path
                << " pins the coordinator's certificate (coordinator_fingerprint), but "
                   "--insecure has no certificate to check\n";
      return 2;
    }
  }
  if (insecure) {
    FEDMI_LOG(WARNING) << "running with --insecure: plaintext transport, no authentication. "
                          "Use only for local experiments.";
  }

  // DICOM decoding shares the cores LibTorch was given, never more.
  auto data_options = [threads, max_bad_fraction](const DataGeometry& geometry) {
    SiteDataOptions options;
    options.height = options.width = geometry.image_size;
    options.channels = geometry.channels;
    options.first_frame_only = geometry.first_frame_only;
    options.with_masks = geometry.with_masks;
    options.max_bad_fraction = max_bad_fraction;
    options.threads = threads > 0 ? threads : MeasureCpuShare().threads;
    return options;
  };
  std::optional<SiteDataset> dataset;
  absl::Status data_problem;
  if (!data.empty()) {
    auto loaded = LoadSiteDataset(data, data_options(DataGeometry()));
    if (loaded.ok()) {
      dataset = *std::move(loaded);
      FEDMI_LOG(INFO) << "loaded " << dataset->train.size() << " training, " << dataset->val.size()
                      << " validation and " << dataset->unlabelled.images.size()
                      << " unlabelled images from " << data << ": "
                      << FormatLoadReport(dataset->report);
    } else if (!IsDicomFolder(data)) {
      // A missing or corrupt npz or image folder is a mistake in --data.
      std::cerr << "error: " << loaded.status().message() << "\n";
      return 1;
    } else {
      // A DICOM folder with too many unreadable files (or only multi-frame
      // ones, which a run may ask for) stays the site's to fix: the daemon
      // stays up, reads it again for each run, and refuses those it cannot.
      data_problem = loaded.status();
      FEDMI_LOG(ERROR) << "cannot use the data in " << data << ": " << data_problem.message()
                       << "; runs are refused unless it can be read as they ask (first frames)";
    }
  }
  if (auto method = ParseSemiSupervisedMethod(semi_supervised); method.ok()) {
    local_labels.semi_supervised = *method;
  } else {
    std::cerr << "error: " << method.status().message() << "\n";
    return 2;
  }
  noisy_labels_path =
      ResolveConfigPath(noisy_labels_path, "--noisy-labels", argc, argv, config_file);
  if (!noisy_labels_path.empty()) {
    auto flagged = ReadFlaggedLabelIds(noisy_labels_path);
    if (!flagged.ok()) {
      std::cerr << "error: " << flagged.status().message() << "\n";
      return 2;
    }
    local_labels.noisy_label_ids = *std::move(flagged);
    // Measured better than 0.2 on PneumoniaMNIST (docs/scarce-labels.md).
    if (app.count("--noisy-label-weight") == 0) local_labels.noisy_label_weight = 0;
    FEDMI_LOG(INFO) << local_labels.noisy_label_ids.size() << " images flagged in "
                    << noisy_labels_path << " train at weight " << local_labels.noisy_label_weight;
  }
  if (absl::Status checked = CheckLocalLabelOptions(local_labels); !checked.ok()) {
    std::cerr << "error: " << checked.message() << "\n";
    return 2;
  }
  SiteWorkerOptions worker_options;
  worker_options.site = site;
  worker_options.local_labels = std::move(local_labels);
  // Folders the site keeps next to its kit (privacy ledger, state, lists
  // to label): they must survive restarts and upgrades.
  const std::string cert = ResolveConfigPath(tls.cert, "--cert", argc, argv, config_file);
  auto next_to_kit = [&cert](const std::string& name, const std::string& without_kit) {
    return cert.empty() ? without_kit : (std::filesystem::path(cert).parent_path() / name).string();
  };
  if (al_rounds.empty() &&
      (app.count("--al-budget") + app.count("--al-method") + app.count("--al-out")) > 0) {
    std::cerr << "error: --al-budget, --al-method and --al-out go with --al-rounds\n";
    return 2;
  }
  if (!al_rounds.empty()) {
    auto active_learning = ActiveLearningFromFlags(al_rounds, al_budget, al_method);
    if (!active_learning.ok() || data.empty()) {
      std::cerr << "error: "
                << (data.empty() ? "--al-rounds ranks the site's unlabelled images and needs --data"
                                 : active_learning.status().message())
                << "\n";
      return 2;
    }
    worker_options.active_learning = *std::move(active_learning);
    std::error_code error;
    const std::filesystem::path absolute = std::filesystem::absolute(data, error);
    worker_options.active_learning.data_path = error ? data : absolute.string();
    al_out = ResolveConfigPath(al_out, "--al-out", argc, argv, config_file);
    // Without a kit, sites started in one folder must not share one.
    worker_options.active_learning.out_dir =
        !al_out.empty() ? al_out
                        : next_to_kit("active-learning",
                                      (std::filesystem::path("active-learning") / site).string());
    // Imported labels reach training at the next round: the site watches
    // its data for the operator's `fedmi al import`.
    worker_options.data_version = [data] { return DataSourceVersion(data); };
  }
  privacy_dir = ResolveConfigPath(privacy_dir, "--privacy-ledger", argc, argv, config_file);
  if (privacy_dir.empty()) privacy_dir = next_to_kit("privacy", "privacy");
  worker_options.privacy_dir = privacy_dir;
  state_dir = ResolveConfigPath(state_dir, "--state-dir", argc, argv, config_file);
  if (state_dir.empty()) state_dir = next_to_kit("state", "state");
  worker_options.state_dir = state_dir;
  worker_options.threads = threads;
  worker_options.policy = policy;
  worker_options.data_problem = data_problem;
  if (!data.empty()) {
    worker_options.reload_data = [data, data_options](const DataGeometry& geometry) {
      auto reloaded = LoadSiteDataset(data, data_options(geometry));
      if (reloaded.ok()) {
        FEDMI_LOG(INFO) << "read " << data << " again: " << FormatLoadReport(reloaded->report);
      }
      return reloaded;
    };
  }
  std::unique_ptr<TerminalApprover> approver;
  if (review) {
    if (approvals_path.empty()) approvals_path = DefaultApprovalsPath(policy_path);
    TerminalApproverOptions approver_options;
    approver_options.coordinator = coordinator;
    approver_options.interactive = isatty(STDIN_FILENO) == 1;
    if (!approver_options.interactive) {
      FEDMI_LOG(WARNING) << "--review without a terminal on stdin: only run specs already in "
                         << approvals_path << " will run; others are refused";
    }
    approver =
        std::make_unique<TerminalApprover>(std::cin, std::cout, approvals_path, approver_options);
    worker_options.approver = approver.get();
  }
  if (!http_port_file.empty() && http_address.empty()) {
    std::cerr << "error: --http-port-file needs --http\n";
    return 2;
  }
  ClientHttpOptions http;
  http.address = http_address;
  http.insecure = insecure;
  http.cert_file = ResolveConfigPath(tls.cert, "--cert", argc, argv, config_file);
  http.key_file = ResolveConfigPath(tls.key, "--key", argc, argv, config_file);
  http.ca_file = ResolveConfigPath(tls.ca, "--ca", argc, argv, config_file);
  http.crl_file = ResolveConfigPath(tls.crl, "--crl", argc, argv, config_file);
  auto observability = SiteObservability::Start(http);
  if (!observability.ok()) {
    std::cerr << "error: --http: " << observability.status().message() << "\n";
    return observability.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  worker_options.training_observer = (*observability)->observer();
  if (!http_port_file.empty()) {
    // Whoever waits for the file must never read half of it.
    if (absl::Status written = WriteFileAtomically(
            *Env::Default(), http_port_file, absl::StrCat((*observability)->http_port(), "\n"));
        !written.ok()) {
      std::cerr << "error: --http-port-file: " << written.message() << "\n";
      return 1;
    }
  }
  if (hooks.configure_worker) {
    if (absl::Status status = hooks.configure_worker(&worker_options); !status.ok()) {
      std::cerr << "error: " << status.message() << "\n";
      return 2;
    }
  }
  SiteWorker worker(worker_options, std::move(dataset));
  FEDMI_LOG(INFO) << "site policy ("
                  << (policy_path.empty() ? std::string("built-in defaults") : policy_path)
                  << "): " << DescribePolicy(worker.policy())
                  << (review ? absl::StrCat("; operator review on, approvals in ", approvals_path)
                             : std::string());

  SiteDaemonOptions options;
  options.coordinator = coordinator;
  options.site = site;
  options.transport.insecure = insecure;
  options.transport.cert_file = ResolveConfigPath(tls.cert, "--cert", argc, argv, config_file);
  options.transport.key_file = ResolveConfigPath(tls.key, "--key", argc, argv, config_file);
  options.transport.ca_file = ResolveConfigPath(tls.ca, "--ca", argc, argv, config_file);
  options.transport.crl_file = ResolveConfigPath(tls.crl, "--crl", argc, argv, config_file);
  if (!options.transport.crl_file.empty()) {
    // Checked at start: a CRL that does not verify must not fail a round later.
    auto crl = LoadRevocationList(options.transport.crl_file, options.transport.ca_file);
    if (!crl.ok()) {
      std::cerr << "error: " << crl.status().message() << "\n";
      return 1;
    }
  }
  if (policy) options.transport.server_fingerprint = policy->coordinator_fingerprint;
  receipts_dir = ResolveConfigPath(receipts_dir, "--receipts", argc, argv, config_file);
  if (receipts_dir.empty() && !options.transport.cert_file.empty()) {
    // Receipts are evidence for this hospital's auditors: keep them with its kit.
    receipts_dir =
        (std::filesystem::path(options.transport.cert_file).parent_path() / "receipts").string();
  }
  options.receipts_dir = receipts_dir;
  options.heartbeat = absl::Seconds(heartbeat_s);
  options.give_up_after = absl::Seconds(give_up_s);
  SiteDaemon daemon(options, worker, CrashAtFaultPointFromEnvironment());
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    daemon.Stop();
  });
  absl::Status status = daemon.Run();
  g_stop = true;
  watcher.join();
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

absl::Status RefuseSimulationOnlySettings(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == kAttackFlag || absl::StartsWith(arg, absl::StrCat(kAttackFlag, "="))) {
      return absl::InvalidArgumentError(
          absl::StrCat(kAttackFlag,
                       " is a simulation-only setting: fedmi-client never tampers with its "
                       "updates (`fedmi sim --attack` starts fedmi-sim-site for that)"));
    }
  }
  const std::string config_file = ConfigFileInArgs(argc, argv);
  if (config_file.empty()) return absl::OkStatus();
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(config_file);
  } catch (const CLI::Error&) {
    // Parsing reports a missing or malformed config as it always does.
    return absl::OkStatus();
  }
  for (const CLI::ConfigItem& item : items) {
    std::vector<std::string> path = item.parents;
    path.push_back(item.name);
    for (size_t i = 0; i < path.size(); ++i) {
      if (!absl::StartsWith(path[i], kAttackKey)) continue;
      // The key as the operator wrote it: "attack", or a table "[attack]".
      const std::string key =
          absl::StrJoin(std::vector<std::string>(path.begin(), path.begin() + i + 1), ".");
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s sets '%s', a simulation-only setting: fedmi-client never tampers with its "
          "updates; remove it",
          config_file, key));
    }
  }
  return absl::OkStatus();
}

}  // namespace fedmi
