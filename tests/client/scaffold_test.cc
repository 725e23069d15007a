// SCAFFOLD's site-side arithmetic and control-variate store
// (client/scaffold.h), on hand-made bundles.
#include "client/scaffold.h"

#include <fstream>

#include "common/runspec/strategy_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

const std::vector<TensorSpec>& Weights() {
  static const std::vector<TensorSpec>* specs = new std::vector<TensorSpec>{
      {"fc.weight", DType::kFloat32, {2}}, {"fc.bias", DType::kFloat32, {1}}};
  return *specs;
}
const std::vector<TensorSpec>& Controls() {
  static const std::vector<TensorSpec>* specs =
      new std::vector<TensorSpec>{{"fc.weight", DType::kFloat32, {2}}};
  return *specs;
}

TEST(ScaffoldTest, TheNextClientControlFollowsOptionTwoOfTheAlgorithm) {
  // c_i+ = c_i - c + (x - y) / (K lr), with K = 4 steps at lr 0.5:
  // (x - y) / 2.
  const TensorBundle client = FloatBundle(Controls(), {0.5f, -1.0f});
  const TensorBundle server = FloatBundle(Controls(), {0.25f, 0.25f});
  const TensorBundle x = FloatBundle(Weights(), {1.0f, 2.0f, 3.0f});
  const TensorBundle y = FloatBundle(Weights(), {0.0f, 3.0f, 9.0f});
  ASSERT_OK_AND_ASSIGN(TensorBundle next, NextClientControl(client, server, x, y, 4, 0.5));
  // 0.5 - 0.25 + 1 / 2 and -1 - 0.25 - 1 / 2; the bias has no control.
  EXPECT_EQ(FloatsOf(next), (std::vector<float>{0.75f, -1.75f}));
  EXPECT_EQ(next.specs[0].name, "fc.weight");

  ASSERT_OK_AND_ASSIGN(TensorBundle offset, ControlOffset(server, client));
  EXPECT_EQ(FloatsOf(offset), (std::vector<float>{-0.25f, 1.25f}));

  EXPECT_THAT(NextClientControl(client, server, x, y, 0, 0.5).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one step")));
  const TensorBundle other = FloatBundle({{"conv.weight", DType::kFloat32, {2}}}, {0, 0});
  EXPECT_THAT(NextClientControl(other, other, x, y, 4, 0.5).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'conv.weight'")));
}

TEST(ScaffoldTest, ControlsRideAfterTheWeightsAndSplitOffAgain) {
  const TensorBundle weights = FloatBundle(Weights(), {1, 2, 3});
  ASSERT_OK_AND_ASSIGN(TensorBundle zeros, ZeroControls(weights, {"fc.weight"}));
  EXPECT_EQ(FloatsOf(zeros), (std::vector<float>{0, 0}));
  const TensorBundle global = WithScaffoldControls(weights, FloatBundle(Controls(), {0.5f, 0.75f}));
  ASSERT_EQ(global.specs.size(), 3u);
  EXPECT_EQ(global.specs[2].name, std::string(kScaffoldControlPrefix) + "fc.weight");
  ASSERT_OK_AND_ASSIGN(ScaffoldGlobal split, SplitScaffoldGlobal(global));
  EXPECT_EQ(FloatsOf(split.weights), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(FloatsOf(split.server_control), (std::vector<float>{0.5f, 0.75f}));
  EXPECT_EQ(split.server_control.specs[0].name, "fc.weight");

  EXPECT_THAT(SplitScaffoldGlobal(weights).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no control variate")));
  EXPECT_THAT(ZeroControls(weights, {"fc.missing"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'fc.missing'")));
}

const std::string kSpec(64, 'a');
const std::string kOtherSpec(64, 'b');

TEST(ScaffoldTest, TheStoreGivesEachRoundTheVariateOfTheRoundBefore) {
  ScratchDir dir;
  ScaffoldControlStore store(dir.Join("scaffold"), *Env::Default());
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> none, store.Before(7, kSpec, 1));
  EXPECT_FALSE(none.has_value()) << "a site's first round starts from zero";
  ASSERT_THAT(store.Save(7, kSpec, 1, FloatBundle(Controls(), {1, 1})), IsOk());
  ASSERT_THAT(store.Save(7, kSpec, 3, FloatBundle(Controls(), {3, 3})), IsOk());
  // Round 3 repeated (a coordinator crash) reads round 1's again.
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> before_three, store.Before(7, kSpec, 3));
  ASSERT_TRUE(before_three.has_value());
  EXPECT_EQ(FloatsOf(*before_three), (std::vector<float>{1, 1}));
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> before_four, store.Before(7, kSpec, 4));
  EXPECT_EQ(FloatsOf(*before_four), (std::vector<float>{3, 3}));
  // A new store over the same directory (a restarted daemon) reads the same.
  ScaffoldControlStore restarted(dir.Join("scaffold"), *Env::Default());
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> after_restart, restarted.Before(7, kSpec, 4));
  EXPECT_EQ(FloatsOf(*after_restart), (std::vector<float>{3, 3}));
  // Saving round 4 drops round 1's, which no later round reads.
  ASSERT_THAT(restarted.Save(7, kSpec, 4, FloatBundle(Controls(), {4, 4})), IsOk());
  const std::string run_dir = dir.Join("scaffold/run-7-aaaaaaaaaaaaaaaa");
  EXPECT_FALSE(Env::Default()->FileExists(run_dir + "/round-1.bundle"));
  EXPECT_TRUE(Env::Default()->FileExists(run_dir + "/round-3.bundle"));
  // Runs are kept apart, also two runs of one id from different coordinators.
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> other_run, restarted.Before(8, kSpec, 5));
  EXPECT_FALSE(other_run.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<TensorBundle> other_spec, restarted.Before(7, kOtherSpec, 5));
  EXPECT_FALSE(other_spec.has_value());
  // The run's last round trained: its variates go.
  ASSERT_THAT(restarted.Save(8, kSpec, 1, FloatBundle(Controls(), {8, 8})), IsOk());
  ASSERT_THAT(restarted.Forget(7), IsOk());
  EXPECT_FALSE(Env::Default()->FileExists(run_dir));
  EXPECT_TRUE(Env::Default()->FileExists(dir.Join("scaffold/run-8-aaaaaaaaaaaaaaaa")));
}

TEST(ScaffoldTest, AVariateOfALaterRoundMeansAnotherRunUsedTheFolder) {
  ScratchDir dir;
  ScaffoldControlStore store(dir.Join("scaffold"), *Env::Default());
  ASSERT_THAT(store.Save(1, kSpec, 5, FloatBundle(Controls(), {1, 1})), IsOk());
  EXPECT_THAT(store.Before(1, kSpec, 2).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("holds the control variate of round 5")));
  // Round 5 repeated is no such case.
  EXPECT_THAT(store.Before(1, kSpec, 5).status(), IsOk());
}

TEST(ScaffoldTest, ADamagedVariateIsDataLoss) {
  ScratchDir dir;
  ScaffoldControlStore store(dir.Join("scaffold"), *Env::Default());
  ASSERT_THAT(store.Save(1, kSpec, 1, FloatBundle(Controls(), {1, 1})), IsOk());
  std::ofstream(dir.Join("scaffold/run-1-aaaaaaaaaaaaaaaa/round-1.bundle"), std::ios::trunc)
      << "garbage";
  EXPECT_THAT(store.Before(1, kSpec, 2).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("round-1.bundle")));
}

TEST(ScaffoldTest, ControlsAreScaledIntoWeightUnitsAndBack) {
  const TensorBundle controls = FloatBundle(Controls(), {2.0f, -8.0f});
  EXPECT_EQ(FloatsOf(ScaledControls(controls, 0.25)), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_EQ(FloatsOf(ScaledControls(ScaledControls(controls, 0.25), 4)), FloatsOf(controls));
}

}  // namespace
}  // namespace fedmi
