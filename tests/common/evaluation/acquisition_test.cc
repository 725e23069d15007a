#include "common/evaluation/acquisition.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<int64_t> Rows(const std::vector<AcquiredImage>& chosen) {
  std::vector<int64_t> rows;
  for (const AcquiredImage& image : chosen) rows.push_back(image.row);
  return rows;
}

// Four images, P(class 1) 0.5, 0.9, 0.6, 0.99.
PoolView Binary() {
  PoolView pool;
  pool.rows = 4;
  pool.num_classes = 2;
  pool.probabilities = {0.5f, 0.5f, 0.1f, 0.9f, 0.4f, 0.6f, 0.01f, 0.99f};
  return pool;
}

TEST(AcquisitionTest, NamesRoundTrip) {
  for (AcquisitionMethod method :
       {AcquisitionMethod::kEntropy, AcquisitionMethod::kMargin, AcquisitionMethod::kBald,
        AcquisitionMethod::kCoreset, AcquisitionMethod::kRandom}) {
    ASSERT_OK_AND_ASSIGN(AcquisitionMethod parsed,
                         ParseAcquisitionMethod(AcquisitionMethodName(method)));
    EXPECT_EQ(parsed, method);
  }
  EXPECT_THAT(ParseAcquisitionMethod("uncertainty"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("entropy|margin|bald")));
}

TEST(AcquisitionTest, EntropyAndMarginRankTheLeastCertainFirst) {
  const float even[] = {0.5f, 0.5f};
  EXPECT_NEAR(Entropy(even, 2), std::log(2.0), 1e-9);
  EXPECT_NEAR(Margin(even, 2), 1.0, 1e-9);
  const float sure[] = {0.0f, 1.0f};
  EXPECT_NEAR(Entropy(sure, 2), 0.0, 1e-9);
  EXPECT_NEAR(Margin(sure, 2), 0.0, 1e-9);
  ASSERT_OK_AND_ASSIGN(auto entropy, Acquire(AcquisitionMethod::kEntropy, Binary(), 3, 0));
  EXPECT_THAT(Rows(entropy), ElementsAre(0, 2, 1));
  ASSERT_OK_AND_ASSIGN(auto margin, Acquire(AcquisitionMethod::kMargin, Binary(), 10, 0));
  EXPECT_THAT(Rows(margin), ElementsAre(0, 2, 1, 3));
  EXPECT_NEAR(margin[1].score, 1 - 0.2, 1e-6);
}

TEST(AcquisitionTest, BaldPrefersDisagreementToAgreedUncertainty) {
  // Row 0: every pass says 0.5 (unsure, but dropout agrees: no information).
  // Row 1: passes say 0.05 and 0.95 (each sure, they disagree).
  PoolView pool;
  pool.rows = 2;
  pool.num_classes = 2;
  pool.probabilities = {0.5f, 0.5f, 0.5f, 0.5f};
  pool.mc_passes = 2;
  pool.mc_probabilities = {0.5f, 0.5f, 0.95f, 0.05f,   // pass 0: rows 0, 1
                           0.5f, 0.5f, 0.05f, 0.95f};  // pass 1
  const std::vector<double> scores = BaldScores(pool);
  EXPECT_NEAR(scores[0], 0.0, 1e-7);
  EXPECT_GT(scores[1], 0.4);
  ASSERT_OK_AND_ASSIGN(auto chosen, Acquire(AcquisitionMethod::kBald, pool, 1, 0));
  EXPECT_THAT(Rows(chosen), ElementsAre(1));
  // Entropy cannot tell them apart: both predict 0.5 on average.
  ASSERT_OK_AND_ASSIGN(auto entropy, Acquire(AcquisitionMethod::kEntropy, pool, 2, 0));
  EXPECT_DOUBLE_EQ(entropy[0].score, entropy[1].score);
  pool.mc_passes = 1;
  EXPECT_THAT(Acquire(AcquisitionMethod::kBald, pool, 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Monte-Carlo")));
}

TEST(AcquisitionTest, CoresetCoversThePoolInsteadOfRepeatingACluster) {
  // Pool: three images near (0, 0), one at (10, 0), one at (0, 10); the
  // labelled image sits at (0, 0).
  PoolView pool = {};
  pool.rows = 5;
  pool.num_classes = 2;
  pool.probabilities.assign(10, 0.5f);
  pool.embedding_dim = 2;
  pool.embeddings = {0.1f, 0, 0.2f, 0, 0, 0.1f, 10, 0, 0, 10};
  pool.labelled_embeddings = {0, 0};
  ASSERT_OK_AND_ASSIGN(auto chosen, Acquire(AcquisitionMethod::kCoreset, pool, 3, 0));
  // The two far images first (ties broken by row), then one of the cluster.
  EXPECT_THAT(Rows(chosen), ElementsAre(3, 4, 1));
  EXPECT_NEAR(chosen[0].score, 10.0, 1e-6);
  EXPECT_NEAR(chosen[1].score, 10.0, 1e-6);
  // Entropy, blind to geometry, would have taken the cluster's rows.
  ASSERT_OK_AND_ASSIGN(auto entropy, Acquire(AcquisitionMethod::kEntropy, pool, 3, 0));
  EXPECT_THAT(Rows(entropy), ElementsAre(0, 1, 2));
  pool.embeddings.pop_back();
  EXPECT_THAT(Acquire(AcquisitionMethod::kCoreset, pool, 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("embedding")));
}

TEST(AcquisitionTest, CoresetWithNothingLabelledStartsAnywhereAndSpreads) {
  PoolView pool;
  pool.rows = 3;
  pool.num_classes = 2;
  pool.probabilities.assign(6, 0.5f);
  pool.embedding_dim = 1;
  pool.embeddings = {0, 0.1f, 5};
  ASSERT_OK_AND_ASSIGN(auto chosen, Acquire(AcquisitionMethod::kCoreset, pool, 2, 3));
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_NE(chosen[0].row, chosen[1].row);
  // Whichever came first, the second is far from it.
  EXPECT_TRUE(chosen[0].row == 2 || chosen[1].row == 2);
}

TEST(AcquisitionTest, SkippedRowsAreNeverChosenAndBudgetsCapAtThePool) {
  ASSERT_OK_AND_ASSIGN(auto chosen, Acquire(AcquisitionMethod::kEntropy, Binary(), 10, 0,
                                            {true, false, false, false}));
  EXPECT_THAT(Rows(chosen), ElementsAre(2, 1, 3));
  EXPECT_THAT(Acquire(AcquisitionMethod::kEntropy, Binary(), 1, 0, {true}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AcquisitionTest, RandomIsASeededShuffle) {
  PoolView pool;
  pool.rows = 50;
  pool.num_classes = 2;
  pool.probabilities.assign(100, 0.5f);
  ASSERT_OK_AND_ASSIGN(auto first, Acquire(AcquisitionMethod::kRandom, pool, 10, 4));
  ASSERT_OK_AND_ASSIGN(auto again, Acquire(AcquisitionMethod::kRandom, pool, 10, 4));
  ASSERT_OK_AND_ASSIGN(auto other, Acquire(AcquisitionMethod::kRandom, pool, 10, 5));
  EXPECT_EQ(Rows(first), Rows(again));
  EXPECT_NE(Rows(first), Rows(other));
  EXPECT_NE(Rows(first), std::vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

}  // namespace
}  // namespace fedmi
