// Simulation-only attacks (`fedmi sim --attack`): the model-poisoning
// tampers on hand-computed bundles, label flipping, and sim's parsing of
// SITE:KIND.
#include "client/sim_attack.h"

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/data/npz.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Two float32 tensors and an int64 one (a BatchNorm step counter), which no
// attack touches.
TensorBundle Bundle(const std::vector<float>& values, int64_t counter) {
  TensorBundle bundle = FloatBundle(
      {{"w", DType::kFloat32, {2}}, {"b", DType::kFloat32, {1}}, {"n", DType::kInt64, {}}}, values);
  bundle.body.resize(bundle.body.size() + sizeof(int64_t));
  std::memcpy(bundle.body.data() + values.size() * sizeof(float), &counter, sizeof(counter));
  return bundle;
}

int64_t CounterOf(const TensorBundle& bundle) {
  int64_t counter;
  std::memcpy(&counter, bundle.body.data() + bundle.OffsetOf(2), sizeof(counter));
  return counter;
}

std::vector<float> FloatsOfFirstThree(const TensorBundle& bundle) {
  std::vector<float> values(3);
  std::memcpy(values.data(), bundle.body.data(), 3 * sizeof(float));
  return values;
}

// Global [1, 2 | -1], trained [1.5, 1 | -1]: the change d is [0.5, -1 | 0].
const TensorBundle kGlobal = Bundle({1, 2, -1}, 10);
const TensorBundle kTrained = Bundle({1.5f, 1, -1}, 12);

absl::StatusOr<TensorBundle> Tampered(AttackKind kind, const TamperContext& context = {}) {
  ASSIGN_OR_RETURN(std::unique_ptr<UpdateTamper> tamper, MakeUpdateTamper(kind, "site-2"));
  TensorBundle weights = kTrained;
  RETURN_IF_ERROR(tamper->Tamper(context, kGlobal, &weights));
  return weights;
}

TEST(SimAttackTest, SignFlipSendsTheChangeReversed) {
  ASSERT_OK_AND_ASSIGN(TensorBundle sent, Tampered(AttackKind::kSignFlip));
  // g - d = [1 - 0.5, 2 + 1 | -1 - 0].
  EXPECT_THAT(FloatsOfFirstThree(sent), ElementsAre(0.5f, 3.0f, -1.0f));
  EXPECT_EQ(CounterOf(sent), 12);
}

TEST(SimAttackTest, ScaledSendsTenTimesTheChange) {
  ASSERT_OK_AND_ASSIGN(TensorBundle sent, Tampered(AttackKind::kScaled));
  // g + 10 d = [1 + 5, 2 - 10 | -1 + 0].
  EXPECT_THAT(FloatsOfFirstThree(sent), ElementsAre(6.0f, -8.0f, -1.0f));
  EXPECT_EQ(CounterOf(sent), 12);
}

TEST(SimAttackTest, GaussianNoiseIsReproducibleAndOfUnitStandardDeviation) {
  const TamperContext context{/*run_id=*/3, /*round=*/2, /*run_seed=*/7};
  ASSERT_OK_AND_ASSIGN(TensorBundle first, Tampered(AttackKind::kGaussian, context));
  ASSERT_OK_AND_ASSIGN(TensorBundle again, Tampered(AttackKind::kGaussian, context));
  EXPECT_EQ(first.body, again.body);
  EXPECT_EQ(CounterOf(first), 12);
  ASSERT_OK_AND_ASSIGN(TensorBundle next_round,
                       Tampered(AttackKind::kGaussian, TamperContext{3, 3, 7}));
  EXPECT_NE(first.body, next_round.body);
  EXPECT_NE(GaussianAttackSeed(7, 2, "site-2"), GaussianAttackSeed(7, 2, "site-3"));
  EXPECT_NE(GaussianAttackSeed(7, 2, "site-2"), GaussianAttackSeed(8, 2, "site-2"));

  // Over many elements the noise w_sent - w has mean ~0 and sd ~1
  // (kGaussianAttackStddev): 100000 draws put the sample mean within
  // 0.02 and the sd within 0.02 of them with overwhelming probability.
  constexpr int kCount = 100000;
  const std::vector<float> base(kCount, 0.25f);
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {kCount}}};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<UpdateTamper> tamper,
                       MakeUpdateTamper(AttackKind::kGaussian, "site-1"));
  TensorBundle weights = FloatBundle(specs, base);
  ASSERT_THAT(tamper->Tamper(context, FloatBundle(specs, std::vector<float>(kCount, 0)), &weights),
              IsOk());
  double sum = 0, sum_squares = 0;
  for (float value : FloatsOf(weights)) {
    const double noise = value - 0.25;
    sum += noise;
    sum_squares += noise * noise;
  }
  const double mean = sum / kCount;
  const double sd = std::sqrt(sum_squares / kCount - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sd, kGaussianAttackStddev, 0.02);
}

