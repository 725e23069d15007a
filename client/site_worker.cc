#include "client/site_worker.h"

#include <cctype>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/ml/local_model.h"
#include "common/base/cpu_share.h"
#include "common/base/large_buffer.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/data/metrics.h"
#include "common/evaluation/operating_threshold.h"
#include "common/evaluation/segmentation_metrics.h"
#include "common/privacy/dp_plan.h"
#include "common/privacy/site_update.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_task.h"
#include "common/runspec/site_algorithms.h"
#include "common/runspec/strategy_names.h"
#include "common/runspec/training_recipe.h"
#include "common/runspec/transfer.h"
#include "common/tensor/bundle_transfer.h"
#include "common/tensor/synthetic_model.h"

namespace fedmi {
namespace {

constexpr int64_t kMaxSyntheticParams = int64_t{1} << 31;

// norm_bounded: the L2 bound this site clips its change to.
absl::StatusOr<double> SiteNormBound(const v1::RunSpec& spec) {
  const double bound = spec.robust().norm_bound();
  if (!(bound > 0) || !std::isfinite(bound)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the run's strategy is norm_bounded but its norm_bound is ", bound,
                     "; the site clips its change to it and needs a finite bound > 0"));
  }
  return bound;
}

// norm_bounded: scales the change of `weights` from `global` down to the
// run's bound. Every site does, masked round or not: under secure
// aggregation the coordinator cannot clip, and without it the bound does not
// rest on the coordinator alone (which clips again, to no effect).
absl::Status ClipToNormBound(int64_t run_id, int32_t round, const v1::RunSpec& spec,
                             const TensorBundle& global, TensorBundle* weights) {
  if (!ReadsNormBound(spec.strategy())) return absl::OkStatus();
  ASSIGN_OR_RETURN(const double bound, SiteNormBound(spec));
  ASSIGN_OR_RETURN(privacy::ClippedSiteUpdate clipped,
                   privacy::ClipSiteUpdate(global, bound, /*noise_stddev=*/0,
                                           /*noise=*/nullptr, weights));
  FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": norm_bounded, update norm "
                  << clipped.norm << (clipped.clipped ? " clipped to " : " within the bound ")
                  << bound;
  return absl::OkStatus();
}

v1::Metrics ToProto(const BinaryMetrics& metrics, double loss) {
  v1::Metrics out;
  out.set_examples(metrics.examples);
  out.set_loss(loss);
  out.set_auc(metrics.auc);
  out.set_accuracy(metrics.accuracy);
  out.set_sensitivity(metrics.sensitivity);
  out.set_specificity(metrics.specificity);
  out.set_f1(metrics.f1);
  return out;
}

bool IsSynthetic(const v1::RunSpec& spec) { return spec.model() == "synthetic"; }

// Overlap of a model's predicted masks with the truth of `data`, image by
// image; only these sums leave the site.
v1::Metrics SegmentationReport(const ImageSet& data, const ml::Predictions& predictions) {
  SegmentationCounts counts;
  const int64_t plane = data.height * data.width;
  for (int64_t i = 0; i < data.size(); ++i) {
    counts.Add(
        CountOverlap(predictions.masks.data() + i * plane, data.masks.data() + i * plane, plane));
  }
  v1::Metrics report;
  report.set_examples(data.size());
  report.set_loss(predictions.loss);
  // Undefined for masks (not 0), so the round's example-weighted means of
  // them are undefined too (WeightedMean skips non-finite values).
  const double undefined = std::nan("");
  report.set_auc(undefined);
  report.set_accuracy(undefined);
  report.set_sensitivity(undefined);
  report.set_specificity(undefined);
  report.set_f1(undefined);
  report.set_dice(counts.PooledDice());
  report.set_iou(counts.PooledIou());
  report.set_mean_image_dice(counts.MeanDice());
  v1::SegmentationOverlap* overlap = report.mutable_overlap();
  overlap->set_intersection(counts.intersection);
  overlap->set_predicted(counts.prediction);
  overlap->set_truth(counts.truth);
  overlap->set_images(counts.images);
  overlap->set_image_dice_sum(counts.dice_sum);
  return report;
}

