// SiteWorker's data handling: the geometry a run asks for, and what an
// evaluation sends (metrics and the score histogram, never scores).
#include "client/site_worker.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/ml/local_model.h"
#include "common/base/status.h"
#include "common/data/dataset.h"
#include "common/data/phantoms.h"
#include "common/privacy/dp_plan.h"
#include "common/privacy/gaussian_noise.h"
#include "common/runspec/model_task.h"
#include "common/tensor/bundle_transfer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/site_worker_test_util.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<TensorBundle> InitialWeights(const v1::RunSpec& spec) {
  ml::ModelConfig config;
  config.arch = spec.model();
  config.seed = spec.seed();
  config.height = config.width = spec.image_size();
  config.channels = spec.channels();
  ASSIGN_OR_RETURN(auto model, ml::LocalModel::Create(config));
  return model->ExportWeights();
}

TEST(SiteWorkerTest, TheInitialModelTakesTheRunsInputNotTheData) {
  SiteWorker worker(Options(), NoiseSite(28, 1));
  const v1::RunSpec spec = CnnSpec(64, 3);
  absl::StatusOr<TensorBundle> built = worker.BuildInitialModel(spec);
  ASSERT_THAT(built, IsOk());
  absl::StatusOr<TensorBundle> expected = InitialWeights(spec);
  ASSERT_THAT(expected, IsOk());
  ASSERT_EQ(built->specs.size(), expected->specs.size());
  for (size_t i = 0; i < built->specs.size(); ++i) {
    EXPECT_EQ(built->specs[i].shape, expected->specs[i].shape) << built->specs[i].name;
  }
}

// The observer hears every batch: 16 images in batches of 8, two epochs.
TEST(SiteWorkerTest, TheTrainingObserverHearsEveryBatchOfEveryEpoch) {
  struct Recorder : TrainingObserver {
    std::vector<std::string> batches;
    void OnTrainingProgress(const TrainingProgress& p) override {
      EXPECT_GE(p.epoch_seconds, 0);
      batches.push_back(absl::StrCat(p.run_id, "/", p.round, " e", p.epoch, "/", p.epochs, " ",
                                     p.done, "/", p.total, p.dp_steps ? " dp" : ""));
    }
    void OnRoundOutcome(int64_t, int32_t, const absl::Status&) override {}
  } recorder;
  SiteWorkerOptions options = Options();
  options.training_observer = &recorder;
  SiteWorker worker(options, NoiseSite(28, 1));
  v1::RunSpec spec = CnnSpec(28, 1);
  spec.set_local_epochs(2);
  ASSERT_OK_AND_ASSIGN(TensorBundle global, InitialWeights(spec));
  ASSERT_THAT(worker.Train(4, 3, spec, global), IsOk());
  EXPECT_THAT(recorder.batches, ::testing::ElementsAre("4/3 e0/2 8/16", "4/3 e0/2 16/16",
                                                       "4/3 e1/2 8/16", "4/3 e1/2 16/16"));
}

