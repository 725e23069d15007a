#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "common/crypto/sha256.h"
#include "coordinator/aggregator.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

TensorSpec Float32(const std::string& name, std::vector<int64_t> shape) {
  return TensorSpec{name, DType::kFloat32, std::move(shape)};
}

class FedAvgAggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(aggregator_, MakeAggregator("fedavg"));
    ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path()));
  }

  // Writes one site's update as a bundle file and feeds it to the aggregator.
  absl::Status AcceptUpdate(const std::string& site, double weight,
                            const std::vector<TensorSpec>& specs,
                            const std::vector<float>& values) {
    absl::StatusOr<std::string> path = WriteBundleFile(updates_.path(), FloatBundle(specs, values));
    if (!path.ok()) return path.status();
    absl::StatusOr<std::unique_ptr<BundleFileReader>> reader = BundleFileReader::Open(*path);
    if (!reader.ok()) return reader.status();
    return aggregator_->Accept(site, weight, **reader);
  }

  // Finishes the round and reads the new global model back from the store.
  absl::StatusOr<TensorBundle> FinishAndRead() {
    absl::StatusOr<std::string> sha = aggregator_->Finish(*store_);
    if (!sha.ok()) return sha.status();
    absl::StatusOr<std::string> path = store_->PathFor(*sha);
    if (!path.ok()) return path.status();
    return ReadBundleFile(*path);
  }

  ScratchDir updates_;
  ScratchDir models_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<ModelStore> store_;
};

TEST(MakeAggregatorTest, UnknownStrategyListsTheKnownOnes) {
  EXPECT_THAT(MakeAggregator("bulyan"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'bulyan'"), HasSubstr("known strategies: fedavg"))));
}

TEST_F(FedAvgAggregatorTest, WeightedMeanOfTwoSites) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("hospital-a", 1, specs, {1, 2}), IsOk());
  ASSERT_THAT(AcceptUpdate("hospital-b", 3, specs, {5, 6}), IsOk());
  EXPECT_EQ(aggregator_->accepted(), 2);

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  // (1*1 + 3*5) / 4 = 4, (1*2 + 3*6) / 4 = 5.
  EXPECT_THAT(FloatsOf(model), ElementsAre(4.0f, 5.0f));
}

TEST_F(FedAvgAggregatorTest, FinishReturnsTheContentAddressOfTheModel) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("hospital-a", 2, specs, {1, 2}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator_->Finish(*store_));
  const std::vector<float> expected = {1, 2};
  EXPECT_EQ(sha, HexEncode(Sha256::Digest(
                     absl::string_view(reinterpret_cast<const char*>(expected.data()), 8))));
}

TEST_F(FedAvgAggregatorTest, MultipleTensorsThreeSites) {
  const std::vector<TensorSpec> specs = {Float32("conv.weight", {2, 2}), Float32("fc.bias", {3})};
  ASSERT_THAT(aggregator_->Begin(4, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("a", 2, specs, {1, 2, 3, 4, 0, 0, 0}), IsOk());
  ASSERT_THAT(AcceptUpdate("b", 2, specs, {3, 4, 5, 6, 1, 2, 3}), IsOk());
  ASSERT_THAT(AcceptUpdate("c", 4, specs, {0, 0, 0, 0, -1, -1, -1}), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  // conv: (2*[1,2,3,4] + 2*[3,4,5,6]) / 8; bias: (2*[1,2,3] - 4*[1,1,1]) / 8.
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, 1.5f, 2.0f, 2.5f, -0.25f, 0.0f, 0.25f));
}

TEST_F(FedAvgAggregatorTest, IdenticalUpdatesAverageToThemselvesExactly) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const std::vector<TensorSpec> specs = {Float32("w", {1000})};
  std::vector<float> values(1000);
  for (float& value : values) value = normal(random);

  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  for (double weight : {1.0, 7.0, 1234.0, 3.0}) {
    ASSERT_THAT(AcceptUpdate("site", weight, specs, values), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAreArray(values));  // bit-exact
}

TEST_F(FedAvgAggregatorTest, MatchesADoublePrecisionReference) {
  std::mt19937 random(11);
  std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
  const std::vector<TensorSpec> specs = {Float32("a", {17, 3}), Float32("b", {5})};
  const std::vector<double> weights = {13, 250, 1, 77};
  std::vector<double> sum(56, 0.0);
  ASSERT_THAT(aggregator_->Begin(2, specs), IsOk());
  for (double weight : weights) {
    std::vector<float> values(56);
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = uniform(random);
      sum[i] += weight * values[i];
    }
    ASSERT_THAT(AcceptUpdate("site", weight, specs, values), IsOk());
  }
  std::vector<float> expected(56);
  for (size_t i = 0; i < expected.size(); ++i) {
    expected[i] = static_cast<float>(sum[i] / (13 + 250 + 1 + 77));
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAreArray(expected));
}