DataGeometry GeometryOfData(const std::optional<SiteDataset>& data, bool first_frame_only) {
  DataGeometry geometry;
  if (!data) return geometry;
  // Non-square images match no run: a run's input is square.
  geometry.image_size = data->train.height == data->train.width ? data->train.height : -1;
  geometry.channels = data->train.channels;
  geometry.first_frame_only = first_frame_only;
  geometry.with_masks = data->train.has_masks();
  return geometry;
}

SitePolicy EffectivePolicy(const std::optional<SitePolicy>& configured, bool has_data) {
  if (configured) return *configured;
  SitePolicy policy = SitePolicy::Defaults();
  if (!has_data) policy.allowed_models.push_back("synthetic");
  return policy;
}

// The spec's augmentation as LibTorch training takes it: a crop keeps
// aspect ratios within [3/4, 4/3], like torchvision's RandomResizedCrop.
ml::AugmentationOptions AugmentationOf(const v1::RunSpec& spec) {
  const v1::Augmentation augmentation = EffectiveAugmentation(spec);
  ml::AugmentationOptions options;
  options.max_shift = augmentation.shift_pixels();
  if (augmentation.crop_min_scale() > 0 && augmentation.crop_min_scale() < 1) {
    options.crop_min_scale = augmentation.crop_min_scale();
    options.crop_max_aspect = 4.0 / 3.0;
  }
  options.max_rotation_degrees = augmentation.rotation_degrees();
  options.horizontal_flip = augmentation.horizontal_flip();
  options.brightness = augmentation.brightness();
  options.contrast = augmentation.contrast();
  return options;
}

}  // namespace

// Turns ml::TrainOptions::progress calls into TrainingProgress for the
// observer, timing each epoch (DP-SGD: the whole training) from the end of
// the previous one (the first from now).
std::function<void(int, int64_t, int64_t, double)> SiteWorker::ProgressReporter(
    int64_t run_id, int32_t round, const v1::RunSpec& spec) const {
  struct Clock {
    int epoch = 0;
    absl::Time epoch_start = absl::Now();
    absl::Time last_batch = epoch_start;
  };
  auto clock = std::make_shared<Clock>();
  TrainingProgress base;
  base.run_id = run_id;
  base.round = round;
  base.epochs = spec.local_epochs();
  base.dp_steps = HasDifferentialPrivacy(spec) && !IsSiteLevelDp(spec);
  TrainingObserver* observer = options_.training_observer;
  return [observer, clock, base](int epoch, int64_t done, int64_t total, double loss) {
    const absl::Time now = absl::Now();
    if (epoch != clock->epoch) {
      clock->epoch = epoch;
      clock->epoch_start = clock->last_batch;
    }
    clock->last_batch = now;
    TrainingProgress progress = base;
    progress.epoch = epoch;
    progress.done = done;
    progress.total = total;
    progress.loss = loss;
    progress.epoch_seconds = absl::ToDoubleSeconds(now - clock->epoch_start);
    observer->OnTrainingProgress(progress);
  };
}

absl::StatusOr<TensorBundle> TrainedPart(const v1::RunSpec& spec, int32_t round,
                                         const TensorBundle& model) {
  std::vector<std::string> names;
  names.reserve(model.specs.size());
  for (const TensorSpec& tensor : model.specs) names.push_back(tensor.name);
  return SelectTensors(model, TrainedTensorNames(spec, names, round));
}

DataGeometry GeometryOf(const v1::RunSpec& spec) {
  DataGeometry geometry;
  geometry.image_size = InputImageSize(spec);
  geometry.channels = InputChannels(spec);
  geometry.first_frame_only = spec.first_frame_only();
  geometry.with_masks = IsSegmentationRun(spec);
  return geometry;
}