TEST(SiteWorkerTest, DataOfAnotherGeometryIsRefusedWithoutAWayToReadItAgain) {
  SiteWorker worker(Options(), NoiseSite(28, 1));
  const v1::RunSpec spec = CnnSpec(32, 1);
  absl::StatusOr<TensorBundle> global = InitialWeights(spec);
  ASSERT_THAT(global, IsOk());
  EXPECT_THAT(worker.Evaluate(1, spec, *global),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the run wants images of 32x32x1 and this site holds 28x28x1")));
  EXPECT_THAT(worker.Train(1, 1, spec, *global), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SiteWorkerTest, ReadsItsDataAgainAtTheRunsGeometryOnceAndKeepsIt) {
  std::vector<DataGeometry> asked;
  SiteWorkerOptions options = Options();
  options.reload_data = [&asked](const DataGeometry& geometry) -> absl::StatusOr<SiteDataset> {
    asked.push_back(geometry);
    return NoiseSite(geometry.image_size, geometry.channels);
  };
  SiteWorker worker(options, NoiseSite(28, 1));
  v1::RunSpec spec = CnnSpec(32, 3);
  spec.set_first_frame_only(true);
  absl::StatusOr<TensorBundle> global = InitialWeights(spec);
  ASSERT_THAT(global, IsOk());
  ASSERT_THAT(worker.Evaluate(1, spec, *global), IsOk());
  ASSERT_THAT(worker.Train(1, 1, spec, *global), IsOk());
  ASSERT_EQ(asked.size(), 1u) << "the reloaded data is kept for the next task";
  EXPECT_EQ(asked[0].image_size, 32);
  EXPECT_EQ(asked[0].channels, 3);
  EXPECT_TRUE(asked[0].first_frame_only);

  options.reload_data = [](const DataGeometry&) -> absl::StatusOr<SiteDataset> {
    return absl::InvalidArgumentError("3 of 10 files skipped: /pacs/Doe^Jane/1.dcm truncated");
  };
  SiteWorker failing(options, NoiseSite(28, 1));
  absl::StatusOr<v1::Metrics> refused = failing.Evaluate(1, spec, *global);
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cannot read the site's data at 32x32x3 (first frames)")));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("Doe"))) << "file names stay at the site";
}

TEST(SiteWorkerTest, UnusableDataRefusesEveryRunWithoutNamingAFile) {
  SiteWorkerOptions options = Options();
  options.data_problem =
      absl::InvalidArgumentError("dicom folder /pacs: 9 of 10 files skipped: /pacs/Doe^Jane/1.dcm");
  SiteWorker worker(options, std::nullopt);
  absl::Status refused = worker.CheckTask(CnnSpec(28, 1));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("cannot use its data (INVALID_ARGUMENT")));
  EXPECT_THAT(refused.message(), Not(HasSubstr("Doe")));
}

// Review finding: the daemon loads --data once at 28x28x1 without
// first_frame_only (client/main.cc); a DICOM folder of multi-frame files
// then has no usable file, data_problem is set, no reload_data is wired
// (only `if (dataset)`), and CheckCapability refuses every run for good,
// including a run with first_frame_only that would read the same folder
// fine. SiteWorker has no path from "unusable at the startup geometry" to
// "read again at the run's": even given a loader that succeeds, it refuses.
TEST(SiteWorkerTest, ReviewDataUnusableAtStartupIsReadAgainAtTheRunsGeometry) {
  SiteWorkerOptions options = Options();
  options.data_problem = absl::InvalidArgumentError(
      "dicom folder /pacs has no usable DICOM file (10 seen: multi_frame ...)");
  int asked = 0;
  options.reload_data = [&asked](const DataGeometry& geometry) -> absl::StatusOr<SiteDataset> {
    ++asked;
    if (!geometry.first_frame_only) return absl::InvalidArgumentError("multi_frame");
    return NoiseSite(geometry.image_size, geometry.channels);
  };
  SiteWorker worker(options, std::nullopt);
  v1::RunSpec spec = CnnSpec(28, 1);
  spec.set_first_frame_only(true);
  EXPECT_THAT(worker.CheckTask(spec), IsOk());
  absl::StatusOr<TensorBundle> global = InitialWeights(spec);
  ASSERT_THAT(global, IsOk());
  EXPECT_THAT(worker.Evaluate(1, spec, *global), IsOk());
  EXPECT_EQ(asked, 1);
}

// Review finding: the coordinator accepts image_size up to 1024 with 3
// channels, and a site reads its whole data set into memory at that size
// (3 MiB per image: 60 GiB for 20k images) with no bound in its policy;
// the allocation failure in LoadSiteDataset is an uncaught bad_alloc. The
// site's policy should bound the input size it accepts (default e.g. 224).
TEST(SiteWorkerTest, ReviewThePolicyBoundsTheInputSizeARunMayAskFor) {
  SiteWorker worker(Options(), NoiseSite(28, 1));
  EXPECT_THAT(worker.CheckTask(CnnSpec(1024, 3)), Not(IsOk()));
}