TEST(SimAttackTest, TamperRefusesAGlobalOfAnotherShapeAndLabelFlipHasNone) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<UpdateTamper> tamper,
                       MakeUpdateTamper(AttackKind::kSignFlip, "site-1"));
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {3}}}, {1, 2, 3});
  EXPECT_THAT(tamper->Tamper({}, kGlobal, &weights),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tampered update")));
  EXPECT_THAT(MakeUpdateTamper(AttackKind::kLabelFlip, "site-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data")));
}

TEST(SimAttackTest, FlippedLabelIsOneMinusYForTwoClassesAndTheNextClassOtherwise) {
  EXPECT_EQ(FlippedLabel(0, 2).value_or(-1), 1);
  EXPECT_EQ(FlippedLabel(1, 2).value_or(-1), 0);
  EXPECT_EQ(FlippedLabel(0, 4).value_or(-1), 1);
  EXPECT_EQ(FlippedLabel(3, 4).value_or(-1), 0);
  EXPECT_THAT(FlippedLabel(4, 4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FlippedLabel(0, 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SimAttackTest, FlipShardTrainingLabelsFlipsTrainingLabelsOnly) {
  ScratchDir dir;
  const std::string path = dir.Join("site-1.npz");
  auto labels = [](std::vector<char> values) {
    const int64_t rows = static_cast<int64_t>(values.size());
    return NpyArray{"|u1", {rows, 1}, std::move(values)};
  };
  std::map<std::string, NpyArray> shard = {
      {"train_images", NpyArray{"|u1", {4, 1, 1}, {9, 8, 7, 6}}},
      {"train_labels", labels({0, 1, 2, 1})},
      {"val_images", NpyArray{"|u1", {2, 1, 1}, {5, 4}}},
      {"val_labels", labels({0, 2})}};
  ASSERT_THAT(WriteNpz(path, shard), IsOk());
  ASSERT_THAT(FlipShardTrainingLabels(path, 3), IsOk());
  ASSERT_OK_AND_ASSIGN(auto flipped, ReadNpz(path));
  EXPECT_THAT(flipped["train_labels"].data, ElementsAre(1, 2, 0, 2));
  EXPECT_THAT(flipped["val_labels"].data, ElementsAre(0, 2));
  EXPECT_EQ(flipped["train_images"].data, shard["train_images"].data);

  // A label outside the task is an error, and segmentation has no labels.
  EXPECT_THAT(FlipShardTrainingLabels(path, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 2")));
  shard["train_masks"] = NpyArray{"|u1", {4, 1, 1}, {0, 1, 0, 1}};
  ASSERT_THAT(WriteNpz(path, shard), IsOk());
  EXPECT_THAT(FlipShardTrainingLabels(path, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("segmentation")));
}

TEST(SimAttackTest, SiteAttacksNameASiteByNameOrNumberAndAKnownKind) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<SiteAttack> attacks,
      ParseSiteAttacks({"3:gaussian", "site-1:sign-flip", "site-2:label-flip"}, 3));
  ASSERT_EQ(attacks.size(), 3u);
  EXPECT_EQ(attacks[0].site, "site-1");
  EXPECT_EQ(attacks[0].kind, AttackKind::kSignFlip);
  EXPECT_EQ(attacks[1].site, "site-2");
  EXPECT_EQ(attacks[1].kind, AttackKind::kLabelFlip);
  EXPECT_EQ(attacks[2].site, "site-3");
  EXPECT_EQ(attacks[2].kind, AttackKind::kGaussian);
  ASSERT_OK_AND_ASSIGN(std::vector<SiteAttack> none, ParseSiteAttacks({}, 3));
  EXPECT_TRUE(none.empty());

  const std::vector<std::pair<std::string, std::string>> refused = {
      {"site-1", "expected SITE:KIND"},
      {"site-4:scaled", "no site 'site-4'"},
      {"0:scaled", "no site '0'"},
      {"+1:scaled", "no site '+1'"},
      {"hospital:scaled", "no site 'hospital'"},
      {"site-1:flip", "unknown kind 'flip'"},
  };
  for (const auto& [value, message] : refused) {
    EXPECT_THAT(ParseSiteAttacks({value}, 3),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << value;
  }
  EXPECT_THAT(ParseSiteAttacks({"1:scaled", "site-1:gaussian"}, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than one")));
}

TEST(SimAttackTest, KindNamesRoundTrip) {
  EXPECT_THAT(AttackKindNames(), ElementsAre("sign-flip", "scaled", "gaussian", "label-flip"));
  for (const auto& entry : kAttackKindNames) {
    EXPECT_EQ(ParseAttackKind(AttackKindName(entry.value)), entry.value);
    EXPECT_NE(DescribeAttack(entry.value), "unknown");
  }
  EXPECT_FALSE(PoisonsModel(AttackKind::kLabelFlip));
  EXPECT_TRUE(PoisonsModel(AttackKind::kScaled));
}

}  // namespace
}  // namespace fedmi
