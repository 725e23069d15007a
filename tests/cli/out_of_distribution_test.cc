// FlagOutOfDistribution with a real model: images unlike the training
// squares are flagged, about 1% of the training images are, and the
// findings join the quality report in row order.
#include "cli/out_of_distribution.h"

#include <algorithm>
#include <memory>
#include <random>

#include "cli/model_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

// Enough images for the covariance of the cnn's 128-wide embedding.
constexpr int kTraining = 600;

TEST(OutOfDistributionTest, ForeignImagesAreFlaggedAndTrainingOnesAtTheQuantile) {
  ScratchDir dir;
  auto model = ml::LocalModel::Create(ml::ModelConfig{});
  ASSERT_THAT(model, IsOk());
  ml::TrainOptions train;
  train.epochs = 2;
  ImageSet checked = ml::MakeSquares(kTraining, 28, 1);
  ASSERT_THAT((*model)->Train(checked, train), IsOk());
  const std::string path = dir.Join("model.pt");
  ASSERT_THAT((*model)->SaveTorchScript(path), IsOk());
  // 20 foreign images: noise over the whole grey range, where the squares'
  // backgrounds stay below 60.
  std::mt19937 rng(2);
  for (int i = 0; i < 20; ++i) {
    for (int p = 0; p < 28 * 28; ++p) checked.pixels.push_back(static_cast<uint8_t>(rng()));
    checked.labels.push_back(kNoLabel);
  }
  std::vector<bool> training(checked.size(), false);
  std::fill(training.begin(), training.begin() + kTraining, true);
  QualityReport report;
  report.findings.push_back({kTraining + 10, QualityFlag::kBlank, QualityStatistic::kStd, 0, -1});
  TorchModelRunner runner;
  ASSERT_OK_AND_ASSIGN(OutOfDistributionCheck check,
                       FlagOutOfDistribution(runner, path, checked, training, 0.99, report));
  EXPECT_EQ(check.fitted_on, kTraining);
  EXPECT_GT(check.threshold, 0);
  int foreign = 0, trained = 0;
  for (const QualityFinding& finding : report.findings) {
    if (finding.flag != QualityFlag::kOutOfDistribution) continue;
    EXPECT_EQ(finding.statistic, QualityStatistic::kMahalanobis);
    EXPECT_GT(finding.value, check.threshold);
    (finding.index >= kTraining ? foreign : trained) += 1;
  }
  EXPECT_EQ(foreign, 20);
  EXPECT_LE(trained, kTraining / 50);  // the 1% quantile, with room for ties
  EXPECT_EQ(check.flagged, foreign + trained);
  for (size_t i = 1; i < report.findings.size(); ++i) {
    EXPECT_LE(report.findings[i - 1].index, report.findings[i].index);
  }
  std::fill(training.begin(), training.end(), false);
  EXPECT_THAT(FlagOutOfDistribution(runner, path, checked, training, 0.99, report),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 4")));
}

}  // namespace
}  // namespace fedmi::cli