TEST(SiteWorkerTest, AnEvaluationSendsMetricsAndAScoreHistogramOfItsValidationSet) {
  SiteWorker worker(Options(), NoiseSite(28, 1));
  const v1::RunSpec spec = CnnSpec(28, 1);
  absl::StatusOr<TensorBundle> global = InitialWeights(spec);
  ASSERT_THAT(global, IsOk());
  absl::StatusOr<v1::Metrics> metrics = worker.Evaluate(1, spec, *global);
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->examples(), 10);
  ASSERT_EQ(metrics->negative_score_counts_size(), metrics->positive_score_counts_size());
  EXPECT_GT(metrics->negative_score_counts_size(), 1);
  auto total = [](const auto& counts) { return std::accumulate(counts.begin(), counts.end(), 0L); };
  EXPECT_EQ(total(metrics->negative_score_counts()), 5);
  EXPECT_EQ(total(metrics->positive_score_counts()), 5);
  EXPECT_FALSE(metrics->has_operating_threshold()) << "the coordinator chooses it";
}
}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

// Transfer learning at the site: the initial model takes the run's initial
// weights (checked against their hash), and a round with frozen tensors
// sends only the others.
TEST(SiteWorkerTransferTest, InitialWeightsAreCheckedAgainstTheirHashAndLoaded) {
  v1::RunSpec spec = CnnSpec(28, 1);
  ASSERT_OK_AND_ASSIGN(TensorBundle pretrained, InitialWeights(CnnSpec(28, 1)));
  // Another run's weights: the same architecture from another seed.
  spec.set_seed(99);
  const std::string sha = BodySha256Hex(pretrained);
  spec.mutable_transfer()->set_init_weights_sha256(sha);
  SiteWorker worker(Options(), NoiseSite(28, 1));
  EXPECT_THAT(worker.BuildInitialModel(spec, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("artifacts")));
  int fetched = 0;
  TensorBundle served = pretrained;
  worker.set_artifact_source([&](int64_t run_id, const std::string& wanted) {
    ++fetched;
    EXPECT_EQ(run_id, 1);
    EXPECT_EQ(wanted, sha);
    return absl::StatusOr<TensorBundle>(served);
  });
  ASSERT_OK_AND_ASSIGN(TensorBundle built, worker.BuildInitialModel(spec, 1));
  EXPECT_EQ(built.body, pretrained.body);
  EXPECT_EQ(fetched, 1);
  // A coordinator that serves other bytes under the hash is caught.
  served.body[0] ^= 1;
  EXPECT_THAT(worker.BuildInitialModel(spec, 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("other bytes")));
}

TEST(SiteWorkerTransferTest, AFrozenRoundSendsOnlyTheTrainedTensors) {
  v1::RunSpec spec = CnnSpec(28, 1);
  spec.mutable_transfer()->add_freeze_prefixes("conv");
  spec.mutable_transfer()->add_freeze_prefixes("bn");
  spec.mutable_transfer()->set_unfreeze_after_round(1);
  ASSERT_OK_AND_ASSIGN(TensorBundle global, InitialWeights(spec));
  SiteWorker worker(Options(), NoiseSite(28, 1));
  ASSERT_OK_AND_ASSIGN(LocalUpdate first, worker.Train(1, 1, spec, global));
  std::vector<std::string> names;
  for (const TensorSpec& tensor : first.weights.specs) names.push_back(tensor.name);
  EXPECT_THAT(names, ::testing::ElementsAre("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"));
  ASSERT_OK_AND_ASSIGN(LocalUpdate second, worker.Train(1, 2, spec, global));
  EXPECT_EQ(second.weights.specs.size(), global.specs.size());
}

