#include "client/ml/training_recipe.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

at::Generator Seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// A N,1,H,W batch whose pixel (r, c) of image i is distinct, in [-1, 1].
torch::Tensor Distinct(int64_t n, int64_t h, int64_t w) {
  return torch::arange(n * h * w, torch::kFloat32)
      .reshape({n, 1, h, w})
      .div_(n * h * w)
      .mul_(2)
      .sub_(1);
}

AugmentationOptions Everything() {
  AugmentationOptions options;
  options.max_shift = 2;
  options.crop_min_scale = 0.8;
  options.crop_max_aspect = 4.0 / 3;
  options.max_rotation_degrees = 10;
  options.horizontal_flip = true;
  options.brightness = 0.1;
  options.contrast = 0.1;
  return options;
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/0, /*atol=*/1e-5))
      << "largest difference " << (actual - expected).abs().max().item<float>();
}

TEST(AugmentationTest, DefaultIsTheWholePixelShiftOfUpToTwoAlone) {
  const AugmentationOptions defaults;
  EXPECT_EQ(defaults.max_shift, 2);
  EXPECT_EQ(defaults.crop_min_scale, 1);
  EXPECT_EQ(defaults.crop_max_aspect, 1);
  EXPECT_EQ(defaults.max_rotation_degrees, 0);
  EXPECT_FALSE(defaults.horizontal_flip);
  EXPECT_EQ(defaults.brightness, 0);
  EXPECT_EQ(defaults.contrast, 0);

  const int64_t n = 16, side = 9;
  const torch::Tensor batch = Distinct(n, side, side);
  at::Generator generator = Seeded(5);
  const torch::Tensor out = Augment(batch, defaults, generator);
  // Each image is its input moved by whole pixels, edges replicated.
  const torch::Tensor padded = torch::replication_pad2d(batch, {2, 2, 2, 2});
  int moved = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool found = false;
    for (int64_t dy = 0; dy <= 4 && !found; ++dy) {
      for (int64_t dx = 0; dx <= 4 && !found; ++dx) {
        found = torch::equal(out[i], padded[i].narrow(1, dy, side).narrow(2, dx, side));
        if (found && (dy != 2 || dx != 2)) ++moved;
      }
    }
    EXPECT_TRUE(found) << "image " << i << " is not a whole-pixel shift of its input";
  }
  EXPECT_GT(moved, n / 2);
  // The very draws of the shift this option replaced.
  at::Generator again = Seeded(5);
  EXPECT_TRUE(torch::equal(out, RandomShift(batch, 2, again)));
}

TEST(AugmentationTest, AllOffReturnsTheBatchBitForBitAndDrawsNothing) {
  AugmentationOptions off;
  off.max_shift = 0;
  const torch::Tensor batch = Distinct(4, 8, 8);
  at::Generator generator = Seeded(9);
  const torch::Tensor out = Augment(batch, off, generator);
  EXPECT_TRUE(torch::equal(out, batch));
  at::Generator fresh = Seeded(9);
  EXPECT_TRUE(torch::equal(torch::rand({4}, generator), torch::rand({4}, fresh)));
}

TEST(AugmentationTest, IdentityGeometryKeepsTheImage) {
  const torch::Tensor batch = Distinct(3, 7, 10);
  ExpectClose(WarpBatch(batch, ExampleGeometry::Identity(3)), batch);
}

TEST(AugmentationTest, MirrorFlipsLeftRightOnlyWhereAsked) {
  const torch::Tensor batch = Distinct(2, 5, 6);
  ExampleGeometry geometry = ExampleGeometry::Identity(2);
  geometry.mirror = torch::tensor({1.0f, 0.0f});
  const torch::Tensor out = WarpBatch(batch, geometry);
  ExpectClose(out[0], batch[0].flip({2}));
  ExpectClose(out[1], batch[1]);
}

