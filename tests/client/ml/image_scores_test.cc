// LocalModel::Score (client/ml/image_scores.cc) and TrainOptions'
// example weights: what active learning, label audits and pseudo-labels
// read from a model.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "client/ml/local_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<LocalModel> Cnn(uint64_t seed = 3) {
  ModelConfig config;
  config.seed = seed;
  auto model = LocalModel::Create(config);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

TEST(ImageScoresTest, ProbabilitiesMatchPredictAndEmbeddingsAreTheLastLayersInput) {
  auto model = Cnn();
  const ImageSet images = MakeSquares(10, 28, 1);
  ScoreOptions options;
  options.embeddings = true;
  ASSERT_OK_AND_ASSIGN(ImageScores scores, model->Score(images, options));
  ASSERT_OK_AND_ASSIGN(Predictions predictions, model->Predict(images));
  ASSERT_EQ(scores.probabilities.size(), 20u);
  for (int64_t row = 0; row < 10; ++row) {
    EXPECT_NEAR(scores.probabilities[row * 2] + scores.probabilities[row * 2 + 1], 1.0, 1e-5);
    EXPECT_NEAR(scores.probabilities[row * 2 + 1], predictions.prob_positive[row], 1e-5);
  }
  // The cnn's fc2 takes 128 ReLU features.
  EXPECT_EQ(scores.embedding_dim, 128);
  ASSERT_EQ(scores.embeddings.size(), 10u * 128);
  EXPECT_GE(*std::min_element(scores.embeddings.begin(), scores.embeddings.end()), 0.0f);
  EXPECT_TRUE(scores.mc_probabilities.empty());
}

TEST(ImageScoresTest, MonteCarloDropoutVariesWithTheRateAndRepeatsWithTheSeed) {
  auto model = Cnn();
  const ImageSet images = MakeSquares(6, 28, 2);
  ScoreOptions options;
  options.mc_passes = 4;
  options.mc_dropout = 0;
  options.batch_size = 4;  // two batches: each pass's rows land in place
  ASSERT_OK_AND_ASSIGN(ImageScores still, model->Score(images, options));
  ASSERT_EQ(still.mc_probabilities.size(), 4u * 6 * 2);
  for (size_t i = 0; i < still.mc_probabilities.size(); ++i) {
    EXPECT_NEAR(still.mc_probabilities[i], still.probabilities[i % 12], 1e-5) << i;
  }
  options.mc_dropout = 0.5;
  options.seed = 9;
  ASSERT_OK_AND_ASSIGN(ImageScores dropped, model->Score(images, options));
  ASSERT_OK_AND_ASSIGN(ImageScores again, model->Score(images, options));
  EXPECT_EQ(dropped.mc_probabilities, again.mc_probabilities);
  double spread = 0;
  for (size_t i = 0; i < 12; ++i) {
    spread += std::abs(dropped.mc_probabilities[i] - dropped.mc_probabilities[12 + i]);
  }
  EXPECT_GT(spread, 1e-4);
  // Scoring leaves the weights alone: eval-mode probabilities are unchanged.
  EXPECT_EQ(dropped.probabilities, still.probabilities);
  options.mc_dropout = 1;
  EXPECT_THAT(model->Score(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mc_dropout")));
}

TEST(ImageScoresTest, UnlabelledImagesAreScoredWithoutTheirLabels) {
  auto model = Cnn();
  ImageSet pool = MakeSquares(4, 28, 3);
  std::fill(pool.labels.begin(), pool.labels.end(), kNoLabel);
  ASSERT_OK_AND_ASSIGN(ImageScores scores, model->Score(pool, {}));
  EXPECT_EQ(scores.rows, 4);
  ImageSet wrong = MakeSquares(2, 32, 3);
  EXPECT_THAT(model->Score(wrong, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Half of the squares carry the wrong label. Weighted 0, they teach
// nothing: the model learns the squares. At weight 1 it cannot.
TEST(ExampleWeightsTest, ZeroWeightedWrongLabelsAreNotLearned) {
  const ImageSet clean = MakeSquares(320, 28, 4);
  ImageSet noisy = clean;
  std::vector<float> weights(clean.size(), 1.0f);
  for (int64_t row = 0; row < clean.size(); row += 4) {
    noisy.labels[row] = 1 - noisy.labels[row];
    noisy.labels[row + 1] = 1 - noisy.labels[row + 1];
    weights[row] = weights[row + 1] = 0;
  }
  TrainOptions options;
  options.epochs = 5;
  options.batch_size = 16;
  options.seed = 1;
  auto accuracy = [&](const std::vector<float>& example_weights) {
    auto model = Cnn(5);
    TrainOptions weighted = options;
    weighted.example_weights = example_weights;
    EXPECT_THAT(model->Train(noisy, weighted), IsOk());
    auto predictions = model->Predict(MakeSquares(100, 28, 5));
    EXPECT_TRUE(predictions.ok());
    double correct = 0;
    for (int64_t i = 0; i < 100; ++i) correct += predictions->predicted[i] == i % 2 ? 1 : 0;
    return correct / 100;
  };
  EXPECT_GT(accuracy(weights), 0.9);
  EXPECT_LT(accuracy({}), 0.75);
}

TEST(ExampleWeightsTest, WeightsAreCheckedBeforeTraining) {
  auto model = Cnn();
  const ImageSet images = MakeSquares(8, 28, 6);
  TrainOptions options;
  options.example_weights = {1, 1, 1};
  EXPECT_THAT(model->Train(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 for 8")));
  options.example_weights.assign(8, 1);
  options.example_weights[2] = -1;
  EXPECT_THAT(model->Train(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(">= 0")));
  options.example_weights[2] = 1;
  options.dp = DpSgdOptions{1, 0, 0.5, 1};
  EXPECT_THAT(model->Train(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no DP-SGD")));
  options.dp.reset();
  options.strongly_augmented_from = 9;
  EXPECT_THAT(model->Train(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("first row in [0, 8]")));
  options.strongly_augmented_from = 4;
  options.strong_augmentation.cutout = 1.5;
  EXPECT_THAT(model->Train(images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cutout")));
  options.strong_augmentation.cutout = 0.5;
  EXPECT_THAT(model->Train(images, options), IsOk());
}

}  // namespace
}  // namespace fedmi::ml
