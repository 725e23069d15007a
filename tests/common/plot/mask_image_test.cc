#include "common/plot/mask_image.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/plot/stb_png.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

constexpr Rgb kRed{255, 0, 0};
constexpr Rgb kGreen{0, 255, 0};

// A 5x5 mask with the 3x3 square at rows/columns 1..3.
std::vector<uint8_t> Square() {
  std::vector<uint8_t> mask(25, 0);
  for (int y = 1; y < 4; ++y) {
    for (int x = 1; x < 4; ++x) mask[y * 5 + x] = 1;
  }
  return mask;
}

TEST(MaskImageTest, MaskIsWhiteOnBlackInScaledBlocks) {
  const auto mask = Square();
  ASSERT_OK_AND_ASSIGN(Canvas canvas, MaskCanvas(mask.data(), 5, 5, 2));
  EXPECT_EQ(canvas.width(), 10);
  EXPECT_EQ(canvas.height(), 10);
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      EXPECT_EQ(canvas.Pixel(x, y), mask[(y / 2) * 5 + x / 2] ? kWhite : kBlack) << x << "," << y;
    }
  }
}

TEST(MaskImageTest, OverlayOutlinesTheMaskAndKeepsTheImageElsewhere) {
  const auto mask = Square();
  std::vector<uint8_t> image(25, 100);
  std::vector<uint8_t> truth(25, 0);
  truth[0] = 1;  // A one-pixel truth in the corner.
  MaskOverlayOptions options;
  options.truth = truth.data();
  ASSERT_OK_AND_ASSIGN(Canvas canvas,
                       MaskOverlayCanvas(image.data(), 5, 5, 1, mask.data(), options));
  const Rgb grey{100, 100, 100};
  EXPECT_EQ(canvas.Pixel(0, 0), kGreen);
  EXPECT_EQ(canvas.Pixel(1, 1), kRed);  // Corner of the square: surface.
  EXPECT_EQ(canvas.Pixel(3, 2), kRed);
  EXPECT_EQ(canvas.Pixel(2, 2), grey);  // Its centre is interior.
  EXPECT_EQ(canvas.Pixel(4, 4), grey);
  EXPECT_THAT(MaskOverlayCanvas(image.data(), 5, 5, 2, mask.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 channels")));
}

TEST(MaskImageTest, SavedMaskDecodesToTheMask) {
  ScratchDir dir;
  const auto mask = Square();
  ASSERT_THAT(SaveMaskPng(mask.data(), 5, 5, dir.Join("mask.png")), IsOk());
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> grey(
      stbi_load(dir.Join("mask.png").c_str(), &width, &height, &channels, 1), stbi_image_free);
  ASSERT_NE(grey, nullptr);
  ASSERT_EQ(width, 5);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(grey.get()[i], mask[i] ? 255 : 0) << i;

  FaultInjectionEnv env;
  env.FailCommits(absl::ResourceExhaustedError("No space left on device"));
  EXPECT_THAT(SaveMaskOverlayPng(mask.data(), 5, 5, 1, mask.data(), dir.Join("o.png"), {}, env),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(Env::Default()->FileExists(dir.Join("o.png")));
  EXPECT_THAT(SaveMaskPng(mask.data(), 5, 5, dir.Join("big.png"), 100),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale 100")));
}

}  // namespace
}  // namespace fedmi
