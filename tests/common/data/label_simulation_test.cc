#include "common/data/label_simulation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/data/image_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/data/tiny_npz.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(LabelSimulationTest, HiddenLabelsGoToTheTruthFileAndFlipsAreRecorded) {
  ScratchDir dir;
  const std::string path = dir.Join("site-1.npz");
  ASSERT_THAT(WriteNpz(path, {{"train_images", Images(10, 0)},
                              {"train_labels", Labels({0, 1, 0, 1, 0, 1, 0, 1, 0, 1})},
                              {"val_images", Images(2, 50)},
                              {"val_labels", Labels({0, 1})}}),
              IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t hidden, HideTrainingLabels(path, 0.3, 1, dir.Join("truth.csv")));
  EXPECT_EQ(hidden, 7);
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(path, At4x4()));
  EXPECT_EQ(site.train.size(), 3);
  EXPECT_EQ(site.unlabelled.images.size(), 7);
  ASSERT_OK_AND_ASSIGN(std::string truth, ReadFileToString(dir.Join("truth.csv")));
  // Image i was filled with i and labelled i % 2: the truth says so.
  for (int64_t row = 0; row < 7; ++row) {
    const int value = site.unlabelled.images.pixels[row * 16];
    EXPECT_THAT(truth, HasSubstr(absl::StrCat(site.unlabelled.ids[row], ",", value % 2, "\n")));
  }
  EXPECT_THAT(HideTrainingLabels(path, 0.5, 1, dir.Join("again.csv")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already")));

  ASSERT_OK_AND_ASSIGN(int64_t flipped, FlipTrainingLabels(path, 0.34, 2, dir.Join("flip.csv")));
  EXPECT_EQ(flipped, 1);
  ASSERT_OK_AND_ASSIGN(SiteDataset noisy, LoadSiteDataset(path, At4x4()));
  int wrong = 0;
  for (int64_t row = 0; row < noisy.train.size(); ++row) {
    wrong += noisy.train.labels[row] != noisy.train.pixels[row * 16] % 2 ? 1 : 0;
  }
  EXPECT_EQ(wrong, 1);
}

}  // namespace
}  // namespace fedmi