// Site-level DP-FedAvg with frozen tensors, on the synthetic model (no
// data, no LibTorch): site-1 adds 1/256 to every element, the frozen ones
// included, as training moves a frozen prefix's BatchNorm statistics. The
// clip must measure the change of the sent tensors only (norm sqrt(2)/256
// = 0.0055 here, not sqrt(6)/256 = 0.0096 with the frozen ones), the noise
// share must go to them only, and the site's ledger must charge the same as
// without freezing.
v1::RunSpec FrozenSyntheticSiteDpSpec(double clip, v1::DpNoisePlacement placement) {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(6);
  spec.set_rounds(2);
  spec.set_seed(7);
  spec.mutable_transfer()->add_freeze_prefixes("backbone.");
  *spec.mutable_dp() = CompletedSiteDp(clip, /*noise_multiplier=*/1.0, placement,
                                       /*expected_sites=*/4);
  return spec;
}

TensorBundle BackboneAndHead() {
  return FloatBundle({{"backbone.w", DType::kFloat32, {4}}, {"head.w", DType::kFloat32, {2}}},
                     {0.5f, -0.25f, 1, 2, 0.75f, -1.5f});
}

TEST(SiteWorkerTransferTest, SiteLevelDpClipsAndNoisesOnlyTheTrainedTensors) {
  const TensorBundle global = BackboneAndHead();
  const double step = 1.0 / 256;
  const double trained_norm = std::sqrt(2.0) * step;
  // Central noise, clip 0.007: between the trained change's norm and the
  // whole model's, so only a clip over the sent tensors leaves it alone.
  {
    const v1::RunSpec spec = FrozenSyntheticSiteDpSpec(0.007, v1::DP_NOISE_CENTRAL);
    SiteWorkerOptions trusting = Options();
    trusting.policy = SitePolicy::Defaults();
    trusting.policy->allowed_models = {"synthetic"};
    trusting.policy->allow_central_dp_noise = true;
    SiteWorker worker(trusting, std::nullopt);
    ASSERT_OK_AND_ASSIGN(LocalUpdate update, worker.Train(1, 1, spec, global));
    ASSERT_EQ(update.weights.specs.size(), 1u);
    EXPECT_EQ(update.weights.specs[0].name, "head.w");
    EXPECT_THAT(FloatsOf(update.weights),
                ::testing::ElementsAre(0.75f + float(step), -1.5f + float(step)))
        << "a change of norm " << trained_norm << " is within the clip 0.007";
    // Adaptive clipping's bit says the same.
    v1::RunSpec adaptive = spec;
    adaptive.mutable_dp()->set_adaptive_clipping(true);
    ASSERT_OK_AND_ASSIGN(LocalUpdate flagged,
                         worker.Train(1, 1, adaptive, global, /*dp_clip_norm=*/0.007));
    EXPECT_TRUE(flagged.dp_within_clip);
  }
  // Distributed noise, clip 0.004: the trained change is scaled by
  // 0.004 / 0.0055, and the seeded share lands on head.w's two elements.
  v1::RunSpec spec = FrozenSyntheticSiteDpSpec(0.004, v1::DP_NOISE_DISTRIBUTED);
  spec.set_secure_aggregation(true);  // which masks what Train returns (SiteSession)
  spec.mutable_secagg()->set_clip(1);
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(41);
  SiteWorkerOptions options = Options();
  options.dp_noise = noise.get();
  SiteWorker worker(options, std::nullopt);
  ASSERT_OK_AND_ASSIGN(LocalUpdate update, worker.Train(1, 1, spec, global));
  ASSERT_EQ(update.weights.specs.size(), 1u);
  const double share = privacy::SiteNoiseShareStddev(spec.dp());
  ASSERT_GT(share, 0);
  std::unique_ptr<privacy::NoiseSource> replay = privacy::MakeSeededNoiseSource(41);
  const double scale = 0.004 / trained_norm;
  const std::vector<float> got = FloatsOf(update.weights);
  const std::vector<double> head = {0.75, -1.5};
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(got[i], head[i] + scale * step + share * replay->Normal(), 1e-6) << i;
  }
  std::printf("clip 0.004: head.w %.7f %.7f (change scaled by %.4f, noise share sd %.5f)\n", got[0],
              got[1], scale, share);

  // The ledger charges a frozen round as any other.
  v1::RunSpec unfrozen = spec;
  unfrozen.clear_transfer();
  SiteWorker plain(options, std::nullopt);
  ASSERT_OK_AND_ASSIGN(LocalUpdate whole, plain.Train(1, 1, unfrozen, global));
  EXPECT_EQ(whole.weights.specs.size(), 2u);
  EXPECT_GT(update.dp_epsilon_spent, 0);
  EXPECT_DOUBLE_EQ(update.dp_epsilon_spent, whole.dp_epsilon_spent);
  std::printf("site epsilon after one round: %.4f frozen, %.4f not frozen\n",
              update.dp_epsilon_spent, whole.dp_epsilon_spent);
}

