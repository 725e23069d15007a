// The site's cross-validated label audit (client/label_audit.h): folds that
// keep the class balance, out-of-sample scores that find flipped labels,
// and the federated model left as it was.
#include "client/label_audit.h"

#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/client/squares_model.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(StratifiedFoldsTest, EveryFoldHasTheClassBalanceOfTheWhole) {
  // 30 of class 0, 12 of class 1, 3 of class 2.
  std::vector<int64_t> labels;
  for (int i = 0; i < 45; ++i) labels.push_back(i < 30 ? 0 : i < 42 ? 1 : 2);
  const std::vector<int> folds = StratifiedFolds(labels, 3, 7);
  ASSERT_EQ(folds.size(), labels.size());
  std::map<std::pair<int, int64_t>, int> count;
  for (size_t row = 0; row < labels.size(); ++row) {
    ASSERT_GE(folds[row], 0);
    ASSERT_LT(folds[row], 3);
    ++count[{folds[row], labels[row]}];
  }
  for (int fold = 0; fold < 3; ++fold) {
    EXPECT_EQ((count[{fold, 0}]), 10) << "fold " << fold;
    EXPECT_EQ((count[{fold, 1}]), 4) << "fold " << fold;
    EXPECT_EQ((count[{fold, 2}]), 1) << "fold " << fold;
  }
  EXPECT_EQ(StratifiedFolds(labels, 3, 7), folds);
  EXPECT_NE(StratifiedFolds(labels, 3, 8), folds);
}

TEST(SiteLabelAuditTest, FindsFlippedLabelsAndLeavesTheModelAsItWas) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  ASSERT_OK_AND_ASSIGN(const TensorBundle before, model->ExportWeights());
  ImageSet site = ml::MakeSquares(100, 28, 5);
  const std::set<int64_t> flipped = {3, 10, 17, 24, 31, 38, 45, 52, 59, 66};
  for (int64_t row : flipped) site.labels[row] = 1 - site.labels[row];

  SiteLabelAuditOptions options;
  options.folds = 4;
  options.epochs = 2;
  options.seed = 3;
  std::vector<AuditFold> folds;
  ASSERT_OK_AND_ASSIGN(const LabelAudit audit,
                       AuditSiteLabels(*model, site, options,
                                       [&](const AuditFold& fold) { folds.push_back(fold); }));
  ASSERT_EQ(folds.size(), 4u);
  EXPECT_EQ(folds.back().fold, 4);
  EXPECT_EQ(folds.back().trained_on + folds.back().scored, 100);
  ASSERT_EQ(audit.ranked.size(), 100u);
  int flagged_flips = 0;
  for (const LabelSuspect& suspect : audit.ranked) {
    if (suspect.flagged && flipped.count(suspect.row) > 0) ++flagged_flips;
    if (suspect.flagged) EXPECT_NE(suspect.suggested, suspect.given);
  }
  EXPECT_GE(flagged_flips, 9);
  EXPECT_LE(audit.flagged, 15);
  // The top of the ranking is the flips.
  int flips_on_top = 0;
  for (size_t rank = 0; rank < flipped.size(); ++rank) {
    flips_on_top += flipped.count(audit.ranked[rank].row) > 0 ? 1 : 0;
  }
  EXPECT_GE(flips_on_top, 9);

  ASSERT_OK_AND_ASSIGN(const TensorBundle after, model->ExportWeights());
  EXPECT_TRUE(after.specs == before.specs && after.body == before.body)
      << "the audit must leave the federated weights in the model";
}

TEST(SiteLabelAuditTest, WithoutFineTuningScoresWithTheModelAsItIs) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  const ImageSet site = ml::MakeSquares(30, 28, 6);
  SiteLabelAuditOptions options;
  options.epochs = 0;
  int folds_seen = 0;
  ASSERT_OK_AND_ASSIGN(
      const std::vector<float> probabilities,
      OutOfSampleProbabilities(*model, site, options, [&](const AuditFold&) { ++folds_seen; }));
  ASSERT_OK_AND_ASSIGN(const ml::ImageScores scores, model->Score(site, {}));
  EXPECT_EQ(probabilities, scores.probabilities);
  EXPECT_EQ(folds_seen, 0);
}

TEST(SiteLabelAuditTest, RefusesTooFewImagesForTheFolds) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  SiteLabelAuditOptions options;
  options.folds = 5;
  EXPECT_THAT(AuditSiteLabels(*model, ml::MakeSquares(9, 28, 1), options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("9 labelled training images; 5 folds need at least 10")));
  options.folds = 1;
  EXPECT_THAT(AuditSiteLabels(*model, ml::MakeSquares(40, 28, 1), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 2 folds")));
}

}  // namespace
}  // namespace fedmi