SiteWorker::SiteWorker(SiteWorkerOptions options, std::optional<SiteDataset> data)
    : options_(std::move(options)),
      // A site whose data may be read later is a hospital, not a benchmark.
      policy_(EffectivePolicy(options_.policy, data.has_value() || bool(options_.reload_data))),
      data_(std::move(data)),
      data_geometry_(GeometryOfData(data_, options_.data_first_frame_only)),
      data_version_(options_.data_version ? options_.data_version() : ""),
      train_count_(data_ ? data_->train.size() : 0),
      val_count_(data_ ? data_->val.size() : 0),
      active_learning_(options_.active_learning),
      privacy_ledger_(options_.privacy_dir, *options_.env),
      // Per site: sites started without kits share a working directory.
      scaffold_controls_(absl::StrCat(options_.state_dir.empty() ? "state" : options_.state_dir,
                                      "/scaffold/", options_.site),
                         *options_.env) {
  if (options_.threads > 0) {
    ml::SetThreads(options_.threads);
  } else {
    UseCpuShare();
  }
}

void SiteWorker::UseCpuShare() {
  const CpuShare share = MeasureCpuShare();
  if (share.threads == threads_in_use_) return;
  ml::SetThreads(share.threads);
  threads_in_use_ = share.threads;
  FEDMI_LOG(INFO) << "training with " << share.threads << " thread(s): " << share.cpus
                  << " CPU(s) shared by " << share.daemons
                  << " site daemon(s) on this machine (--threads sets a number)";
}

SiteWorker::~SiteWorker() = default;

int64_t SiteWorker::train_examples() const { return train_count_; }
int64_t SiteWorker::val_examples() const { return val_count_; }

absl::Status SiteWorker::CheckTask(const v1::RunSpec& spec) const {
  RETURN_IF_ERROR(policy_.Check(spec));
  RETURN_IF_ERROR(CheckCapability(spec));
  // Last, so that the operator is asked only about specs the site could run.
  if (options_.approver != nullptr) {
    RETURN_IF_ERROR(options_.approver->Approve(spec, RunSpecSha256Hex(spec)));
  }
  return absl::OkStatus();
}

absl::Status SiteWorker::CheckCapability(const v1::RunSpec& spec) const {
  // The coordinator checks these at run start; a site does not rely on it.
  RETURN_IF_ERROR(CheckSiteAlgorithms(spec));
  if (IsSynthetic(spec)) {
    if (spec.synthetic_params() <= 0 || spec.synthetic_params() > kMaxSyntheticParams) {
      return absl::InvalidArgumentError(absl::StrCat("synthetic_params must be in [1, ",
                                                     kMaxSyntheticParams, "], got ",
                                                     spec.synthetic_params()));
    }
    return absl::OkStatus();
  }
  const auto known = ml::ListArchitectures();
  if (spec.model() != kCustomModel &&
      std::find(known.begin(), known.end(), spec.model()) == known.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", spec.model(),
        "' is not available at this site (known: ", absl::StrJoin(known, ", "), ", synthetic)"));
  }
  if (!data_) {
    // Data unusable as read at start (multi-frame files without the
    // first-frame option, ...) may still be usable as this run asks:
    // DataFor tries.
    if (options_.reload_data) return absl::OkStatus();
    if (!options_.data_problem.ok()) {
      // The reason names files, which may name patients: it stays in the
      // site's log.
      return absl::FailedPreconditionError(
          absl::StrCat("site '", options_.site, "' cannot use its data (",
                       absl::StatusCodeToString(options_.data_problem.code()),
                       "; the reason is in the site's log)"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("site '", options_.site, "' has no data configured (--data)"));
  }
  if (IsSegmentationRun(spec) && !data_->train.has_masks() && !options_.reload_data) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site '", options_.site, "' has no masks in its data; a segmentation run needs them"));
  }
  return CheckClasses(*data_, spec);
}