// Simulation's attack hook (`fedmi sim --attack`): it sees exactly what
// would be sent, the trained tensors after site-level DP, with the round's
// global values of the same tensors, and what it writes is what is sent.
class RecordingTamper : public UpdateTamper {
 public:
  absl::Status Tamper(const TamperContext& context, const TensorBundle& global,
                      TensorBundle* weights) override {
    seen_context = context;
    seen_global = global;
    seen_weights = *weights;
    *weights = FloatBundle(weights->specs, std::vector<float>(weights->specs[0].NumElements(), 42));
    return absl::OkStatus();
  }
  TamperContext seen_context;
  TensorBundle seen_global;
  TensorBundle seen_weights;
};

TEST(SiteWorkerTamperTest, TamperRewritesOnlyTheSentTensorsAgainstTheirGlobalValues) {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(6);
  spec.set_rounds(3);
  spec.set_seed(7);
  spec.mutable_transfer()->add_freeze_prefixes("backbone.");
  RecordingTamper tamper;
  SiteWorkerOptions options = Options();
  options.tamper = &tamper;
  SiteWorker worker(options, std::nullopt);
  ASSERT_OK_AND_ASSIGN(LocalUpdate update, worker.Train(5, 3, spec, BackboneAndHead()));
  EXPECT_EQ(tamper.seen_context.run_id, 5);
  EXPECT_EQ(tamper.seen_context.round, 3);
  EXPECT_EQ(tamper.seen_context.run_seed, 7u);
  ASSERT_EQ(tamper.seen_global.specs.size(), 1u);
  EXPECT_EQ(tamper.seen_global.specs[0].name, "head.w");
  EXPECT_THAT(FloatsOf(tamper.seen_global), ::testing::ElementsAre(0.75f, -1.5f));
  // site-1's synthetic training adds 1/256 to every element.
  EXPECT_THAT(FloatsOf(tamper.seen_weights),
              ::testing::ElementsAre(0.75f + 1.0f / 256, -1.5f + 1.0f / 256));
  EXPECT_THAT(FloatsOf(update.weights), ::testing::ElementsAre(42.0f, 42.0f));

  // Without one, the same training sends the honest change.
  SiteWorker honest(Options(), std::nullopt);
  ASSERT_OK_AND_ASSIGN(LocalUpdate sent, honest.Train(5, 3, spec, BackboneAndHead()));
  EXPECT_THAT(FloatsOf(sent.weights),
              ::testing::ElementsAre(0.75f + 1.0f / 256, -1.5f + 1.0f / 256));
}

