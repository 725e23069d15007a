// Norm-bounded FedAvg on hand-made updates: each change to the global model
// is scaled down to the bound before the example-weighted mean.
#include "coordinator/norm_bounded_aggregator.h"

#include <cmath>
#include <limits>
#include <random>

#include "common/base/status.h"
#include "coordinator/aggregator.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TensorSpec Float32(const std::string& name, std::vector<int64_t> shape) {
  return TensorSpec{name, DType::kFloat32, std::move(shape)};
}

class NormBoundedAggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path())); }

  // Stores `global` as the round's global model and builds a norm_bounded
  // aggregator against it through MakeAggregator.
  void Build(double bound, const std::vector<TensorSpec>& specs, const std::vector<float>& global) {
    AggregatorOptions options;
    options.norm_bound = bound;
    ASSERT_OK_AND_ASSIGN(options.global_model_path,
                         WriteBundleFile(updates_.path(), FloatBundle(specs, global)));
    ASSERT_OK_AND_ASSIGN(aggregator_, MakeAggregator("norm_bounded", options));
  }

  NormBoundedAggregator& norm_bounded() {
    return dynamic_cast<NormBoundedAggregator&>(*aggregator_);
  }

  absl::Status AcceptUpdate(Aggregator& aggregator, const std::string& site, double weight,
                            const std::vector<TensorSpec>& specs,
                            const std::vector<float>& values) {
    ASSIGN_OR_RETURN(std::string path,
                     WriteBundleFile(updates_.path(), FloatBundle(specs, values)));
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> reader, BundleFileReader::Open(path));
    return aggregator.Accept(site, weight, *reader);
  }
  absl::Status AcceptUpdate(const std::string& site, double weight,
                            const std::vector<TensorSpec>& specs,
                            const std::vector<float>& values) {
    return AcceptUpdate(*aggregator_, site, weight, specs, values);
  }

  absl::StatusOr<TensorBundle> FinishAndRead(Aggregator& aggregator) {
    ASSIGN_OR_RETURN(std::string sha, aggregator.Finish(*store_));
    ASSIGN_OR_RETURN(std::string path, store_->PathFor(sha));
    return ReadBundleFile(path);
  }
  absl::StatusOr<TensorBundle> FinishAndRead() { return FinishAndRead(*aggregator_); }

  ScratchDir updates_;
  ScratchDir models_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<ModelStore> store_;
};

TEST_F(NormBoundedAggregatorTest, ALargeChangeIsScaledToTheBoundBeforeTheWeightedMean) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  Build(/*bound=*/2.5, specs, /*global=*/{1, 2});
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  // a: change (3, 4), norm 5: scaled by 2.5 / 5 to (1.5, 2).
  ASSERT_THAT(AcceptUpdate("hospital-a", 1, specs, {4, 6}), IsOk());
  // b: change (0, -1), norm 1: within the bound, as it is.
  ASSERT_THAT(AcceptUpdate("hospital-b", 3, specs, {1, 1}), IsOk());
  EXPECT_EQ(aggregator_->accepted(), 2);
  ASSERT_EQ(norm_bounded().scales().size(), 2u);
  EXPECT_EQ(norm_bounded().scales()[0].site, "hospital-a");
  EXPECT_DOUBLE_EQ(norm_bounded().scales()[0].norm, 5);
  EXPECT_DOUBLE_EQ(norm_bounded().scales()[0].scale, 0.5);
  EXPECT_DOUBLE_EQ(norm_bounded().scales()[1].norm, 1);
  EXPECT_DOUBLE_EQ(norm_bounded().scales()[1].scale, 1);

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  // (1, 2) + (1 * (1.5, 2) + 3 * (0, -1)) / 4 = (1.375, 1.75); FedAvg would
  // give (1 * (4, 6) + 3 * (1, 1)) / 4 = (1.75, 2.25).
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.375f, 1.75f));
}

TEST_F(NormBoundedAggregatorTest, TheNormSpansEveryTensorAndEachSiteHasItsOwnScale) {
  const std::vector<TensorSpec> specs = {Float32("conv.weight", {1}), Float32("fc.bias", {2})};
  Build(/*bound=*/2.5, specs, /*global=*/{1, -1, 2});
  ASSERT_THAT(aggregator_->Begin(3, specs), IsOk());
  // x: change (3, 0, 4) across both tensors, norm 5, scale 0.5: (1.5, 0, 2).
  ASSERT_THAT(AcceptUpdate("x", 2, specs, {4, -1, 6}), IsOk());
  // y: change (0, 0.5, 0), within the bound.
  ASSERT_THAT(AcceptUpdate("y", 1, specs, {1, -0.5f, 2}), IsOk());
  // z: change (-10, 0, 0), norm 10, scale 0.25: (-2.5, 0, 0).
  ASSERT_THAT(AcceptUpdate("z", 1, specs, {-9, -1, 2}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  // global + (2 * (1.5, 0, 2) + (0, 0.5, 0) + (-2.5, 0, 0)) / 4
  //   = (1, -1, 2) + (0.125, 0.125, 1).
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.125f, -0.875f, 3.0f));
}