TEST_F(FedAvgAggregatorTest, BundleLargerThanOneChunk) {
  // 700,003 floats (about 2.7 MiB) in two tensors, so updates arrive in three
  // chunks, the output is written in three, and a tensor straddles a chunk
  // boundary.
  const std::vector<TensorSpec> specs = {Float32("big", {500, 1000}), Float32("tail", {200003})};
  const size_t n = 700003;
  ASSERT_GT(n * sizeof(float), 2 * kMaxChunkBytes);
  std::vector<float> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i % 97);
    b[i] = 4.0f * static_cast<float>(i % 97);
  }
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("a", 3, specs, a), IsOk());
  ASSERT_THAT(AcceptUpdate("b", 1, specs, b), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  std::vector<float> got = FloatsOf(model);
  ASSERT_EQ(got.size(), n);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    // (3*x + 1*4x) / 4 = 1.75x
    if (got[i] != 1.75f * static_cast<float>(i % 97)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(FedAvgAggregatorTest, BeginRefusesNonFloat32TensorsByName) {
  const std::vector<TensorSpec> specs = {Float32("fc.weight", {2}),
                                         {"bn.num_batches_tracked", DType::kInt64, {}}};
  EXPECT_THAT(aggregator_->Begin(1, specs),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'bn.num_batches_tracked'"), HasSubstr("int64"),
                             HasSubstr("float32"))));
}

TEST_F(FedAvgAggregatorTest, RefusesNonPositiveOrNonFiniteWeights) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  for (double weight : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity(),
                        -std::numeric_limits<double>::infinity()}) {
    EXPECT_THAT(AcceptUpdate("hospital-a", weight, specs, {1, 2}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("weight"), HasSubstr("'hospital-a'"))))
        << weight;
  }
  // A refused weight leaves the aggregate usable.
  EXPECT_EQ(aggregator_->accepted(), 0);
  ASSERT_THAT(AcceptUpdate("hospital-b", 2, specs, {3, 4}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(3.0f, 4.0f));
}

TEST_F(FedAvgAggregatorTest, FinishWithoutUpdatesIsFailedPrecondition) {
  ASSERT_THAT(aggregator_->Begin(3, {Float32("w", {2})}), IsOk());
  EXPECT_THAT(aggregator_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no update")));
}

TEST_F(FedAvgAggregatorTest, AcceptOrFinishBeforeBeginIsFailedPrecondition) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  EXPECT_THAT(AcceptUpdate("a", 1, specs, {1, 2}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
  EXPECT_THAT(aggregator_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
}

TEST_F(FedAvgAggregatorTest, RefusesAnUpdateOfAnotherShape) {
  ASSERT_THAT(aggregator_->Begin(1, {Float32("fc.weight", {2, 64})}), IsOk());
  EXPECT_THAT(
      AcceptUpdate("hospital-a", 1, {Float32("fc.weight", {2, 128})}, std::vector<float>(256)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'fc.weight'"), HasSubstr("[2,64]"))));
  EXPECT_EQ(aggregator_->accepted(), 0);
}

TEST_F(FedAvgAggregatorTest, NonFiniteValueIsNamedAndSpoilsTheRound) {
  const std::vector<TensorSpec> specs = {Float32("a", {2}), Float32("b", {3})};
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("good", 1, specs, {1, 2, 3, 4, 5}), IsOk());
  EXPECT_THAT(
      AcceptUpdate("diverged", 1, specs, {1, 2, 3, std::nanf(""), 5}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'diverged'"), HasSubstr("tensor 'b'"), HasSubstr("element 1"))));
  EXPECT_THAT(aggregator_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("unusable")));

  // Beginning the round again starts from a clean sum.
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("good", 1, specs, {1, 2, 3, 4, 5}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, 2.0f, 3.0f, 4.0f, 5.0f));
}

TEST_F(FedAvgAggregatorTest, BeginStartsAFreshRound) {
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(aggregator_->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptUpdate("a", 1, specs, {10}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle first, FinishAndRead());
  EXPECT_THAT(FloatsOf(first), ElementsAre(10.0f));

  ASSERT_THAT(aggregator_->Begin(2, specs), IsOk());
  EXPECT_EQ(aggregator_->accepted(), 0);
  ASSERT_THAT(AcceptUpdate("a", 1, specs, {2}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle second, FinishAndRead());
  EXPECT_THAT(FloatsOf(second), ElementsAre(2.0f));
}

}  // namespace
}  // namespace fedmi