// norm_bounded: the site clips its own change before it leaves, as secure
// aggregation (which masks what Train returns) keeps the coordinator from
// clipping it. On the synthetic model site-1 adds 1/256 to every element.
TEST(SiteWorkerNormBoundTest, TheSiteClipsItsChangeToTheRunsBoundBeforeItIsMasked) {
  const TensorBundle global = BackboneAndHead();
  const std::vector<float> base = FloatsOf(global);
  const double step = 1.0 / 256;
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(6);
  spec.set_rounds(2);
  spec.set_seed(7);
  spec.set_strategy("norm_bounded");
  spec.set_secure_aggregation(true);
  spec.mutable_secagg()->set_clip(1);
  SiteWorker worker(Options(), std::nullopt);

  // Change of norm sqrt(6) / 256 = 0.0096 over the whole model, bound 0.004.
  spec.mutable_robust()->set_norm_bound(0.004);
  ASSERT_OK_AND_ASSIGN(LocalUpdate clipped, worker.Train(1, 1, spec, global));
  const double scale = 0.004 / (std::sqrt(6.0) * step);
  std::vector<float> got = FloatsOf(clipped.weights);
  ASSERT_EQ(got.size(), 6u);
  double squared = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], base[i] + scale * step, 3e-7) << i;  // a float32 ulp at 2
    squared += (double(got[i]) - base[i]) * (double(got[i]) - base[i]);
  }
  EXPECT_LE(std::sqrt(squared), 0.004) << "after rounding to float32 too";

  // Within the bound the trained weights go out as they are.
  spec.mutable_robust()->set_norm_bound(0.01);
  ASSERT_OK_AND_ASSIGN(LocalUpdate within, worker.Train(1, 1, spec, global));
  got = FloatsOf(within.weights);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], base[i] + float(step)) << i;

  // A frozen backbone: the bound measures the sent change of head.w only,
  // sqrt(2) / 256 = 0.0055, within 0.007 (the whole model's is not).
  spec.mutable_robust()->set_norm_bound(0.007);
  spec.mutable_transfer()->add_freeze_prefixes("backbone.");
  ASSERT_OK_AND_ASSIGN(LocalUpdate head, worker.Train(1, 1, spec, global));
  EXPECT_THAT(FloatsOf(head.weights),
              ::testing::ElementsAre(0.75f + float(step), -1.5f + float(step)));

  spec.mutable_robust()->clear_norm_bound();
  EXPECT_THAT(worker.Train(1, 1, spec, global),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("norm_bound is 0")));
}

// A policy that allows the U-Net and nothing else.

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

// Segmentation runs: data with masks, overlap counts instead of scores.
v1::RunSpec UNetSpec(int32_t image_size) {
  v1::RunSpec spec = CnnSpec(image_size, 1);
  spec.set_model("unet");
  return spec;
}

SiteWorkerOptions UNetOptions() {
  SiteWorkerOptions options = Options();
  options.policy = SitePolicy::Defaults();
  options.policy->allowed_models = {"unet"};
  return options;
}

SiteDataset PhantomSite(int64_t side) {
  PhantomOptions options;
  options.size = side;
  options.seed = 3;
  SiteDataset data;
  data.train = *GeneratePhantoms(options, 0, 12);
  data.val = *GeneratePhantoms(options, 100, 6);
  return data;
}

TEST(SiteWorkerSegmentationTest, AnEvaluationSendsOverlapCountsAndNoScores) {
  SiteWorker worker(UNetOptions(), PhantomSite(32));
  const v1::RunSpec spec = UNetSpec(32);
  absl::StatusOr<TensorBundle> global = worker.BuildInitialModel(spec);
  ASSERT_THAT(global, IsOk());
  absl::StatusOr<LocalUpdate> update = worker.Train(1, 1, spec, *global);
  ASSERT_THAT(update, IsOk());
  EXPECT_EQ(update->examples, 12);
  EXPECT_GT(update->train_metrics.loss(), 0);
  absl::StatusOr<v1::Metrics> metrics = worker.Evaluate(1, spec, update->weights);
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->examples(), 6);
  const v1::SegmentationOverlap& overlap = metrics->overlap();
  EXPECT_EQ(overlap.images(), 6);
  const SiteDataset truth = PhantomSite(32);
  EXPECT_EQ(overlap.truth(),
            std::accumulate(truth.val.masks.begin(), truth.val.masks.end(), int64_t{0}));
  EXPECT_LE(overlap.intersection(), std::min(overlap.predicted(), overlap.truth()));
  ASSERT_GT(overlap.predicted() + overlap.truth(), 0);
  EXPECT_DOUBLE_EQ(metrics->dice(),
                   2.0 * overlap.intersection() / (overlap.predicted() + overlap.truth()));
  EXPECT_DOUBLE_EQ(metrics->iou(),
                   static_cast<double>(overlap.intersection()) /
                       (overlap.predicted() + overlap.truth() - overlap.intersection()));
  EXPECT_NEAR(metrics->mean_image_dice(), overlap.image_dice_sum() / 6, 1e-12);
  EXPECT_GT(metrics->loss(), 0);
  EXPECT_EQ(metrics->negative_score_counts_size(), 0);
  EXPECT_EQ(metrics->positive_score_counts_size(), 0);
  EXPECT_TRUE(std::isnan(metrics->auc())) << "no AUC for masks";
}

