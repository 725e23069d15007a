#include "common/plot/canvas.h"

#include <cstdint>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/plot/stb_png.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

constexpr Rgb kRed{255, 0, 0};

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  return value;
}

TEST(CanvasTest, FillsClipsAndBlendsRectangles) {
  Canvas canvas(10, 8, kWhite);
  canvas.FillRect(8, 6, 20, 20, kRed);  // clipped to (8..9, 6..7)
  EXPECT_EQ(canvas.Pixel(9, 7), kRed);
  EXPECT_EQ(canvas.Pixel(8, 6), kRed);
  EXPECT_EQ(canvas.Pixel(7, 6), kWhite);
  EXPECT_EQ(canvas.Pixel(50, 50), kWhite);  // outside: the background

  canvas.FillRect(0, 0, 2, 2, kBlack, 0.5);
  EXPECT_EQ(canvas.Pixel(1, 1), (Rgb{128, 128, 128}));  // 255 + (0 - 255) / 2, rounded
  EXPECT_EQ(canvas.Pixel(2, 2), kWhite);                // the far corner is exclusive
}

TEST(CanvasTest, LinesIncludeBothEnds) {
  Canvas canvas(10, 10, kWhite);
  canvas.DrawLine(1, 8, 8, 1, kBlack);  // a diagonal going up
  for (int i = 1; i <= 8; ++i) EXPECT_EQ(canvas.Pixel(i, 9 - i), kBlack) << i;
  EXPECT_EQ(canvas.Pixel(1, 1), kWhite);

  canvas.DrawLine(0, 5, 9, 5, kRed, 3);  // rows 4, 5 and 6
  EXPECT_EQ(canvas.Pixel(5, 4), kRed);
  EXPECT_EQ(canvas.Pixel(5, 6), kRed);
  EXPECT_EQ(canvas.Pixel(5, 7), kWhite);
}

TEST(CanvasTest, StrokeRectDrawsTheOutlineOnly) {
  Canvas canvas(10, 10, kWhite);
  canvas.StrokeRect(2, 2, 7, 7, kBlack);
  EXPECT_EQ(canvas.Pixel(2, 2), kBlack);
  EXPECT_EQ(canvas.Pixel(6, 6), kBlack);
  EXPECT_EQ(canvas.Pixel(4, 4), kWhite);
  EXPECT_EQ(canvas.Pixel(7, 7), kWhite);
}

TEST(CanvasTest, DrawsGlyphsOfTheBuiltInFont) {
  Canvas canvas(40, 30, kWhite);
  // '1' is 00100 / 01100 / 00100 ... / 01110.
  canvas.DrawText(0, 0, "1", kBlack);
  EXPECT_EQ(canvas.Pixel(2, 0), kBlack);
  EXPECT_EQ(canvas.Pixel(1, 1), kBlack);
  EXPECT_EQ(canvas.Pixel(0, 0), kWhite);
  EXPECT_EQ(canvas.Pixel(1, 6), kBlack);
  EXPECT_EQ(canvas.Pixel(0, 6), kWhite);
  // Scale 2: each font pixel is 2x2; the next glyph starts 12 pixels on.
  canvas.DrawText(0, 10, "-.", kBlack, 2);
  EXPECT_EQ(canvas.Pixel(0, 16), kBlack);  // '-' fills row 3: y 16..17
  EXPECT_EQ(canvas.Pixel(9, 17), kBlack);
  EXPECT_EQ(canvas.Pixel(0, 15), kWhite);
  EXPECT_EQ(canvas.Pixel(12 + 4, 10 + 10), kBlack);  // '.' covers columns 1..2, rows 5..6

  EXPECT_EQ(Canvas::TextWidth("AB", 2), 22);
  EXPECT_EQ(Canvas::TextWidth(""), 0);
  EXPECT_EQ(Canvas::TextHeight(3), 21);
}

TEST(CanvasTest, LowerCaseLooksLikeUpperCaseAndUnknownLikeQuestionMark) {
  Canvas lower(30, 10), upper(30, 10), unknown(30, 10), question(30, 10);
  lower.DrawText(0, 0, "ece", kBlack);
  upper.DrawText(0, 0, "ECE", kBlack);
  unknown.DrawText(0, 0, "#", kBlack);
  question.DrawText(0, 0, "?", kBlack);
  bool any_ink = false;
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 30; ++x) {
      EXPECT_EQ(lower.Pixel(x, y), upper.Pixel(x, y)) << x << "," << y;
      EXPECT_EQ(unknown.Pixel(x, y), question.Pixel(x, y)) << x << "," << y;
      any_ink = any_ink || upper.Pixel(x, y) == kBlack;
    }
  }
  EXPECT_TRUE(any_ink);
}

TEST(CanvasTest, EncodesAPngThatDecodesToTheSamePixels) {
  Canvas canvas(13, 7, kWhite);
  canvas.FillRect(2, 3, 5, 6, kRed);
  canvas.SetPixel(12, 0, Rgb{1, 2, 3});
  absl::StatusOr<std::string> png = canvas.EncodePng();
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_GT(png->size(), 24u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png->substr(12, 4), "IHDR");
  EXPECT_EQ(BigEndian32(*png, 16), 13u);
  EXPECT_EQ(BigEndian32(*png, 20), 7u);

  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png->data()),
                            static_cast<int>(png->size()), &width, &height, &channels, 3),
      stbi_image_free);
  ASSERT_NE(pixels, nullptr) << stbi_failure_reason();
  ASSERT_EQ(width, 13);
  ASSERT_EQ(height, 7);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const stbi_uc* p = pixels.get() + (y * width + x) * 3;
      EXPECT_EQ((Rgb{p[0], p[1], p[2]}), canvas.Pixel(x, y)) << x << "," << y;
    }
  }
}

TEST(CanvasTest, SavePngIsAllOrNothing) {
  ScratchDir dir;
  Canvas canvas(4, 4, kRed);
  ASSERT_TRUE(canvas.SavePng(dir.Join("a.png")).ok());
  absl::StatusOr<std::string> written = ReadFileToString(dir.Join("a.png"));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, *canvas.EncodePng());

  FaultInjectionEnv env;
  env.FailCommits(absl::ResourceExhaustedError("No space left on device"));
  EXPECT_THAT(canvas.SavePng(dir.Join("b.png"), env),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space")));
  EXPECT_FALSE(Env::Default()->FileExists(dir.Join("b.png")));
}

}  // namespace
}  // namespace fedmi