TEST(AugmentationTest, QuarterTurnRotatesCounterClockwise) {
  const torch::Tensor batch = Distinct(1, 6, 6);
  ExampleGeometry geometry = ExampleGeometry::Identity(1);
  geometry.angle_degrees = torch::tensor({90.0f});
  // rot90 from the row axis towards the column axis: the top-right corner
  // goes to the top-left.
  ExpectClose(WarpBatch(batch, geometry), batch.rot90(1, {2, 3}));
  geometry.angle_degrees = torch::tensor({180.0f});
  const torch::Tensor wide = Distinct(1, 4, 6);
  ExpectClose(WarpBatch(wide, geometry), wide.flip({2, 3}));
}

TEST(AugmentationTest, SmallRotationKeepsTheCentreOfAnOddImage) {
  const torch::Tensor batch = Distinct(1, 7, 7);
  ExampleGeometry geometry = ExampleGeometry::Identity(1);
  geometry.angle_degrees = torch::tensor({10.0f});
  const torch::Tensor out = WarpBatch(batch, geometry);
  EXPECT_NEAR(out[0][0][3][3].item<float>(), batch[0][0][3][3].item<float>(), 1e-5);
  EXPECT_GT((out - batch).abs().max().item<float>(), 0.01);
}

TEST(AugmentationTest, CropStretchesItsRegionToTheWholeImage) {
  // Each row is the ramp v(c) = 0.1 c - 0.5: bilinear resampling of a ramp
  // is exact, so the cropped image is the ramp over the region.
  const int64_t h = 4, w = 8;
  const torch::Tensor ramp = (torch::arange(w, torch::kFloat32) * 0.1 - 0.5).expand({1, 1, h, w});
  ExampleGeometry geometry = ExampleGeometry::Identity(1);
  geometry.scale_x = torch::tensor({0.5f});
  geometry.offset_x = torch::tensor({1.0f});  // the region's centre, 1 px right
  const torch::Tensor out = WarpBatch(ramp.contiguous(), geometry);
  for (int64_t c = 0; c < w; ++c) {
    const double source_column = 0.5 * (c - 3.5) + 1 + 3.5;
    for (int64_t r = 0; r < h; ++r) {
      EXPECT_NEAR(out[0][0][r][c].item<float>(), 0.1 * source_column - 0.5, 1e-5) << r << "," << c;
    }
  }
}

TEST(AugmentationTest, JitterScalesMeanByBrightnessAndSpreadByContrast) {
  // Pixels in [0.3, 0.6] (in [0, 1] units): no factor here reaches a clamp.
  const torch::Tensor unit = torch::linspace(0.3, 0.6, 2 * 5 * 5).reshape({2, 1, 5, 5});
  const torch::Tensor batch = unit * 2 - 1;
  const torch::Tensor out =
      JitterIntensity(batch, torch::tensor({1.1f, 1.0f}), torch::tensor({1.0f, 0.8f}));
  const torch::Tensor out_unit = (out + 1) / 2;
  EXPECT_NEAR(out_unit[0].mean().item<float>(), 1.1 * unit[0].mean().item<float>(), 1e-5);
  EXPECT_NEAR(out_unit[0].std().item<float>(), 1.1 * unit[0].std().item<float>(), 1e-5);
  EXPECT_NEAR(out_unit[1].mean().item<float>(), unit[1].mean().item<float>(), 1e-5);
  EXPECT_NEAR(out_unit[1].std().item<float>(), 0.8 * unit[1].std().item<float>(), 1e-5);
  ExpectClose(JitterIntensity(batch, torch::ones({2}), torch::ones({2})), batch);
}

TEST(AugmentationTest, JitterStaysInThePixelRange) {
  const torch::Tensor batch = torch::tensor({-1.0f, 0.9f, 1.0f, 0.0f}).reshape({1, 1, 2, 2});
  const torch::Tensor out = JitterIntensity(batch, torch::tensor({1.5f}), torch::tensor({1.5f}));
  EXPECT_LE(out.max().item<float>(), 1.0f);
  EXPECT_GE(out.min().item<float>(), -1.0f);
}

