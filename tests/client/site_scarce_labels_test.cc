// Pseudo-labels and down-weighted suspect labels at a site
// (client/site_scarce_labels.h), alone and inside SiteWorker::Train.
#include "client/site_scarce_labels.h"

#include <fstream>
#include <memory>
#include <string>

#include "client/site_worker.h"
#include "common/base/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/client/site_worker_test_util.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ReadFlaggedLabelIdsTest, TakesTheFlaggedRowsOfAnAuditList) {
  ScratchDir dir;
  const std::string path = dir.Join("suspects.csv");
  std::ofstream(path) << "rank,id,row,label,suggested,p_label,margin,flagged\n"
                         "1,aaaa,4,1,0,0.05,-0.90,1\n"
                         "2,bbbb,9,0,1,0.30,-0.40,1\n"
                         "3,cccc,1,0,0,0.60,0.20,0\n";
  ASSERT_OK_AND_ASSIGN(auto ids, ReadFlaggedLabelIds(path));
  EXPECT_THAT(ids, ElementsAre("aaaa", "bbbb"));
  EXPECT_THAT(ReadFlaggedLabelIds(dir.Join("none.csv")), StatusIs(absl::StatusCode::kNotFound));
  std::ofstream(path) << "rank,id,score\n1,aaaa,0.5\n";
  EXPECT_THAT(ReadFlaggedLabelIds(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flagged")));
}

TEST(LocalLabelOptionsTest, RangesAreChecked) {
  LocalLabelOptions options;
  EXPECT_THAT(CheckLocalLabelOptions(options), IsOk());
  options.pseudo_label_threshold = 0.4;
  EXPECT_THAT(CheckLocalLabelOptions(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options = {};
  options.noisy_label_weight = 2;
  EXPECT_THAT(CheckLocalLabelOptions(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A model that has learned the squares pseudo-labels new squares: only
// confident ones, almost all right, at the ramp's weight.
TEST(BuildRoundTrainingSetTest, ConfidentPseudoLabelsJoinAtTheRampedWeight) {
  auto created = ml::LocalModel::Create(ml::ModelConfig{});
  ASSERT_THAT(created, IsOk());
  ml::LocalModel& model = **created;
  ml::TrainOptions train;
  train.epochs = 4;
  train.seed = 2;
  ASSERT_THAT(model.Train(ml::MakeSquares(200, 28, 1), train), IsOk());
  SiteDataset data;
  data.train = ml::MakeSquares(20, 28, 2);
  const ImageSet truth = ml::MakeSquares(100, 28, 3);
  data.unlabelled.images = truth;
  std::fill(data.unlabelled.images.labels.begin(), data.unlabelled.images.labels.end(), kNoLabel);
  LocalLabelOptions options;
  options.semi_supervised = SemiSupervisedMethod::kPseudoLabel;
  options.pseudo_label_threshold = 0.9;
  options.pseudo_label_ramp_rounds = 4;
  options.noisy_label_ids = {ImageId(data.train, 3)};
  options.noisy_label_weight = 0.25;
  ASSERT_OK_AND_ASSIGN(RoundTrainingSet set, BuildRoundTrainingSet(model, data, options, 1));
  EXPECT_EQ(set.noisy_down_weighted, 1);
  EXPECT_GT(set.pseudo_labelled, 30);
  EXPECT_LE(set.pseudo_labelled, 100);
  ASSERT_EQ(set.with_pseudo_labels.size(), 20 + set.pseudo_labelled);
  ASSERT_EQ(set.weights.size(), static_cast<size_t>(set.with_pseudo_labels.size()));
  EXPECT_FLOAT_EQ(set.weights[3], 0.25f);
  EXPECT_FLOAT_EQ(set.weights[0], 1.0f);
  // Round 1 of a 4-round ramp, and the pseudo-labels together weigh as much
  // as the 20 labelled images.
  EXPECT_FLOAT_EQ(set.weights[20], 0.25f * 20 / set.pseudo_labelled);
  // Pseudo-labels match the truth: find each pseudo-labelled image in it.
  int right = 0;
  for (int64_t row = 20; row < set.with_pseudo_labels.size(); ++row) {
    const std::string id = ImageId(set.with_pseudo_labels, row);
    for (int64_t t = 0; t < truth.size(); ++t) {
      if (ImageId(truth, t) == id) right += truth.labels[t] == set.with_pseudo_labels.labels[row];
    }
  }
  EXPECT_GE(right, set.pseudo_labelled * 9 / 10);
  ASSERT_OK_AND_ASSIGN(RoundTrainingSet later, BuildRoundTrainingSet(model, data, options, 9));
  EXPECT_FLOAT_EQ(later.weights.back(), 20.0f / later.pseudo_labelled);
  EXPECT_FALSE(later.strongly_augmented);
  ml::TrainOptions plain;
  EXPECT_EQ(&UseRoundTrainingSet(data, later, plain), &later.with_pseudo_labels);
  EXPECT_EQ(plain.strongly_augmented_from, 0);
  EXPECT_EQ(plain.reported_rows, 20);

  // FixMatch: the same pseudo-labels, their rows strongly augmented.
  options.semi_supervised = SemiSupervisedMethod::kFixMatch;
  ASSERT_OK_AND_ASSIGN(RoundTrainingSet fixmatch, BuildRoundTrainingSet(model, data, options, 9));
  EXPECT_EQ(fixmatch.pseudo_labelled, later.pseudo_labelled);
  EXPECT_TRUE(fixmatch.strongly_augmented);
  ml::TrainOptions strong;
  UseRoundTrainingSet(data, fixmatch, strong);
  EXPECT_EQ(strong.strongly_augmented_from, 20);
  EXPECT_EQ(strong.example_weights.size(), static_cast<size_t>(20 + later.pseudo_labelled));
  EXPECT_EQ(strong.strong_augmentation.cutout, StrongAugmentation().cutout);
  EXPECT_THAT(ml::CheckAugmentationOptions(strong.strong_augmentation), IsOk());
}

TEST(SemiSupervisedMethodTest, NamesRoundTrip) {
  for (auto method : {SemiSupervisedMethod::kOff, SemiSupervisedMethod::kPseudoLabel,
                      SemiSupervisedMethod::kFixMatch}) {
    ASSERT_OK_AND_ASSIGN(SemiSupervisedMethod parsed,
                         ParseSemiSupervisedMethod(SemiSupervisedMethodName(method)));
    EXPECT_EQ(parsed, method);
  }
  EXPECT_THAT(ParseSemiSupervisedMethod("mixmatch"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fixmatch")));
}

TEST(SiteWorkerScarceLabelsTest, TheUpdateCountsLabelledImagesOnlyAndDpIsRefused) {
  for (SemiSupervisedMethod method :
       {SemiSupervisedMethod::kPseudoLabel, SemiSupervisedMethod::kFixMatch}) {
    SCOPED_TRACE(SemiSupervisedMethodName(method));
    SiteDataset data = NoiseSite(28, 1);
    data.unlabelled.images = Noise(30, 28, 1, 7);
    std::fill(data.unlabelled.images.labels.begin(), data.unlabelled.images.labels.end(), kNoLabel);
    SiteWorkerOptions options = Options();
    options.local_labels.semi_supervised = method;
    options.local_labels.pseudo_label_threshold = 0.5000001;
    options.local_labels.noisy_label_ids = {ImageId(data.train, 0)};
    SiteWorker worker(options, data);
    const v1::RunSpec spec = CnnSpec(28, 1);
    ASSERT_OK_AND_ASSIGN(TensorBundle global, InitialWeights(spec));
    ASSERT_OK_AND_ASSIGN(LocalUpdate update, worker.Train(1, 1, spec, global));
    EXPECT_EQ(update.examples, 16);
    EXPECT_EQ(update.train_metrics.examples(), 16);
    v1::RunSpec dp = spec;
    dp.set_model("cnn-gn");
    *dp.mutable_dp() = CompletedSampleDp(1.0, 0.5, 2);
    ASSERT_OK_AND_ASSIGN(TensorBundle gn_global, InitialWeights(dp));
    EXPECT_THAT(worker.Train(2, 1, dp, gn_global),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("DP-SGD")));
  }
}

}  // namespace
}  // namespace fedmi
