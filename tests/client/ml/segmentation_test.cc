#include "client/ml/segmentation.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "client/ml/local_model.h"
#include "client/ml/training_recipe.h"
#include "common/data/phantoms.h"
#include "common/evaluation/segmentation_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/user_modules.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

ImageSet Phantoms(int64_t first, int64_t count, int64_t size = 32) {
  PhantomOptions options;
  options.size = size;
  options.seed = 11;
  absl::StatusOr<ImageSet> set = GeneratePhantoms(options, first, count);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : ImageSet{};
}

SegmentationCounts Score(const Predictions& predictions, const ImageSet& truth) {
  SegmentationCounts counts;
  const int64_t plane = truth.height * truth.width;
  for (int64_t i = 0; i < truth.size(); ++i) {
    counts.Add(
        CountOverlap(predictions.masks.data() + i * plane, truth.masks.data() + i * plane, plane));
  }
  return counts;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class SegmentationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetThreads(1); }
};

TEST_F(SegmentationTest, LossIsSoftDicePlusBceOnAHandWorkedCase) {
  // p = 1/2 everywhere, 2 of 4 pixels foreground: soft Dice (2*1 + 1) /
  // (2 + 2 + 1) = 0.6, BCE = ln 2.
  const torch::Tensor logits = torch::zeros({1, 1, 2, 2});
  const torch::Tensor masks = torch::tensor({1.f, 0.f, 1.f, 0.f}).reshape({1, 1, 2, 2});
  EXPECT_NEAR(SegmentationLoss(logits, masks).item<double>(), 0.4 + std::log(2.0), 1e-6);
  // Confidently right: near 0; confidently wrong: near 2 (Dice term 1) plus a large BCE.
  EXPECT_NEAR(SegmentationLoss((masks * 2 - 1) * 30, masks).item<double>(), 0, 1e-3);
  EXPECT_GT(SegmentationLoss((1 - masks * 2) * 30, masks).item<double>(), 20);
}

TEST_F(SegmentationTest, MasksMoveWithTheImagesAndKeepTheirDraws) {
  ImageSet data = Phantoms(0, 8);
  // Images whose pixels are their masks (-1 background, +1 foreground):
  // after augmentation the two must still agree wherever the mask is sharp.
  torch::Tensor masks = MaskView(data).to(torch::kFloat32);
  const torch::Tensor images = masks * 2 - 1;
  AugmentationOptions shift;
  shift.max_shift = 3;
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(5);
  torch::Tensor moved_mask = masks.clone();
  torch::Tensor moved = AugmentWithMask(images, shift, a, &moved_mask);
  // Whole-pixel shifts move the mask exactly, and it did move.
  EXPECT_TRUE(torch::equal(moved.gt(0).to(torch::kFloat32), moved_mask));
  EXPECT_FALSE(torch::equal(moved_mask, masks));
  // Same draws as Augment for the images.
  at::Generator b = at::make_generator<at::CPUGeneratorImpl>(5);
  EXPECT_TRUE(torch::equal(Augment(images, shift, b), moved));

  AugmentationOptions warp;
  warp.max_rotation_degrees = 30;
  warp.horizontal_flip = true;
  warp.crop_min_scale = 0.6;
  warp.brightness = 0.3;
  at::Generator c = at::make_generator<at::CPUGeneratorImpl>(6);
  torch::Tensor warped_mask = masks.clone();
  torch::Tensor warped = AugmentWithMask(images, warp, c, &warped_mask);
  // Stays 0/1; brightness scales the image around 0 (in [0, 1] units:
  // around 1/2 here), so the sign of the image still marks the mask except
  // on interpolated edge pixels.
  EXPECT_TRUE(torch::equal(warped_mask, warped_mask.gt(0.5).to(torch::kFloat32)));
  const double agree =
      warped.gt(0).to(torch::kFloat32).eq(warped_mask).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(agree, 0.97);
  EXPECT_FALSE(torch::equal(warped_mask, masks));
}