// With no change beyond the bound (one exactly at it) the round is FedAvg,
// bit for bit: the same model, so the same content address.
TEST_F(NormBoundedAggregatorTest, UpdatesWithinTheBoundGiveFedAvgBitForBit) {
  std::mt19937 random(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const std::vector<TensorSpec> specs = {Float32("a", {13, 3}), Float32("b", {4})};
  std::vector<float> global(43);
  for (float& value : global) value = uniform(random);
  std::vector<std::vector<float>> updates(3, global);
  for (auto& update : updates) {
    for (float& value : update) value += uniform(random) / 8;
  }
  double largest = 0;
  for (const auto& update : updates) {
    double squared = 0;
    for (size_t i = 0; i < global.size(); ++i) {
      const double change = static_cast<double>(update[i]) - global[i];
      squared += change * change;
    }
    largest = std::max(largest, std::sqrt(squared));
  }
  ASSERT_GT(largest, 0.1);
  Build(/*bound=*/largest, specs, global);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> fedavg, MakeAggregator("fedavg"));
  ASSERT_THAT(aggregator_->Begin(2, specs), IsOk());
  ASSERT_THAT(fedavg->Begin(2, specs), IsOk());
  const std::vector<double> weights = {17, 250, 3};
  for (size_t s = 0; s < updates.size(); ++s) {
    const std::string site = "site-" + std::to_string(s);
    ASSERT_THAT(AcceptUpdate(site, weights[s], specs, updates[s]), IsOk());
    ASSERT_THAT(AcceptUpdate(*fedavg, site, weights[s], specs, updates[s]), IsOk());
  }
  for (const auto& scaled : norm_bounded().scales()) EXPECT_EQ(scaled.scale, 1) << scaled.site;
  ASSERT_OK_AND_ASSIGN(std::string bounded_sha, aggregator_->Finish(*store_));
  ASSERT_OK_AND_ASSIGN(std::string fedavg_sha, fedavg->Finish(*store_));
  EXPECT_EQ(bounded_sha, fedavg_sha);
}

// A site that scales its update by a million moves the model by no more than
// the bound times its share of the examples.
TEST_F(NormBoundedAggregatorTest, AScaledUpUpdateMovesTheModelByAtMostItsShareOfTheBound) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  Build(/*bound=*/1, specs, /*global=*/{0.5f, 0.5f});
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("honest-1", 10, specs, {0.5f, 0.5f}), IsOk());
  ASSERT_THAT(AcceptUpdate("honest-2", 20, specs, {0.5f, 0.5f}), IsOk());
  // Change (-3e6, 4e6), norm 5e6: scaled to (-0.6, 0.8).
  ASSERT_THAT(AcceptUpdate("attacker", 10, specs, {-3e6f + 0.5f, 4e6f + 0.5f}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  // (0.5, 0.5) + 10 * (-0.6, 0.8) / 40.
  const std::vector<float> got = FloatsOf(model);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NEAR(got[0], 0.5 - 0.15, 1e-7);
  EXPECT_NEAR(got[1], 0.5 + 0.2, 1e-7);
}

TEST_F(NormBoundedAggregatorTest, ARefusedUpdateLeavesTheAggregateAsItWas) {
  const std::vector<TensorSpec> specs = {Float32("fc.weight", {2})};
  Build(/*bound=*/10, specs, /*global=*/{0, 0});
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("a", 1, specs, {1, 2}), IsOk());
  EXPECT_THAT(
      AcceptUpdate("b", 1, specs, {5, std::nanf("")}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("site 'b'"), HasSubstr("'fc.weight'"), HasSubstr("norm_bounded"))));
  for (double weight : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_THAT(
        AcceptUpdate("c", weight, specs, {1, 1}),
        StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("weight"), HasSubstr("'c'"))))
        << weight;
  }
  EXPECT_THAT(AcceptUpdate("d", 1, {Float32("fc.weight", {3})}, {1, 1, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(aggregator_->accepted(), 1);
  ASSERT_THAT(AcceptUpdate("e", 3, specs, {5, 6}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(4.0f, 5.0f));  // (1 * (1, 2) + 3 * (5, 6)) / 4
}

TEST_F(NormBoundedAggregatorTest, BeginNeedsAGlobalModelWithTheRoundsTensors) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  Build(/*bound=*/1, specs, /*global=*/{0, 0});
  EXPECT_THAT(aggregator_->Begin(1, {Float32("w", {3})}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("global model")));
  EXPECT_THAT(aggregator_->Begin(1, {{"steps", DType::kInt64, {1}}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'steps'"), HasSubstr("float32"))));
  EXPECT_THAT(AcceptUpdate("a", 1, specs, {1, 1}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
  NormBoundedAggregator missing(1, updates_.Join("no-such-model"));
  EXPECT_THAT(missing.Begin(1, specs), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  EXPECT_THAT(aggregator_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no update")));
}

TEST(NormBoundedStrategyTest, TheBoundMustBeFiniteAndPositive) {
  AggregatorOptions options;
  options.global_model_path = "/unused";
  for (double bound : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    options.norm_bound = bound;
    EXPECT_THAT(MakeAggregator("norm_bounded", options),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("norm_bounded: norm_bound must be a finite number > 0")))
        << bound;
  }
  EXPECT_THAT(ValidateAggregatorOptions("fedavg", options), IsOk()) << "fedavg reads no bound";
  EXPECT_THAT(MakeAggregator("norm_bounded"), StatusIs(absl::StatusCode::kInvalidArgument))
      << "there is no default bound";
  options.norm_bound = 1;
  options.global_model_path.clear();
  EXPECT_THAT(MakeAggregator("norm_bounded", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("global model")));
}

TEST(NormBoundedStrategyTest, ItIsKnownNeedsOneUpdateAndRunsUnderSecureAggregation) {
  EXPECT_THAT(CheckStrategyName("norm_bounded"), IsOk());
  EXPECT_THAT(CheckStrategyName("bulyan"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("norm_bounded")));
  AggregatorOptions options;
  options.norm_bound = 1;
  EXPECT_EQ(MinUpdatesFor("norm_bounded", options), 1);
  EXPECT_FALSE(StrategyNeedsIndividualUpdates("norm_bounded"))
      << "its sites clip their own change before masking";
}

}  // namespace
}  // namespace fedmi
