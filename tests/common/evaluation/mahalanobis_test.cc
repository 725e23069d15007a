#include "common/evaluation/mahalanobis.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// Two classes in 2-D around (0, 0) and (10, 0), each with standard
// deviation 3 along x and 0.1 along y.
void Sample(std::vector<float>& embeddings, std::vector<int64_t>& labels) {
  std::mt19937 rng(1);
  std::normal_distribution<double> wide(0, 3), narrow(0, 0.1);
  for (int i = 0; i < 4000; ++i) {
    const int64_t label = i % 2;
    embeddings.push_back(static_cast<float>(10 * label + wide(rng)));
    embeddings.push_back(static_cast<float>(narrow(rng)));
    labels.push_back(label);
  }
}

TEST(MahalanobisTest, DistancesFollowTheSharedCovarianceAndTheNearestClass) {
  std::vector<float> embeddings;
  std::vector<int64_t> labels;
  Sample(embeddings, labels);
  ASSERT_OK_AND_ASSIGN(ClassGaussians fitted, FitClassGaussians(embeddings, labels, 2));
  EXPECT_EQ(fitted.classes, (std::vector<int64_t>{0, 1}));
  EXPECT_NEAR(fitted.means[2], 10, 0.2);
  // One unit along y is ten standard deviations; along x, a third.
  ASSERT_OK_AND_ASSIGN(std::vector<double> d,
                       MahalanobisDistances(fitted, {0, 1, 1, 0, 10, 0, 5, 0}));
  EXPECT_NEAR(d[0], 10, 1.2);  // the ridge widens the narrow axis a little
  EXPECT_NEAR(d[1], 1.0 / 3, 0.06);
  EXPECT_NEAR(d[2], 0, 0.05);
  EXPECT_NEAR(d[3], 5.0 / 3, 0.05);  // halfway: 5 from either mean
  // Most of the training data lies within 3 standard deviations.
  ASSERT_OK_AND_ASSIGN(std::vector<double> own, MahalanobisDistances(fitted, embeddings));
  EXPECT_LT(Quantile(own, 0.99), 3.5);
  EXPECT_GT(Quantile(own, 0.99), 2.5);
}

TEST(MahalanobisTest, ConstantFeaturesDoNotBreakTheFit) {
  // A dead ReLU feature: always 0. The ridge keeps the covariance invertible.
  std::vector<float> embeddings;
  std::vector<int64_t> labels;
  for (int i = 0; i < 40; ++i) {
    embeddings.insert(embeddings.end(), {static_cast<float>(i % 10), 0.0f});
    labels.push_back(i % 2);
  }
  ASSERT_OK_AND_ASSIGN(ClassGaussians fitted, FitClassGaussians(embeddings, labels, 2));
  ASSERT_OK_AND_ASSIGN(std::vector<double> d, MahalanobisDistances(fitted, {5, 0, 5, 5}));
  EXPECT_TRUE(std::isfinite(d[0]));
  EXPECT_LT(d[0], 1);
  EXPECT_GT(d[1], 10);
}

TEST(MahalanobisTest, QuantilesAndErrors) {
  EXPECT_DOUBLE_EQ(Quantile({3, 1, 2, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Quantile({3, 1, 2, 4}, 1), 4);
  EXPECT_TRUE(std::isnan(Quantile({}, 0.5)));
  EXPECT_THAT(FitClassGaussians({1, 2}, {0}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 2 rows")));
  ClassGaussians fitted;
  fitted.dim = 3;
  EXPECT_THAT(MahalanobisDistances(fitted, {1, 2}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fedmi