TEST(SiteWorkerSegmentationTest, TheSiteBuildsTheUNetShapeTheSpecNames) {
  SiteWorker worker(UNetOptions(), PhantomSite(32));
  v1::RunSpec spec = UNetSpec(32);
  spec.mutable_unet()->set_base_width(4);
  spec.mutable_unet()->set_depth(2);
  absl::StatusOr<TensorBundle> global = worker.BuildInitialModel(spec);
  ASSERT_THAT(global, IsOk());
  // Width 4: the first block's first conv has 4 filters; depth 2: the
  // bottleneck follows two poolings with 4 << 2 = 16 channels.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const TensorSpec& tensor : global->specs) shapes[tensor.name] = tensor.shape;
  EXPECT_EQ(shapes["encoder1.enc1conv1.weight"], (std::vector<int64_t>{4, 1, 3, 3}));
  EXPECT_EQ(shapes["bottleneck.bottleneckconv1.weight"], (std::vector<int64_t>{16, 8, 3, 3}));
  EXPECT_EQ(shapes.count("encoder3.enc3conv1.weight"), 0u);

  spec.mutable_unet()->set_depth(6);  // 32 is not a multiple of 64
  EXPECT_THAT(worker.BuildInitialModel(spec, 2).status().message(),
              HasSubstr("needs image sides divisible by 64"));
}

TEST(SiteWorkerSegmentationTest, DataWithoutMasksIsRefusedOrReadAgainWithThem) {
  const v1::RunSpec spec = UNetSpec(32);
  EXPECT_TRUE(IsSegmentationRun(spec));
  EXPECT_FALSE(IsSegmentationRun(CnnSpec(32, 1)));
  v1::RunSpec custom = CnnSpec(32, 1);
  custom.set_model("custom");
  custom.set_task(v1::MODEL_TASK_SEGMENTATION);
  EXPECT_TRUE(IsSegmentationRun(custom));
  EXPECT_TRUE(GeometryOf(custom).with_masks);

  SiteWorker no_masks(UNetOptions(), NoiseSite(32, 1));
  EXPECT_THAT(no_masks.CheckTask(spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no masks")));

  std::vector<DataGeometry> asked;
  SiteWorkerOptions options = UNetOptions();
  options.reload_data = [&asked](const DataGeometry& geometry) -> absl::StatusOr<SiteDataset> {
    asked.push_back(geometry);
    if (!geometry.with_masks) return NoiseSite(geometry.image_size, 1);
    return PhantomSite(geometry.image_size);
  };
  SiteWorker reloading(options, NoiseSite(32, 1));
  absl::StatusOr<TensorBundle> global = reloading.BuildInitialModel(spec);
  ASSERT_THAT(global, IsOk());
  ASSERT_THAT(reloading.Evaluate(1, spec, *global), IsOk());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(asked[0].with_masks);

  options.reload_data = [](const DataGeometry&) -> absl::StatusOr<SiteDataset> {
    return absl::InvalidArgumentError("no masks/ folder");
  };
  SiteWorker failing(options, NoiseSite(32, 1));
  EXPECT_THAT(failing.Evaluate(1, spec, *global),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("32x32x1 with masks (a segmentation run needs a mask")));
}

}  // namespace
}  // namespace fedmi