TEST_F(SegmentationTest, UNetLearnsPhantomLungsAndPredictsMasks) {
  ModelConfig config;
  config.arch = "unet";
  config.height = config.width = 32;
  config.base_width = 8;
  config.depth = 2;
  ASSERT_OK_AND_ASSIGN(auto model, LocalModel::Create(config));
  EXPECT_TRUE(model->is_segmentation());
  const ImageSet train = Phantoms(0, 96);
  const ImageSet held_out = Phantoms(1000, 32);
  ASSERT_OK_AND_ASSIGN(Predictions before, model->Predict(held_out));
  TrainOptions options;
  options.epochs = 6;
  options.batch_size = 16;
  options.lr = 3e-3;
  ASSERT_OK_AND_ASSIGN(TrainSummary summary, model->Train(train, options));
  EXPECT_EQ(summary.examples, 96);
  EXPECT_GT(summary.accuracy, 0.9);  // pixels right in the last epoch
  ASSERT_OK_AND_ASSIGN(Predictions after, model->Predict(held_out));
  ASSERT_EQ(after.masks.size(), held_out.masks.size());
  EXPECT_TRUE(after.prob_positive.empty());
  EXPECT_TRUE(after.predicted.empty());
  EXPECT_LT(after.loss, before.loss);
  const SegmentationCounts counts = Score(after, held_out);
  std::cout << "U-Net held-out pooled Dice " << counts.PooledDice() << ", mean image Dice "
            << counts.MeanDice() << std::endl;
  EXPECT_GT(counts.PooledDice(), 0.85) << "before: " << Score(before, held_out).PooledDice();
  // The loss Predict reports does not depend on its batch size.
  ASSERT_OK_AND_ASSIGN(Predictions small_batches, model->Predict(held_out, 5));
  EXPECT_NEAR(small_batches.loss, after.loss, 1e-5);
  EXPECT_EQ(small_batches.masks, after.masks);
}

TEST_F(SegmentationTest, TrainingWithoutMasksAndDpSgdAreRefused) {
  ModelConfig config;
  config.arch = "unet";
  config.height = config.width = 32;
  config.base_width = 4;
  config.depth = 1;
  ASSERT_OK_AND_ASSIGN(auto model, LocalModel::Create(config));
  ImageSet no_masks = Phantoms(0, 4);
  no_masks.masks.clear();
  EXPECT_THAT(model->Train(no_masks, TrainOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs masks")));
  // Prediction needs no masks (new images): masks out, no loss.
  ASSERT_OK_AND_ASSIGN(Predictions unlabelled, model->Predict(no_masks));
  EXPECT_EQ(unlabelled.masks.size(), 4u * 32 * 32);
  EXPECT_TRUE(std::isnan(unlabelled.loss));
  ASSERT_OK_AND_ASSIGN(Predictions labelled, model->Predict(Phantoms(0, 4)));
  EXPECT_EQ(labelled.masks, unlabelled.masks);
  ImageSet bad = Phantoms(0, 4);
  bad.masks[7] = 255;
  EXPECT_THAT(model->Train(bad, TrainOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not 0 or 1")));
  TrainOptions dp;
  dp.dp = DpSgdOptions{};
  dp.dp->sample_rate = 0.5;
  EXPECT_THAT(model->Train(Phantoms(0, 4), dp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("DP-SGD")));
}

TEST_F(SegmentationTest, AUserSegmenterTrainsAndReloadsAsSegmentation) {
  ScratchDir dir;
  ASSERT_THAT(user_modules::WriteUserSegmenter(dir.Join("seg.pt"), 1, 3), IsOk());
  ModelConfig config;
  config.arch = "custom";
  config.height = config.width = 32;
  ASSERT_OK_AND_ASSIGN(auto model,
                       LocalModel::LoadUserModule(ReadAll(dir.Join("seg.pt")), config, true));
  EXPECT_TRUE(model->is_segmentation());
  TrainOptions options;
  options.epochs = 10;
  options.batch_size = 8;
  options.lr = 3e-3;
  const ImageSet held_out = Phantoms(1000, 16);
  ASSERT_OK_AND_ASSIGN(Predictions before, model->Predict(held_out));
  ASSERT_THAT(model->Train(Phantoms(0, 128), options), IsOk());
  ASSERT_OK_AND_ASSIGN(Predictions after, model->Predict(held_out));
  EXPECT_LT(after.loss, before.loss);
  std::cout << "user segmenter held-out pooled Dice " << Score(before, held_out).PooledDice()
            << " -> " << Score(after, held_out).PooledDice() << std::endl;
  EXPECT_GT(Score(after, held_out).PooledDice(), 0.7);

  ASSERT_THAT(model->SaveTorchScript(dir.Join("saved.pt")), IsOk());
  ASSERT_OK_AND_ASSIGN(auto reloaded, LocalModel::LoadTorchScript(dir.Join("saved.pt")));
  EXPECT_TRUE(reloaded->is_segmentation());
  ASSERT_OK_AND_ASSIGN(Predictions again, reloaded->Predict(held_out));
  EXPECT_EQ(again.masks, after.masks);

  // The same file brought to a classification run is checked as one.
  EXPECT_THAT(LocalModel::LoadUserModule(ReadAll(dir.Join("seg.pt")), config, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[2,2]")));
}

}  // namespace
}  // namespace fedmi::ml
