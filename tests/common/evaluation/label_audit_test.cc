#include "common/evaluation/label_audit.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(LabelAuditTest, FlagsImagesAnotherClassClaimsConfidently) {
  // Class 0's images: P(class 0) 0.9, 0.8, 0.7 -> t_0 = 0.8. Class 1's:
  // P(class 1) 0.9, 0.6 and a 0.1 (an image labelled 1 that looks like 0)
  // -> t_1 = 1.6 / 3.
  const std::vector<float> p = {0.9f, 0.1f, 0.8f, 0.2f, 0.7f, 0.3f,
                                0.1f, 0.9f, 0.4f, 0.6f, 0.9f, 0.1f};
  const std::vector<int64_t> labels = {0, 0, 0, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(LabelAudit audit, AuditLabels(p, labels, 2));
  EXPECT_NEAR(audit.class_thresholds[0], 0.8, 1e-6);
  EXPECT_NEAR(audit.class_thresholds[1], (0.9 + 0.6 + 0.1) / 3, 1e-6);
  EXPECT_EQ(audit.flagged, 1);
  ASSERT_EQ(audit.ranked.size(), 6u);
  const LabelSuspect& first = audit.ranked.front();
  EXPECT_EQ(first.row, 5);
  EXPECT_TRUE(first.flagged);
  EXPECT_EQ(first.given, 1);
  EXPECT_EQ(first.suggested, 0);
  EXPECT_NEAR(first.margin, 0.1 - 0.9, 1e-6);
  // Row 2 (0.7 for its own class, under t_0) is unsure but no other class
  // reaches its threshold (0.3 < t_1): ranked, not flagged.
  for (const LabelSuspect& s : audit.ranked) {
    if (s.row != 5) EXPECT_FALSE(s.flagged) << s.row;
  }
  // Most suspect first: margins never decrease.
  for (size_t i = 1; i < audit.ranked.size(); ++i) {
    EXPECT_LE(audit.ranked[i - 1].margin, audit.ranked[i].margin);
  }
}

// The confident joint says how many labels are wrong, the margin which:
// here it counts one image (row 3, labelled 0, P(1) = 0.7 >= t_1 = 2/3),
// but row 6 (labelled 1, P(0) = 0.8, just under t_0) has the lower margin
// and is the one flagged.
TEST(LabelAuditTest, FlagsAsManyAsCountedFromTheTopOfTheRanking) {
  const std::vector<float> p = {0.99f, 0.01f, 0.99f, 0.01f, 0.99f, 0.01f, 0.3f,
                                0.7f,  0.1f,  0.9f,  0.1f,  0.9f,  0.8f,  0.2f};
  const std::vector<int64_t> labels = {0, 0, 0, 0, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(LabelAudit audit, AuditLabels(p, labels, 2));
  EXPECT_NEAR(audit.class_thresholds[0], (0.99 * 3 + 0.3) / 4, 1e-6);
  EXPECT_NEAR(audit.class_thresholds[1], (0.9 + 0.9 + 0.2) / 3, 1e-6);
  EXPECT_EQ(audit.flagged, 1);
  EXPECT_EQ(audit.ranked[0].row, 6);
  EXPECT_TRUE(audit.ranked[0].flagged);
  EXPECT_EQ(audit.ranked[0].suggested, 0);
  EXPECT_EQ(audit.ranked[1].row, 3);
  EXPECT_FALSE(audit.ranked[1].flagged);
  EXPECT_EQ(audit.ranked[1].suggested, 1);
}

// Out of sample, every image whose label the model does not find likeliest
// is flagged: here row 3 as well as row 6.
TEST(LabelAuditTest, LikeliestDisagreesFlagsEveryNegativeMargin) {
  const std::vector<float> p = {0.99f, 0.01f, 0.99f, 0.01f, 0.99f, 0.01f, 0.3f,
                                0.7f,  0.1f,  0.9f,  0.1f,  0.9f,  0.8f,  0.2f};
  const std::vector<int64_t> labels = {0, 0, 0, 0, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(LabelAudit audit, AuditLabels(p, labels, 2, FlagRule::kLikeliestDisagrees));
  EXPECT_EQ(audit.flagged, 2);
  EXPECT_TRUE(audit.ranked[0].flagged);
  EXPECT_TRUE(audit.ranked[1].flagged);
  EXPECT_EQ(audit.ranked[0].suggested, 0);
  EXPECT_EQ(audit.ranked[1].suggested, 1);
  for (size_t i = 2; i < audit.ranked.size(); ++i) EXPECT_FALSE(audit.ranked[i].flagged);
}

// A planted flip among a model's confident, out-of-sample predictions is
// found at the top; random labels would not be.
TEST(LabelAuditTest, FlippedLabelsRankAboveCleanOnes) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> confident(0.7f, 0.99f);
  std::vector<float> p;
  std::vector<int64_t> labels;
  std::vector<bool> flipped;
  for (int i = 0; i < 200; ++i) {
    const int64_t truth = i % 2;
    const float q = confident(rng);
    p.push_back(truth == 0 ? q : 1 - q);
    p.push_back(truth == 0 ? 1 - q : q);
    const bool flip = i % 10 == 3;
    labels.push_back(flip ? 1 - truth : truth);
    flipped.push_back(flip);
  }
  ASSERT_OK_AND_ASSIGN(LabelAudit audit, AuditLabels(p, labels, 2));
  int found = 0;
  for (int i = 0; i < 20; ++i) found += flipped[audit.ranked[i].row] ? 1 : 0;
  EXPECT_EQ(found, 20);
  // Flagging needs the other class to reach its own average confidence, so
  // it catches fewer flips than the ranking, but no clean image.
  EXPECT_GE(audit.flagged, 5);
  for (const LabelSuspect& s : audit.ranked) {
    if (s.flagged) EXPECT_TRUE(flipped[s.row]) << s.row;
  }
}

TEST(LabelAuditTest, RefusesInconsistentInput) {
  EXPECT_THAT(AuditLabels({0.5f, 0.5f}, {0, 1}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 x 2")));
  EXPECT_THAT(AuditLabels({0.5f, 0.5f}, {2}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 2")));
  // A class nobody is labelled with has no threshold and claims nothing.
  ASSERT_OK_AND_ASSIGN(LabelAudit audit, AuditLabels({0.2f, 0.8f}, {0}, 2));
  EXPECT_TRUE(std::isnan(audit.class_thresholds[1]));
  EXPECT_EQ(audit.flagged, 0);
}

}  // namespace
}  // namespace fedmi