absl::Status SiteWorker::CheckClasses(const SiteDataset& data, const v1::RunSpec& spec) {
  if (data.num_classes > spec.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local data has ", data.num_classes, " classes but the run trains ", spec.num_classes()));
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorBundle> SiteWorker::FetchArtifact(int64_t run_id,
                                                       const std::string& sha256_hex) {
  if (!artifact_source_) {
    return absl::FailedPreconditionError("this site cannot fetch the run's artifacts");
  }
  ASSIGN_OR_RETURN(TensorBundle bundle, artifact_source_(run_id, sha256_hex));
  // The hash the site's policy and operator approved is the only proof that
  // these are the bytes they approved.
  if (BodySha256Hex(bundle) != sha256_hex) {
    return absl::DataLossError(absl::StrCat("the coordinator sent other bytes for artifact ",
                                            ShortHash(sha256_hex), " than its hash says"));
  }
  return bundle;
}

absl::StatusOr<std::unique_ptr<ml::LocalModel>> SiteWorker::CreateModel(int64_t run_id,
                                                                        const v1::RunSpec& spec) {
  ml::ModelConfig config;
  config.arch = spec.model();
  config.num_classes = spec.num_classes();
  config.seed = spec.seed();
  config.channels = InputChannels(spec);
  config.height = config.width = InputImageSize(spec);
  config.base_width = spec.unet().base_width();
  config.depth = spec.unet().depth();
  if (spec.model() != kCustomModel) return ml::LocalModel::Create(config);
  ASSIGN_OR_RETURN(TensorBundle file, FetchArtifact(run_id, spec.model_file_sha256()));
  ASSIGN_OR_RETURN(std::string bytes, FileOfBundle(file));
  return ml::LocalModel::LoadUserModule(bytes, config, spec.task() == v1::MODEL_TASK_SEGMENTATION);
}

absl::StatusOr<ml::LocalModel*> SiteWorker::ModelFor(int64_t run_id, const v1::RunSpec& spec) {
  auto it = models_.find(run_id);
  if (it != models_.end()) return it->second.get();
  ASSIGN_OR_RETURN(auto model, CreateModel(run_id, spec));
  ml::LocalModel* raw = model.get();
  models_[run_id] = std::move(model);
  return raw;
}

absl::StatusOr<TensorBundle> SiteWorker::BuildInitialModel(const v1::RunSpec& spec,
                                                           int64_t run_id) {
  RETURN_IF_ERROR(CheckTask(spec));
  if (IsSynthetic(spec)) return SyntheticInitialModel(spec.synthetic_params());
  ASSIGN_OR_RETURN(auto model, CreateModel(run_id, spec));
  ASSIGN_OR_RETURN(TensorBundle initial, model->ExportWeights());
  ASSIGN_OR_RETURN(initial, WithInitialWeights(run_id, spec, std::move(initial)));
  if (!spec.scaffold()) return initial;
  // The server control variate starts at zero.
  ASSIGN_OR_RETURN(TensorBundle zeros, ZeroControls(initial, model->ParameterNames()));
  return WithScaffoldControls(initial, zeros);
}

absl::StatusOr<TensorBundle> SiteWorker::WithInitialWeights(int64_t run_id, const v1::RunSpec& spec,
                                                            TensorBundle initial) {
  const v1::TransferSettings& transfer = spec.transfer();
  if (transfer.init_weights_sha256().empty()) return initial;
  ASSIGN_OR_RETURN(TensorBundle weights, FetchArtifact(run_id, transfer.init_weights_sha256()));
  InitialWeightsReport report;
  ASSIGN_OR_RETURN(TensorBundle started,
                   ApplyInitialWeights(initial, weights, transfer.init_allow_partial(), &report));
  FEDMI_LOG(INFO) << "run " << run_id << ": initial weights "
                  << ShortHash(transfer.init_weights_sha256()) << ": " << report.Summary();
  return started;
}

absl::StatusOr<LocalUpdate> SiteWorker::Train(int64_t run_id, int32_t round,
                                              const v1::RunSpec& spec, const TensorBundle& global,
                                              double dp_clip_norm) {
  RETURN_IF_ERROR(CheckTask(spec));
  // Before any data is touched, as the DP checks below.
  if (ReadsNormBound(spec.strategy())) RETURN_IF_ERROR(SiteNormBound(spec).status());
  if (options_.local_labels.active() && HasDifferentialPrivacy(spec) && !IsSiteLevelDp(spec)) {
    return absl::FailedPreconditionError(
        "this site trains with pseudo-labels or down-weighted suspect labels, which DP-SGD "
        "does not support (its accounting assumes every example weighs the same)");
  }
  LocalUpdate update;
  if (IsSiteLevelDp(spec)) {
    RETURN_IF_ERROR(SiteDpClip(spec, dp_clip_norm).status());
    // Charged before any data is touched, as for sample level.
    ASSIGN_OR_RETURN(update.dp_epsilon_spent,
                     privacy_ledger_.Charge(run_id, round, spec.dp(), policy_.max_epsilon));
  }
  if (IsSynthetic(spec)) {
    const int64_t k = SyntheticSiteIndex(options_.site);
    update.weights.specs = global.specs;
    ReserveLargeBuffer(&update.weights.body, global.body.size());
    update.weights.body.assign(global.body.begin(), global.body.end());
    ApplySyntheticDelta(k, &update.weights);
    update.examples = SyntheticExamples(k);
    update.train_metrics.set_examples(update.examples);
    return FinishUpdate(run_id, round, spec, dp_clip_norm, global, std::move(update));
  }
  ASSIGN_OR_RETURN(const SiteDataset* data, DataFor(spec));
  if (data->train.size() == 0) {
    return absl::FailedPreconditionError("local training split is empty");
  }
  ASSIGN_OR_RETURN(ml::LocalModel * model, ModelFor(run_id, spec));
  RETURN_IF_ERROR(model->ImportWeights(global));
  // Sites on this machine may have started or stopped since the last round.
  if (options_.threads <= 0) UseCpuShare();
  if (active_learning_.active() && !IsSegmentationRun(spec)) {
    active_learning_.AtRoundStart(*model, *data, run_id, round);
  }
  ml::TrainOptions options;
  options.epochs = spec.local_epochs();
  options.batch_size = spec.batch_size();
  options.lr = LearningRateForRound(spec, round);
  options.optimizer = spec.optimizer();
  options.augmentation = AugmentationOf(spec);
  options.weight_decay = spec.recipe().weight_decay();
  options.proximal_mu = spec.recipe().proximal_mu();
  std::optional<ScaffoldRound> scaffold;
  if (spec.scaffold()) {
    ASSIGN_OR_RETURN(scaffold, BeginScaffoldRound(run_id, round, spec, global));
    options.gradient_offset = scaffold->offset;
    options.sgd_momentum = 0;
  }
  if (FreezesInRound(spec, round)) {
    options.frozen_prefixes.assign(spec.transfer().freeze_prefixes().begin(),
                                   spec.transfer().freeze_prefixes().end());
  }
  // Distinct per site and round, reproducible from the run seed.
  options.seed = spec.seed() * 7919 + static_cast<uint64_t>(round) * 104729 +
                 std::hash<std::string>{}(options_.site) % 100003;
  if (HasDifferentialPrivacy(spec) && !IsSiteLevelDp(spec)) {
    const v1::DpSettings& dp = spec.dp();
    // CheckTask refused other levels already; never train without the noise.
    if (dp.level() != v1::DP_LEVEL_SAMPLE) {
      return absl::UnimplementedError("unknown differential privacy level");
    }
    // Charged before any data is touched: a refusal here costs nothing, and
    // a crash during training cannot leave the round unaccounted.
    ASSIGN_OR_RETURN(update.dp_epsilon_spent,
                     privacy_ledger_.Charge(run_id, round, dp, policy_.max_epsilon));
    options.dp = ml::DpSgdOptions{dp.clip_norm(), dp.noise_multiplier(), dp.sample_rate(),
                                  dp.steps_per_round(), options_.per_example_method};
  }
  RoundTrainingSet round_set;
  // Pseudo-labels and label weights are for classification: a segmentation
  // run trains on the masks as they are.
  if (options_.local_labels.active() && !IsSegmentationRun(spec)) {
    ASSIGN_OR_RETURN(round_set, BuildRoundTrainingSet(*model, *data, options_.local_labels, round));
    FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": training on "
                    << DescribeRoundTrainingSet(*data, options_.local_labels, round_set);
  }
  const ImageSet& trained_on = UseRoundTrainingSet(*data, round_set, options);
  if (options_.training_observer != nullptr) {
    options.progress = ProgressReporter(run_id, round, spec);
  }
  ASSIGN_OR_RETURN(ml::TrainSummary summary, model->Train(trained_on, options));
  if (options.dp) {
    FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": DP-SGD, " << summary.dp_steps
                    << " steps, " << static_cast<int>(summary.clipped_fraction * 100 + 0.5)
                    << "% of example gradients clipped to " << options.dp->clip_norm
                    << "; this site's epsilon for the run is now " << update.dp_epsilon_spent
                    << " at delta " << spec.dp().delta();
  }
  ASSIGN_OR_RETURN(update.weights, model->ExportWeights());
  if (scaffold) {
    ASSIGN_OR_RETURN(update.weights, FinishScaffoldRound(run_id, round, *scaffold, options.lr,
                                                         summary.steps, update.weights));
  }
  // Labelled images only: pseudo-labels are not more data to weigh this
  // site by, and secure aggregation's weight bound counts labelled ones.
  update.examples = ReportedExamples(data->train.size());
  update.train_metrics.set_examples(update.examples);
  update.train_metrics.set_loss(summary.loss);
  update.train_metrics.set_accuracy(summary.accuracy);
  return FinishUpdate(run_id, round, spec, dp_clip_norm, global, std::move(update));
}

absl::StatusOr<LocalUpdate> SiteWorker::FinishUpdate(int64_t run_id, int32_t round,
                                                     const v1::RunSpec& spec, double dp_clip_norm,
                                                     const TensorBundle& global,
                                                     LocalUpdate update) {
  const TensorBundle* sent_global = &global;
  TensorBundle trained_global;
  if (FreezesInRound(spec, round)) {
    // Frozen tensors did not change: they are not sent, and the clips (the
    // norm bound, site-level DP's) measure the change of the trained ones.
    ASSIGN_OR_RETURN(trained_global, TrainedPart(spec, round, global));
    ASSIGN_OR_RETURN(update.weights, TrainedPart(spec, round, update.weights));
    sent_global = &trained_global;
  }
  RETURN_IF_ERROR(ClipToNormBound(run_id, round, spec, *sent_global, &update.weights));
  RETURN_IF_ERROR(PrivatizeSiteUpdate(run_id, round, spec, dp_clip_norm, *sent_global, &update));
  if (options_.tamper != nullptr) {
    // Last, as an attacker would: after its own site's clipping and noise.
    RETURN_IF_ERROR(options_.tamper->Tamper(TamperContext{run_id, round, spec.seed()}, *sent_global,
                                            &update.weights));
  }
  return update;
}

absl::StatusOr<double> SiteWorker::SiteDpClip(const v1::RunSpec& spec, double task_clip) {
  if (!spec.dp().adaptive_clipping()) return spec.dp().clip_norm();
  // The coordinator moves S each round; the noise it adds scales with it.
  if (!(task_clip > 0) || !std::isfinite(task_clip)) {
    return absl::InvalidArgumentError(absl::StrCat("the task's adaptive clip is ", task_clip,
                                                   "; site-level DP needs a positive clip"));
  }
  return task_clip;
}

absl::Status SiteWorker::PrivatizeSiteUpdate(int64_t run_id, int32_t round, const v1::RunSpec& spec,
                                             double task_clip, const TensorBundle& global,
                                             LocalUpdate* update) {
  if (!IsSiteLevelDp(spec)) return absl::OkStatus();
  const v1::DpSettings& dp = spec.dp();
  ASSIGN_OR_RETURN(const double clip, SiteDpClip(spec, task_clip));
  const double share = privacy::SiteNoiseShareStddev(dp);
  privacy::NoiseSource* noise = options_.dp_noise;
  if (noise == nullptr && share > 0) {
    if (own_dp_noise_ == nullptr) own_dp_noise_ = privacy::MakeSecureNoiseSource();
    noise = own_dp_noise_.get();
  }
  ASSIGN_OR_RETURN(privacy::ClippedSiteUpdate clipped,
                   privacy::ClipSiteUpdate(global, clip, share, noise, &update->weights));
  // One bit about this site's update, sent in clear: only when the run's
  // adaptive clipping needs it.
  update->dp_within_clip = dp.adaptive_clipping() && !clipped.clipped;
  FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": site-level DP, update norm "
                  << clipped.norm << (clipped.clipped ? " clipped to " : " within the clip ")
                  << clip
                  << (share > 0 ? absl::StrCat(", noise share of standard deviation ", share,
                                               " added here")
                                : std::string(", noise added by the coordinator"))
                  << "; this site's epsilon for the run is now " << update->dp_epsilon_spent
                  << " at delta " << dp.delta();
  return absl::OkStatus();
}

absl::StatusOr<v1::Metrics> SiteWorker::Evaluate(int64_t run_id, const v1::RunSpec& spec,
                                                 const TensorBundle& global) {
  RETURN_IF_ERROR(CheckTask(spec));
  if (IsSynthetic(spec)) {
    v1::Metrics metrics;
    metrics.set_examples(0);
    return metrics;
  }
  ASSIGN_OR_RETURN(const SiteDataset* data, DataFor(spec));
  if (data->val.size() == 0) {
    return absl::FailedPreconditionError("local validation split is empty");
  }
  ASSIGN_OR_RETURN(ml::LocalModel * model, ModelFor(run_id, spec));
  RETURN_IF_ERROR(model->ImportWeights(global));
  ASSIGN_OR_RETURN(ml::Predictions predictions, model->Predict(data->val));
  if (model->is_segmentation()) return SegmentationReport(data->val, predictions);
  ASSIGN_OR_RETURN(BinaryMetrics metrics,
                   ComputeBinaryMetrics(data->val.labels, predictions.prob_positive));
  v1::Metrics report = ToProto(metrics, predictions.loss);
  // Counts per score bin, from which the coordinator chooses the run's
  // operating threshold on every site's validation data at once.
  ASSIGN_OR_RETURN(ScoreHistogram histogram,
                   ScoreHistogram::FromScores(data->val.labels, predictions.prob_positive));
  report.mutable_negative_score_counts()->Add(histogram.negative_counts().begin(),
                                              histogram.negative_counts().end());
  report.mutable_positive_score_counts()->Add(histogram.positive_counts().begin(),
                                              histogram.positive_counts().end());
  return report;
}

void SiteWorker::ForgetRun(int64_t run_id) {
  models_.erase(run_id);
  // Its last round is trained: no round reads the control variates again.
  if (absl::Status status = scaffold_controls_.Forget(run_id); !status.ok()) {
    FEDMI_LOG(WARNING) << "run " << run_id << ": " << status.message();
  }
}

}  // namespace fedmi
