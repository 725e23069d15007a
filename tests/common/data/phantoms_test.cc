#include "common/data/phantoms.h"

#include <algorithm>
#include <string>

#include "common/data/image_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PhantomsTest, MasksAreExactlyTheDarkLungsWithoutNoise) {
  PhantomOptions options;
  options.size = 48;
  options.noise_sigma = 0;
  ASSERT_OK_AND_ASSIGN(ImageSet set, GeneratePhantoms(options, 0, 20));
  ASSERT_EQ(set.size(), 20);
  ASSERT_EQ(set.masks.size(), set.pixels.size());
  int healthy = 0;
  for (int64_t row = 0; row < set.size(); ++row) {
    const uint8_t* image = set.pixels.data() + row * set.ImageBytes();
    const uint8_t* mask = set.masks.data() + row * set.MaskBytes();
    int64_t left = 0, right = 0, foreground = 0;
    for (int64_t i = 0; i < set.MaskBytes(); ++i) {
      ASSERT_LE(mask[i], 1);
      if (mask[i]) {
        ++foreground;
        (i % options.size < options.size / 2 ? left : right) += 1;
      }
      if (set.labels[row] == 0) {
        // Lungs (air, <= 55) under the mask; tissue (>= 135) or the black
        // outside elsewhere.
        if (mask[i]) {
          EXPECT_LE(image[i], 55) << "row " << row << " pixel " << i;
        } else {
          EXPECT_TRUE(image[i] == 0 || image[i] >= 135) << "row " << row << " pixel " << i;
        }
      }
    }
    healthy += set.labels[row] == 0;
    // Two lungs, one each side, covering a plausible share of the chest.
    EXPECT_GT(left, 0) << row;
    EXPECT_GT(right, 0) << row;
    EXPECT_GT(foreground, set.MaskBytes() / 20) << row;
    EXPECT_LT(foreground, set.MaskBytes() / 3) << row;
  }
  EXPECT_GT(healthy, 0);
  EXPECT_LT(healthy, 20);
}

TEST(PhantomsTest, SeedReproducesAndDifferentSeedsDiffer) {
  PhantomOptions options;
  options.size = 32;
  options.seed = 11;
  ASSERT_OK_AND_ASSIGN(ImageSet a, GeneratePhantoms(options, 0, 6));
  ASSERT_OK_AND_ASSIGN(ImageSet b, GeneratePhantoms(options, 0, 6));
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.masks, b.masks);
  EXPECT_EQ(a.labels, b.labels);
  // Image i depends on (seed, i) only.
  ASSERT_OK_AND_ASSIGN(ImageSet tail, GeneratePhantoms(options, 4, 2));
  EXPECT_TRUE(std::equal(tail.masks.begin(), tail.masks.end(), a.masks.begin() + 4 * 32 * 32));
  options.seed = 12;
  ASSERT_OK_AND_ASSIGN(ImageSet c, GeneratePhantoms(options, 0, 6));
  EXPECT_NE(a.pixels, c.pixels);
  EXPECT_NE(a.masks, c.masks);
}

TEST(PhantomsTest, NpzHasThreeSplitsThatLoadWithMasks) {
  PhantomOptions options;
  options.count = 20;
  options.size = 32;
  options.split_fractions = {0.6, 0.25, 0.15};
  ASSERT_OK_AND_ASSIGN(auto npz, PhantomNpz(options));
  EXPECT_THAT(npz.at("train_images").shape, ElementsAre(12, 32, 32));
  EXPECT_THAT(npz.at("val_masks").shape, ElementsAre(5, 32, 32));
  EXPECT_THAT(npz.at("test_labels").shape, ElementsAre(3, 1));
  ScratchDir dir;
  const std::string path = dir.Join("phantoms.npz");
  ASSERT_THAT(WriteNpz(path, npz), IsOk());
  SiteDataOptions load;
  load.height = load.width = 32;
  load.with_masks = true;
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(path, load));
  EXPECT_EQ(site.train.size(), 12);
  EXPECT_EQ(site.val.size(), 5);
  ASSERT_OK_AND_ASSIGN(ImageSet expected, GeneratePhantoms(options, 12, 5));
  EXPECT_EQ(site.val.masks, expected.masks);
}

TEST(PhantomsTest, BadOptionsAreRefused) {
  PhantomOptions options;
  options.split_fractions = {0.5, 0.5, 0.5};
  EXPECT_THAT(PhantomNpz(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("split fractions")));
  options.split_fractions = {0.7, 0.15, 0.15};
  options.size = 8;
  EXPECT_THAT(PhantomNpz(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size 8")));
}

}  // namespace
}  // namespace fedmi
