// Site-level DP at the site: the change a site sends never moves the model by
// more than the clip (checked on hand-made changes with known norms, also
// after rounding to float32), and its noise share has the standard deviation
// asked for. Also the noise source itself.
#include "common/privacy/site_update.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/privacy/gaussian_noise.h"
#include "tests/test_util.h"

namespace fedmi::privacy {
namespace {

using ::testing::HasSubstr;

std::vector<TensorSpec> TwoTensors(int64_t first, int64_t second) {
  return {TensorSpec{"conv.weight", DType::kFloat32, {first}},
          TensorSpec{"fc.bias", DType::kFloat32, {second}}};
}

// Mean and standard deviation of `values`, in double.
std::pair<double, double> MeanAndStddev(const std::vector<double>& values) {
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (values.size() - 1))};
}

TEST(SiteUpdateTest, AChangeBeyondTheClipIsScaledToItKeepingItsDirection) {
  const std::vector<TensorSpec> specs = TwoTensors(2, 1);
  const TensorBundle global = FloatBundle(specs, {1, 2, 3});
  // Change (3, 4, 0): norm 5.
  TensorBundle local = FloatBundle(specs, {4, 6, 3});
  ASSERT_OK_AND_ASSIGN(ClippedSiteUpdate result,
                       ClipSiteUpdate(global, /*clip=*/1, 0, nullptr, &local));
  EXPECT_DOUBLE_EQ(result.norm, 5);
  EXPECT_TRUE(result.clipped);
  EXPECT_LE(result.sent_norm, 1);
  EXPECT_NEAR(result.sent_norm, 1, 1e-6);
  const std::vector<float> sent = FloatsOf(local);
  EXPECT_NEAR(sent[0], 1 + 0.6, 1e-6);
  EXPECT_NEAR(sent[1], 2 + 0.8, 1e-6);
  EXPECT_EQ(sent[2], 3);
  ASSERT_OK_AND_ASSIGN(double norm, UpdateNorm(global, local));
  EXPECT_LE(norm, 1);
}

TEST(SiteUpdateTest, AChangeWithinTheClipIsSentAsItIs) {
  const std::vector<TensorSpec> specs = TwoTensors(2, 1);
  const TensorBundle global = FloatBundle(specs, {1, 2, 3});
  TensorBundle local = FloatBundle(specs, {1.3f, 2.4f, 3});
  const std::vector<char> before = local.body;
  ASSERT_OK_AND_ASSIGN(ClippedSiteUpdate result, ClipSiteUpdate(global, 1, 0, nullptr, &local));
  EXPECT_FALSE(result.clipped);
  EXPECT_NEAR(result.norm, 0.5, 1e-6);
  EXPECT_EQ(local.body, before);
}

// Rounding global + scaled change to float32 can lengthen the change by a
// few ulps, which the site must absorb: the sent change never exceeds the
// clip, with ordinary weights and with weights so large (about 1000, ulp
// 6e-5) that rounding dominates small changes.
TEST(SiteUpdateTest, TheSentChangeStaysWithinTheClipAfterRoundingToFloat32) {
  const std::vector<TensorSpec> specs = TwoTensors(40000, 17);
  for (float magnitude : {1.0f, 1000.0f}) {
    std::vector<float> base(40017), trained(40017);
    for (size_t i = 0; i < base.size(); ++i) {
      base[i] = magnitude * (1.0f + static_cast<float>(i % 97) / 97);
      trained[i] = base[i] + ((i % 3 == 0) ? 0.05f : -0.03f);
    }
    const TensorBundle global = FloatBundle(specs, base);
    for (double clip : {0.01, 0.1, 1.0, 3.0}) {
      SCOPED_TRACE(absl::StrCat("weights near ", magnitude, ", clip ", clip));
      TensorBundle local = FloatBundle(specs, trained);
      ASSERT_OK_AND_ASSIGN(ClippedSiteUpdate result,
                           ClipSiteUpdate(global, clip, 0, nullptr, &local));
      ASSERT_TRUE(result.clipped);
      ASSERT_OK_AND_ASSIGN(double norm, UpdateNorm(global, local));
      EXPECT_LE(norm, clip);
      EXPECT_EQ(norm, result.sent_norm);
      if (magnitude == 1.0f) EXPECT_GT(norm, clip * 0.999) << "scaled, not zeroed";
    }
  }
}

TEST(SiteUpdateTest, TheNoiseShareHasTheStandardDeviationAskedFor) {
  const std::vector<TensorSpec> specs = TwoTensors(150000, 50000);
  const std::vector<float> zeros(200000, 0.0f);
  const TensorBundle global = FloatBundle(specs, zeros);
  TensorBundle local = FloatBundle(specs, zeros);
  std::unique_ptr<NoiseSource> noise = MakeSeededNoiseSource(11);
  ASSERT_OK_AND_ASSIGN(ClippedSiteUpdate result,
                       ClipSiteUpdate(global, 1, /*noise_stddev=*/0.3, noise.get(), &local));
  EXPECT_EQ(result.sent_norm, 0) << "noise comes after the clip";
  const std::vector<float> sent = FloatsOf(local);
  const auto [mean, stddev] = MeanAndStddev(std::vector<double>(sent.begin(), sent.end()));
  EXPECT_NEAR(mean, 0, 0.3 * 0.01);
  EXPECT_NEAR(stddev, 0.3, 0.3 * 0.05);
}

TEST(SiteUpdateTest, RefusesWhatCannotBeClipped) {
  const std::vector<TensorSpec> specs = TwoTensors(2, 1);
  const TensorBundle global = FloatBundle(specs, {1, 2, 3});
  TensorBundle diverged = FloatBundle(specs, {1, NAN, 3});
  EXPECT_THAT(ClipSiteUpdate(global, 1, 0, nullptr, &diverged),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  TensorBundle local = FloatBundle(specs, {1, 2, 3});
  EXPECT_THAT(ClipSiteUpdate(global, 0, 0, nullptr, &local),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clip must be positive")));
  EXPECT_THAT(ClipSiteUpdate(global, 1, 0.5, nullptr, &local),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise source")));
  TensorBundle other = FloatBundle(TwoTensors(1, 2), {1, 2, 3});
  EXPECT_THAT(ClipSiteUpdate(global, 1, 0, nullptr, &other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("conv.weight")));
}

TEST(GaussianNoiseTest, TheSecureSourceIsStandardNormalAndUnrepeatable) {
  std::unique_ptr<NoiseSource> first = MakeSecureNoiseSource();
  std::unique_ptr<NoiseSource> second = MakeSecureNoiseSource();
  std::vector<double> draws(400000);
  double largest = 0;
  int beyond_three = 0;
  for (double& draw : draws) {
    draw = first->Normal();
    largest = std::max(largest, std::abs(draw));
    beyond_three += std::abs(draw) > 3;
  }
  const auto [mean, stddev] = MeanAndStddev(draws);
  EXPECT_NEAR(mean, 0, 0.01);
  EXPECT_NEAR(stddev, 1, 0.01);
  // P(|Z| > 3) = 0.0027: 1080 expected, sd about 33.
  EXPECT_NEAR(beyond_three, 1080, 200);
  EXPECT_LT(largest, 8.6) << "Box-Muller on 53-bit uniforms";
  EXPECT_NE(first->Normal(), second->Normal());
  std::unique_ptr<NoiseSource> a = MakeSeededNoiseSource(5);
  std::unique_ptr<NoiseSource> b = MakeSeededNoiseSource(5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a->Normal(), b->Normal());
}

}  // namespace
}  // namespace fedmi::privacy