TEST(AugmentationTest, DrawnParametersStayInTheirRanges) {
  const AugmentationOptions options = Everything();
  at::Generator generator = Seeded(1);
  const int64_t n = 2000, h = 28, w = 28;
  const ExampleGeometry g = DrawGeometry(options, n, h, w, generator);
  const torch::Tensor area = g.scale_x * g.scale_y;
  EXPECT_GE(area.min().item<float>(), 0.8f * std::sqrt(0.75f) - 1e-6);  // when a side is cut
  EXPECT_LE(area.max().item<float>(), 1.0f + 1e-6);
  EXPECT_LE(g.scale_x.max().item<float>(), 1.0f);
  EXPECT_LE(g.scale_y.max().item<float>(), 1.0f);
  const torch::Tensor aspect = g.scale_x / g.scale_y;
  EXPECT_LT(aspect.min().item<float>(), 0.9f);
  EXPECT_GT(aspect.max().item<float>(), 1.1f);
  EXPECT_LE(aspect.max().item<float>(), 4.0f / 3 + 1e-5);
  EXPECT_GE(aspect.min().item<float>(), 3.0f / 4 - 1e-5);
  // Region inside the image, plus the shift.
  EXPECT_TRUE(g.offset_x.abs().le((1 - g.scale_x) * (w / 2.0) + 2 + 1e-5).all().item<bool>());
  EXPECT_TRUE(g.offset_y.abs().le((1 - g.scale_y) * (h / 2.0) + 2 + 1e-5).all().item<bool>());
  EXPECT_LE(g.angle_degrees.abs().max().item<float>(), 10.0f);
  EXPECT_GT(g.angle_degrees.max().item<float>(), 9.0f);
  EXPECT_LT(g.angle_degrees.min().item<float>(), -9.0f);
  const double mirrored = g.mirror.mean().item<float>();
  EXPECT_GT(mirrored, 0.45);
  EXPECT_LT(mirrored, 0.55);

  at::Generator unflipped = Seeded(1);
  AugmentationOptions no_flip = options;
  no_flip.horizontal_flip = false;
  EXPECT_EQ(DrawGeometry(no_flip, n, h, w, unflipped).mirror.sum().item<float>(), 0);
}

TEST(AugmentationTest, SameSeedGivesTheSameBatchAndAnotherSeedAnother) {
  const torch::Tensor batch = Distinct(8, 28, 28);
  auto augmented = [&](uint64_t seed) {
    at::Generator generator = Seeded(seed);
    return Augment(batch, Everything(), generator);
  };
  EXPECT_TRUE(torch::equal(augmented(7), augmented(7)));
  EXPECT_FALSE(torch::equal(augmented(7), augmented(8)));
  EXPECT_FALSE(torch::allclose(augmented(7), batch, 0, 1e-3));
  EXPECT_EQ(augmented(7).sizes(), batch.sizes());
}

TEST(AugmentationTest, CheckNamesTheOptionOutOfRange) {
  EXPECT_TRUE(CheckAugmentationOptions(AugmentationOptions{}).ok());
  EXPECT_TRUE(CheckAugmentationOptions(Everything()).ok());
  AugmentationOptions bad;
  bad.crop_min_scale = 0.01;
  EXPECT_EQ(CheckAugmentationOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("crop_min_scale"));
  bad = AugmentationOptions{};
  bad.max_rotation_degrees = -1;
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("max_rotation_degrees"));
  bad = AugmentationOptions{};
  bad.contrast = 1;
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("contrast"));
  bad = AugmentationOptions{};
  bad.max_shift = -1;
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("max_shift"));
  bad = AugmentationOptions{};
  bad.crop_max_aspect = std::nan("");
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("crop_max_aspect"));
  bad = AugmentationOptions{};
  bad.cutout = 1;
  EXPECT_THAT(CheckAugmentationOptions(bad).message(), HasSubstr("cutout"));
}

