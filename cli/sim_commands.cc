// `fedmi sim`: a whole federation on this machine. It splits a MedMNIST
// dataset into one shard per site, starts the real fedmi-coordinator and
// fedmi-client binaries on loopback (cli/local_federation.h), trains, and
// tests the final model on the held-out split.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/dp_flags.h"
#include "cli/local_federation.h"
#include "cli/model_files.h"
#include "cli/optimizer_flags.h"
#include "cli/recipe_flags.h"
#include "cli/run_progress.h"
#include "cli/run_status_text.h"
#include "cli/secagg_flags.h"
#include "cli/sim_compare.h"
#include "cli/sim_label_flags.h"
#include "cli/strategy_flags.h"
#include "client/sim_attack.h"
#include "common/base/cpu_share.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/data/data_split.h"
#include "common/data/partition.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_names.h"
#include "common/runspec/model_task.h"

namespace fedmi::cli {
namespace {

// The data lookup order scripts/demo.sh follows too (README.md, docs/data.md):
// --data, then $FEDMI_DATA, then ../shared/data next to the checkout. A set
// $FEDMI_DATA is used even when it names nothing, so that the error names it.
std::string DefaultDataPath() {
  if (const char* env = std::getenv("FEDMI_DATA"); env != nullptr && *env != '\0') return env;
  return "../shared/data/pneumoniamnist.npz";
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
  DpFlags dp;
  RecipeFlags recipe;
  StrategyFlags strategy;
  OptimizerFlags optimization;
  std::vector<std::string> attack;  // SITE:KIND, simulation only
  SimLabelFlags labels;
  std::string class_names;  // the final model's card, comma-separated
};

// One line per site: its shard's size and class balance.
void PrintShard(const SiteShardReport& shard) {
  int64_t train = 0, val = 0;
  for (int64_t c : shard.train_class_counts) train += c;
  for (int64_t c : shard.val_class_counts) val += c;
  std::cout << "  " << shard.site << ": " << train << " train, " << val << " val; train classes";
  for (int64_t c : shard.train_class_counts) std::cout << " " << c;
  std::cout << "\n";
}

// Every site in every round; InvalidArgument for secure-aggregation flags that
// do not fit the federation.
absl::StatusOr<v1::RunSpec> SimSpec(const SimOptions& options) {
  v1::RunSpec spec;
  spec.set_model(options.model);
  ApplyStrategyFlags(options.strategy, &spec);
  ApplyOptimizerFlags(options.optimization, &spec);
  spec.set_rounds(options.rounds);
  spec.set_min_sites(options.sites);
  spec.set_local_epochs(options.local_epochs);
  spec.set_batch_size(options.batch_size);
  spec.set_lr(options.lr);
  spec.set_optimizer(options.optimizer);
  spec.set_seed(options.seed);
  spec.set_num_classes(2);
  RETURN_IF_ERROR(ApplySecAggFlags(options.secagg, options.sites, &spec));
  RETURN_IF_ERROR(ApplyDpFlags(options.dp, &spec));
  RETURN_IF_ERROR(ApplyRecipeFlags(options.recipe, &spec));
  return spec;
}

// The sites' pooled validation metrics of each round: AUC and the
// threshold's metrics for a classifier, overlap for a segmentation model.
// The caption keeps them from being read as the test results printed at the end.
std::string RoundHeader(bool segmentation) {
  return std::string("  each round's global model on the sites' validation data, pooled:\n") +
         (segmentation ? "  round   loss     dice     iou      img-dice seconds"
                       : "  round   loss     auc      acc      sens     spec     seconds");
}

std::string RoundLine(const v1::RoundStatus& round, int rounds, bool segmentation) {
  const v1::Metrics& m = round.eval_metrics();
  const double seconds = round.finished_at() - round.started_at();
  if (segmentation) {
    return absl::StrFormat("  %3d/%-3d %-8s %-8s %-8s %-8s %.1f", round.round(), rounds,
                           FormatMetric(m.loss()), FormatMetric(m.dice()), FormatMetric(m.iou()),
                           FormatMetric(m.mean_image_dice()), seconds);
  }
  return absl::StrFormat("  %3d/%-3d %-8s %-8s %-8s %-8s %-8s %.1f", round.round(), rounds,
                         FormatMetric(m.loss()), FormatMetric(m.auc()), FormatMetric(m.accuracy()),
                         FormatMetric(m.sensitivity()), FormatMetric(m.specificity()), seconds);
}

// A segmentation model's test scores; `fedmi model evaluate` prints the same.
std::string SegmentationTestText(const SegmentationCounts& c, double loss) {
  return absl::StrFormat(
      "final model on the test split (%d images): dice %s  iou %s  mean image dice %s  hd95 %s "
      "px  loss %s\n",
      c.images, FormatMetric(c.PooledDice()), FormatMetric(c.PooledIou()),
      FormatMetric(c.MeanDice()), FormatMetric(c.MeanHausdorff95()), FormatMetric(loss));
}

nlohmann::json SegmentationTestJson(const SegmentationCounts& c, double loss) {
  return {{"examples", c.images},
          {"dice", JsonNumber(c.PooledDice())},
          {"iou", JsonNumber(c.PooledIou())},
          {"mean_image_dice", JsonNumber(c.MeanDice())},
          {"hd95", JsonNumber(c.MeanHausdorff95())},
          {"loss", JsonNumber(loss)}};
}

int RunSim(const GlobalOptions& global, SimOptions options, SimObserver* observer = nullptr) {
  if (options.sites < 1) return ReportUsageError("--sites must be at least 1");
  if (options.rounds < 1) return ReportUsageError("--rounds must be at least 1");
  if (absl::Status names = CheckClassNames(SplitClassNames(options.class_names), 2); !names.ok()) {
    return ReportUsageError(std::string(names.message()));
  }
  auto attacks = ParseSiteAttacks(options.attack, options.sites);
  if (!attacks.ok()) return ReportUsageError(std::string(attacks.status().message()));
  auto label_flags = SiteLabelFlags(options.labels, options.sites);
  if (!label_flags.ok()) return ReportUsageError(std::string(label_flags.status().message()));
  auto round_models = RoundsToExport(options.labels, options.rounds);
  if (!round_models.ok()) return ReportUsageError(std::string(round_models.status().message()));
  const bool from_environment = options.data.empty() && std::getenv("FEDMI_DATA") != nullptr &&
                                *std::getenv("FEDMI_DATA") != '\0';
  if (options.data.empty()) options.data = DefaultDataPath();
  if (access(options.data.c_str(), R_OK) != 0) {
    return ReportError(absl::NotFoundError(absl::StrCat(
        "data file ", options.data, " not found", from_environment ? " (named by $FEDMI_DATA)" : "",
        ". Looked at --data, then $FEDMI_DATA, then ../shared/data/pneumoniamnist.npz. Get "
        "PneumoniaMNIST (pneumoniamnist.npz) from the MedMNIST release "
        "(https://medmnist.com, Zenodo record 10519652) and pass --data or set FEDMI_DATA.")));
  }
  auto partition = ParsePartitionKind(options.partition);
  if (!partition.ok()) return ReportUsageError(std::string(partition.status().message()));
  auto work_dir = MakeWorkDir(options.work_dir, "fedmi-sim");
  if (!work_dir.ok()) return ReportError(work_dir.status());
  // The CPUs this process may use (affinity, cgroup quota), one share per
  // site; the sites would share them the same way unasked, but only once all
  // had started.
  const int threads =
      options.threads > 0 ? options.threads : std::max(1, AllowedCpus() / options.sites);
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
  auto shards = options.labels.shards.empty()
                    ? SplitDataset(split)
                    : DescribeShards(options.labels.shards, options.sites);
  if (!shards.ok()) return ReportError(shards.status());
  for (const auto& shard : *shards) PrintShard(shard);
  std::map<std::string, AttackKind> attack_of;
  nlohmann::json attacks_json = nlohmann::json::array();
  for (const SiteAttack& attack : *attacks) {
    std::cout << "  SIMULATED ATTACK: " << attack.site << " (" << AttackKindName(attack.kind)
              << ") " << DescribeAttack(attack.kind) << "\n";
    attack_of[attack.site] = attack.kind;
    attacks_json.push_back({{"site", attack.site}, {"kind", AttackKindName(attack.kind)}});
  }
  for (const auto& shard : *shards) {
    auto attack = attack_of.find(shard.site);
    if (attack == attack_of.end() || attack->second != AttackKind::kLabelFlip) continue;
    // Validation labels stay true: the federation's metrics measure the
    // real task, not the attacker's.
    if (absl::Status status = FlipShardTrainingLabels(
            shard.path, static_cast<int64_t>(shard.train_class_counts.size()));
        !status.ok()) {
      return ReportError(status);
    }
  }

  auto spec = SimSpec(options);
  if (!spec.ok()) return ReportUsageError(std::string(spec.status().message()));
  // Every simulated site is the operator's own: its policy allows the model
  // they asked for (the default policy lists only cnn, cnn-gn and
  // resnet18), and when they asked for the coordinator to add site-level
  // noise, that too.
  const std::string site_policy = *work_dir + "/site-policy.toml";
  {
    std::ofstream policy(site_policy);
    policy << "allowed_models = [\"" << options.model << "\"]\n";
    if (IsSiteLevelDp(*spec) && spec->dp().noise_placement() == v1::DP_NOISE_CENTRAL) {
      policy << "allow_central_dp_noise = true\n";
      std::cout << "  sites trust the coordinator to add the DP noise (" << site_policy << ")\n";
    }
  }

  auto started_federation = LocalFederation::Start(*work_dir, global.insecure);
  if (!started_federation.ok()) return ReportError(started_federation.status());
  LocalFederation& federation = **started_federation;
  for (const auto& shard : *shards) {
    SiteOptions site;
    site.name = shard.site;
    site.data = shard.path;
    site.threads = threads;
    site.policy = site_policy;
    site.extra_flags = (*label_flags)[shard.site];
    if (auto attack = attack_of.find(shard.site);
        attack != attack_of.end() && PoisonsModel(attack->second)) {
      site.attack = AttackKindName(attack->second);
    }
    if (absl::Status status = federation.AddSite(site); !status.ok()) return ReportError(status);
  }
  if (absl::Status status = federation.WaitForSites(absl::Seconds(120)); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "  coordinator on " << federation.address() << " ("
            << federation.project().transport_name() << "), all sites connected" << std::endl;

  auto run_id = federation.admin().StartRun(*spec);
  if (!run_id.ok()) return ReportError(run_id.status());
  // The spec as the coordinator completed it (DP noise and sample rate, the
  // encoding's clip for distributed DP noise).
  auto started_run = federation.admin().GetRun(*run_id);
  if (!started_run.ok()) return ReportError(started_run.status());
  std::cout << "  run " << *run_id << " started, secure aggregation "
            << DescribeSecAgg(started_run->spec())
            << "\n  training: " << DescribeRecipe(started_run->spec()) << "\n";
  if (const std::string optimization = DescribeOptimization(started_run->spec());
      !optimization.empty()) {
    std::cout << "  optimization: " << optimization << "\n";
  }
  if (HasDifferentialPrivacy(started_run->spec())) {
    std::cout << "  differential privacy: " << DescribeDp(started_run->spec().dp()) << "\n";
  }
  const bool segmentation = IsSegmentationRun(started_run->spec());
  std::cout << RoundHeader(segmentation) << std::endl;

  nlohmann::json rounds = nlohmann::json::array();
  RunProgressWriter progress(&std::cerr, StderrBarFits(), "fedmi sim", StderrColumns());
  auto show_progress = [&](const v1::RunStatus& run) { progress.Update(run); };
  auto final_status = WatchRunToEnd(
      federation.admin(), *run_id,
      [&](const v1::RoundStatus& round) {
        progress.Clear();
        std::cout << RoundLine(round, options.rounds, segmentation) << std::endl;
        if (observer != nullptr) observer->OnRound(round);
        nlohmann::json entry = MetricsJson(round.eval_metrics());
        entry["round"] = round.round();
        entry["seconds"] = round.finished_at() - round.started_at();
        rounds.push_back(entry);
      },
      show_progress);
  progress.Clear();
  if (!final_status.ok()) return ReportError(final_status.status());
  if (ParseRunState(final_status->state()) != RunState::kDone) {
    return ReportError(
        absl::InternalError(absl::StrCat("run ", *run_id, " ended ", final_status->state(), ": ",
                                         final_status->error(), "\n  logs: ", *work_dir, "/logs")));
  }
  if (observer != nullptr) {
    absl::Status observed =
        observer->OnRunDone(federation.admin(), *final_status, *work_dir, options.data);
    if (!observed.ok()) return ReportError(observed);
  }

  // The final model in both formats with weights: TorchScript for
  // torch.jit.load, safetensors for tools that only read weights.
  const std::string model_path = *work_dir + "/final-model.pt";
  const std::string safetensors_path = *work_dir + "/final-model.safetensors";
  // One download of the run and its weights serves both files.
  absl::StatusOr<v1::RunStatus> finished_run = federation.admin().GetRun(*run_id);
  if (!finished_run.ok()) return ReportError(finished_run.status());
  int32_t final_round = -1;
  absl::StatusOr<TensorBundle> final_weights =
      federation.admin().ExportModel(*run_id, -1, &final_round);
  if (!final_weights.ok()) return ReportError(final_weights.status());
  TorchModelRunner runner;
  auto write_model = [&](int32_t round, const TensorBundle& weights,
                         const std::string& path) -> absl::Status {
    ASSIGN_OR_RETURN(ExportFormat model_format, ResolveExportFormat(path, "", ""));
    model_format.class_names = SplitClassNames(options.class_names);
    return WriteRunModelFile(*finished_run, round, weights, path, model_format, &runner,
                             /*summary=*/nullptr);
  };
  for (const std::string& path : {model_path, safetensors_path}) {
    if (absl::Status status = write_model(final_round, *final_weights, path); !status.ok()) {
      return ReportError(status);
    }
  }
  nlohmann::json round_model_paths = nlohmann::json::array();
  for (int round : *round_models) {
    if (round > final_round) {
      // A private run ends early once its privacy budget is spent.
      return ReportError(absl::FailedPreconditionError(
          absl::StrCat("--round-models ", round, ": the run ended at round ", final_round,
                       "; its final model is ", model_path)));
    }
    const std::string path = absl::StrCat(*work_dir, "/round-", round, "-model.pt");
    absl::StatusOr<TensorBundle> weights = federation.admin().ExportModel(*run_id, round, nullptr);
    if (!weights.ok()) return ReportError(weights.status());
    if (absl::Status status = write_model(round, *weights, path); !status.ok()) {
      return ReportError(status);
    }
    round_model_paths.push_back(path);
  }
  auto test = EvaluateModelOnSplit(model_path, options.data, "test");
  if (!test.ok() && !attacks->empty()) {
    // E.g. NaN predictions: noise on BatchNorm's running variances can make
    // them negative, and plain FedAvg passes that on.
    return ReportError(absl::Status(
        test.status().code(),
        absl::StrCat("testing the final model: ", test.status().message(),
                     "\n  the simulated attacks may have ruined it; a robust --strategy (median, "
                     "trimmed_mean, krum, multikrum) resists them")));
  }
  if (!test.ok()) return ReportError(test.status());
  // The threshold the federation chose on its validation data, as a
  // hospital would deploy the model. A segmentation model has none.
  absl::StatusOr<std::optional<StoredThresholdMetrics>> at_threshold = std::nullopt;
  if (!test->segmentation.has_value()) {
    at_threshold = MetricsAtStoredThreshold(model_path, test->predictions);
    if (!at_threshold.ok()) return ReportError(at_threshold.status());
  }
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
  if (test->segmentation.has_value()) {
    std::cout << SegmentationTestText(*test->segmentation, test->loss);
  } else {
    std::cout << absl::StrFormat(
                     "final model on the test split (%d images): auc %s  accuracy %s  "
                     "sensitivity %s  specificity %s  f1 %s  loss %s\n",
                     test->metrics.examples, FormatMetric(test->metrics.auc),
                     FormatMetric(test->metrics.accuracy), FormatMetric(test->metrics.sensitivity),
                     FormatMetric(test->metrics.specificity), FormatMetric(test->metrics.f1),
                     FormatMetric(test->loss))
              << (*at_threshold
                      ? absl::StrFormat(
                            "  at the threshold chosen on the sites' validation data (%s, %.3f): "
                            "accuracy %s  sensitivity %s  specificity %s  f1 %s\n",
                            (*at_threshold)->stored.method, (*at_threshold)->stored.threshold,
                            FormatMetric((*at_threshold)->metrics.accuracy),
                            FormatMetric((*at_threshold)->metrics.sensitivity),
                            FormatMetric((*at_threshold)->metrics.specificity),
                            FormatMetric((*at_threshold)->metrics.f1))
                      : std::string("  no operating threshold was chosen (a class is missing from "
                                    "the validation data)\n"));
  }
  std::cout << "  model: " << model_path << " (and " << safetensors_path << ")\n"
            << absl::StrFormat("  wall time %.1f s", wall) << std::endl;
  nlohmann::json privacy_json = nullptr;
  if (final_status->has_privacy()) {
    const v1::PrivacyBudget& budget = final_status->privacy();
    std::cout << absl::StrFormat(
        "  privacy: epsilon %s spent of %g at delta %g over %d round(s)%s\n",
        FormatEpsilon(budget.epsilon_spent()), budget.target_epsilon(), budget.delta(),
        budget.rounds_accounted(),
        final_status->error().empty() ? "" : absl::StrCat(" (", final_status->error(), ")"));
    privacy_json = PrivacyJson(budget);
    privacy_json["dp"] = DpSettingsToJson(final_status->spec().dp());
  }

  nlohmann::json result = {
      {"run_id", *run_id},
      {"sites", options.sites},
      {"rounds", options.rounds},
      {"model", options.model},
      {"partition", options.partition},
      {"alpha", options.alpha},
      {"seed", options.seed},
      {"secure_aggregation", spec->secure_aggregation()},
      {"attacks", attacks_json},
      {"per_round", rounds},
      {"task", segmentation ? "segmentation" : "classification"},
      {"test", test->segmentation.has_value()
                   ? SegmentationTestJson(*test->segmentation, test->loss)
                   : nlohmann::json{{"examples", test->metrics.examples},
                                    {"auc", JsonNumber(test->metrics.auc)},
                                    {"accuracy", JsonNumber(test->metrics.accuracy)},
                                    {"sensitivity", JsonNumber(test->metrics.sensitivity)},
                                    {"specificity", JsonNumber(test->metrics.specificity)},
                                    {"f1", JsonNumber(test->metrics.f1)},
                                    {"loss", JsonNumber(test->loss)},
                                    {"operating_threshold",
                                     *at_threshold ? StoredThresholdMetricsJson(**at_threshold)
                                                   : nlohmann::json(nullptr)}}},
      {"final_model", model_path},
      {"final_model_safetensors", safetensors_path},
      {"round_models", round_model_paths},
      {"audit", audit_json},
      {"privacy", privacy_json},
      {"wall_seconds", wall}};
  if (!options.json_out.empty()) {
    std::ofstream out(options.json_out);
    out << result.dump(2) << "\n";
    if (!out) return ReportError(absl::InternalError("cannot write " + options.json_out));
  }
  if (options.json) PrintJsonLine(result);
  if (observer != nullptr) observer->OnSummary(result);
  return kExitOk;
}

// Every flag of `fedmi sim`, bound to `sim_options`.
void AddSimFlags(CLI::App* sim, SimOptions* sim_options) {
  sim->add_option("--sites", sim_options->sites, "number of hospital sites")->capture_default_str();
  sim->add_option("--rounds", sim_options->rounds, "federated rounds")->capture_default_str();
  sim->add_option("--data", sim_options->data,
                  "MedMNIST .npz (default: $FEDMI_DATA, else ../shared/data/pneumoniamnist.npz)");
  sim->add_option("--partition", sim_options->partition, "iid | dirichlet | quantity")
      ->capture_default_str();
  sim->add_option("--alpha", sim_options->alpha, "Dirichlet concentration (smaller = more skew)")
      ->capture_default_str();
  sim->add_option("--model", sim_options->model,
                  absl::StrCat("architecture: ", absl::StrJoin(TrainableModelNames(), " | "),
                               " (see fedmi model list)"))
      ->capture_default_str();
  sim->add_option("--local-epochs", sim_options->local_epochs, "local epochs per round")
      ->capture_default_str();
  sim->add_option("--class-names", sim_options->class_names,
                  "the classes' names in index order for the final model's card, e.g. "
                  "normal,pneumonia");
  sim->add_option("--batch-size", sim_options->batch_size, "images per training step at each site")
      ->capture_default_str();
  sim->add_option("--lr", sim_options->lr, "learning rate")->capture_default_str();
  sim->add_option("--optimizer", sim_options->optimizer, "adam | sgd")->capture_default_str();
  sim->add_option("--seed", sim_options->seed, "seeds the split, the model and training")
      ->capture_default_str();
  sim->add_option("--threads", sim_options->threads,
                  "LibTorch threads per site (default: the CPUs this process may use / sites, at "
                  "least 1)");
  sim->add_option("--json-out", sim_options->json_out, "write the JSON summary to this file");
  sim->add_option("--work-dir", sim_options->work_dir,
                  "keep shards, state and logs here (default: a new /tmp directory)");
  sim->add_flag("--json", sim_options->json, "print the JSON summary as the last line");
  AddSecAggOptions(sim, &sim_options->secagg);
  AddDpOptions(sim, &sim_options->dp);
  AddRecipeOptions(sim, &sim_options->recipe);
  AddStrategyOptions(sim, &sim_options->strategy);
  AddOptimizerOptions(sim, &sim_options->optimization);
  AddSimLabelOptions(sim, &sim_options->labels);
  sim->add_option(
         "--attack", sim_options->attack,
         absl::StrCat(
             "SITE:KIND, repeatable; simulation only: the site (site-K or K, 1-based) attacks. "
             "KIND: sign-flip sends w_global - d, where d is its trained change; scaled sends "
             "w_global + ",
             kScaledAttackFactor, " d; gaussian sends its weights plus N(0, ",
             kGaussianAttackStddev,
             "^2) noise per element, seeded by --seed, round and site; label-flip trains on "
             "training labels y -> (y + 1) mod C (validation labels stay true). The first "
             "three run the site as fedmi-sim-site; fedmi-client has no such setting"))
      ->type_name("SITE:KIND");
}

// `base` with a comparison entry's flags parsed on top by sim's own parser,
// so that every sim flag means the same in an entry.
absl::StatusOr<SimOptions> WithEntryFlags(const SimOptions& base,
                                          const std::vector<std::string>& args) {
  SimOptions options = base;
  CLI::App parser("a --compare entry's flags", "fedmi sim");
  AddSimFlags(&parser, &options);
  try {
    parser.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::ParseError& error) {
    return absl::InvalidArgumentError(error.what());
  }
  RETURN_IF_ERROR(SimSpec(options).status());
  return options;
}

SimDriver CompareDriver(const GlobalOptions& global, const SimOptions& base) {
  SimDriver driver;
  driver.seed = base.seed;
  driver.rounds = base.rounds;
  driver.work_dir = base.work_dir;
  driver.json_out = base.json_out;
  driver.json = base.json;
  driver.check_flags = [base](const std::vector<std::string>& args) {
    return WithEntryFlags(base, args).status();
  };
  driver.run = [&global, base](const std::vector<std::string>& args, uint64_t seed,
                               const std::string& work_dir, SimObserver& observer) {
    absl::StatusOr<SimOptions> options = WithEntryFlags(base, args);
    if (!options.ok()) return ReportUsageError(std::string(options.status().message()));
    options->seed = seed;
    options->work_dir = work_dir;
    options->json = false;
    options->json_out.clear();
    return RunSim(global, *std::move(options), &observer);
  };
  return driver;
}

}  // namespace

void AddSimCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  auto sim_options = std::make_shared<SimOptions>();
  auto compare = std::make_shared<CompareOptions>();
  CLI::App* sim = app.add_subcommand(
      "sim",
      "Run a whole federation on this machine: split the data, start a coordinator and "
      "one client process per site on loopback, train, and test the final model; with "
      "--compare, several strategies side by side");
  AddSimFlags(sim, sim_options.get());
  AddCompareOptions(sim, compare.get());
  sim->callback([&global, &result, sim_options, compare, sim] {
    RunCommand(result, [&] {
      if (std::string misuse = CompareFlagsWithoutFile(*sim, *compare); !misuse.empty()) {
        return ReportUsageError(misuse);
      }
      if (!compare->file.empty()) {
        return RunSimCompare(*compare, CompareDriver(global, *sim_options));
      }
      return RunSim(global, *sim_options);
    });
  });
}

}  // namespace fedmi::cli