// A quarter of the side: each image loses one square of 7 x 7 pixels or
// fewer (cut by the edge) to mid-grey, in a place of its own.
TEST(AugmentationTest, CutOutGreysOneSquareAtMostPerImage) {
  const torch::Tensor batch = torch::full({64, 1, 28, 28}, 0.5f);
  at::Generator generator = Seeded(5);
  const torch::Tensor out = CutOut(batch, 0.25, generator);
  const torch::Tensor erased = out.eq(0);
  EXPECT_TRUE(torch::equal(out.masked_select(erased.logical_not()),
                           batch.masked_select(erased.logical_not())));
  const torch::Tensor per_image = erased.sum({1, 2, 3});
  EXPECT_LE(per_image.max().item<int64_t>(), 49);
  EXPECT_GE(per_image.min().item<int64_t>(), 9);  // a corner keeps a quarter
  // The erased pixels of one image form a rectangle: rows x columns.
  for (int64_t i = 0; i < 8; ++i) {
    const torch::Tensor image = erased[i][0];
    const int64_t rows = image.any(1).sum().item<int64_t>();
    const int64_t columns = image.any(0).sum().item<int64_t>();
    EXPECT_EQ(rows * columns, per_image[i].item<int64_t>()) << i;
  }
  EXPECT_FALSE(torch::equal(erased[0], erased[1]));
}

// Rows from strongly_augmented_from on take the strong options, the others
// the usual ones: with usual augmentation off, those rows are untouched.
TEST(AugmentationTest, StrongAugmentationOnlyFromItsFirstRow) {
  TrainOptions options;
  options.augmentation = AugmentationOptions{};
  options.augmentation.max_shift = 0;
  options.strongly_augmented_from = 10;
  options.strong_augmentation.cutout = 0.5;
  options.strong_augmentation.max_rotation_degrees = 30;
  const torch::Tensor batch = Distinct(6, 16, 16);
  const torch::Tensor rows = torch::tensor({3, 12, 9, 10, 0, 15}, torch::kInt64);
  at::Generator generator = Seeded(1);
  const torch::Tensor out = AugmentRows(batch, rows, options, generator);
  for (int64_t i : {0, 2, 4}) EXPECT_TRUE(torch::equal(out[i], batch[i])) << i;
  for (int64_t i : {1, 3, 5}) EXPECT_FALSE(torch::allclose(out[i], batch[i], 0, 1e-3)) << i;
  // Every row below the first strong one: Augment's usual path.
  const torch::Tensor weak_only = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64);
  EXPECT_TRUE(torch::equal(AugmentRows(batch, weak_only, options, generator), batch));
}

// One optimizer step on parameters of 1 whose gradient is 0: only the
// weight decay moves them.
float AfterOneZeroGradientStep(const std::string& optimizer, double weight_decay) {
  torch::Tensor p = torch::ones({3}).requires_grad_(true);
  TrainOptions options;
  options.optimizer = optimizer;
  options.lr = 0.01;
  options.weight_decay = weight_decay;
  auto step = MakeOptimizer({p}, options);
  p.mutable_grad() = torch::zeros({3});
  step->step();
  EXPECT_TRUE(torch::equal(p, p[0].expand({3})));
  return p[0].item<float>();
}

TEST(OptimizerTest, WeightDecayShrinksParametersByLrTimesDecay) {
  // AdamW: p -= lr * wd * p before the (zero) Adam step; SGD: the gradient
  // becomes wd * p, so p -= lr * wd * p on the first step.
  EXPECT_NEAR(AfterOneZeroGradientStep("adam", 0.1), 0.999f, 1e-7);
  EXPECT_NEAR(AfterOneZeroGradientStep("sgd", 0.1), 0.999f, 1e-7);
  EXPECT_EQ(AfterOneZeroGradientStep("adam", 0), 1.0f);
  EXPECT_EQ(AfterOneZeroGradientStep("sgd", 0), 1.0f);
}

TEST(OptimizerTest, UnknownNameGivesNull) {
  TrainOptions options;
  options.optimizer = "rmsprop";
  torch::Tensor p = torch::ones({1}).requires_grad_(true);
  EXPECT_EQ(MakeOptimizer({p}, options), nullptr);
}

}  // namespace
}  // namespace fedmi::ml
