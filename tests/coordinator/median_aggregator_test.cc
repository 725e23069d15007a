#include "coordinator/median_aggregator.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "coordinator/aggregator.h"
#include "tests/coordinator/spooled_aggregator_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The values of site `site` (of 3) whose coordinate-wise median is `base`:
// each coordinate gets offsets {-1, 0, +5} in an order that rotates with the
// coordinate, so no site holds the median everywhere.
std::vector<float> RotatedAround(const std::vector<float>& base, int site) {
  constexpr float kOffsets[] = {-1.0f, 0.0f, 5.0f};
  std::vector<float> values(base.size());
  for (size_t i = 0; i < base.size(); ++i) values[i] = base[i] + kOffsets[(i + site) % 3];
  return values;
}

class MedianAggregatorTest : public SpoolingTest {
 protected:
  void SetUp() override {
    SpoolingTest::SetUp();
    UseChunk(size_t{64} * 1024);
  }

  void UseChunk(size_t parameters_per_chunk) {
    median_ = std::make_unique<MedianAggregator>(Spool(parameters_per_chunk));
  }

  absl::Status Accept(const std::string& site, double weight, const std::vector<TensorSpec>& specs,
                      const std::vector<float>& values) {
    return AcceptInto(*median_, site, weight, specs, values);
  }

  using SpoolingTest::FinishAndRead;
  absl::StatusOr<TensorBundle> FinishAndRead() { return FinishAndRead(*median_); }

  std::unique_ptr<MedianAggregator> median_;
};

TEST_F(MedianAggregatorTest, MedianOfThreeSitesIgnoresWeights) {
  const std::vector<TensorSpec> specs = {Float32("w", {4})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  // The heavy site would dominate an example-weighted mean.
  ASSERT_THAT(Accept("a", 1, specs, {1, 5, -2, 0}), IsOk());
  ASSERT_THAT(Accept("b", 1000, specs, {3, 4, -1, 7}), IsOk());
  ASSERT_THAT(Accept("c", 1, specs, {2, 9, -3, 7}), IsOk());
  EXPECT_EQ(median_->accepted(), 3);

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.0f, 5.0f, -2.0f, 7.0f));
}

TEST_F(MedianAggregatorTest, EvenCountTakesTheMeanOfTheMiddleTwoInDouble) {
  const std::vector<TensorSpec> specs = {Float32("w", {4})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {1, 0, 1, 3e38f}), IsOk());
  ASSERT_THAT(Accept("b", 1, specs, {2, 10, 1, 3e38f}), IsOk());
  ASSERT_THAT(Accept("c", 1, specs, {4, -10, 1, 1}), IsOk());
  ASSERT_THAT(Accept("d", 1, specs, {8, 3, 2, 3.2e38f}), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  // Sorted columns: {1,2,4,8} -> 3; {-10,0,3,10} -> 1.5; {1,1,1,2} -> 1;
  // {1,3e38,3e38,3.2e38} -> 3e38, where a float sum of the middle two would
  // overflow to infinity.
  EXPECT_THAT(FloatsOf(model), ElementsAre(3.0f, 1.5f, 1.0f, 3e38f));
}

TEST_F(MedianAggregatorTest, TiedValuesGiveTheSameMedianInAnyArrivalOrder) {
  const std::vector<TensorSpec> specs = {Float32("w", {3})};
  // Sorted columns: {2,2,2,9} -> 2; {0,5,5,5} -> 5; {1,3,3,7} -> (3 + 3) / 2.
  const std::vector<std::vector<float>> updates = {{2, 0, 1}, {2, 5, 3}, {9, 5, 3}, {2, 5, 7}};
  for (const std::vector<int>& order :
       {std::vector<int>{0, 1, 2, 3}, std::vector<int>{3, 2, 1, 0}, std::vector<int>{2, 0, 3, 1}}) {
    ASSERT_THAT(median_->Begin(1, specs), IsOk());
    for (int i : order) {
      ASSERT_THAT(Accept(absl::StrCat("site-", i), 1, specs, updates[i]), IsOk());
    }
    ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
    EXPECT_THAT(FloatsOf(model), ElementsAre(2.0f, 5.0f, 3.0f));
  }
}

TEST_F(MedianAggregatorTest, IgnoresAnOutlierSiteThatDragsFedAvgAway) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const std::vector<std::vector<float>> updates = {
      {1.0f, 2.0f}, {1.5f, 2.5f}, {2.0f, 3.0f}, {1e6f, -1e6f}};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> fedavg, MakeAggregator("fedavg"));
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(fedavg->Begin(1, specs), IsOk());
  for (size_t i = 0; i < updates.size(); ++i) {
    const std::string site = absl::StrCat("site-", i);
    ASSERT_THAT(Accept(site, 1, specs, updates[i]), IsOk());
    ASSERT_THAT(AcceptUpdate(*fedavg, updates_.path(), site, 1, specs, updates[i]), IsOk());
  }

  ASSERT_OK_AND_ASSIGN(TensorBundle median, FinishAndRead());
  // {1,1.5,2,1e6} -> 1.75; {-1e6,2,2.5,3} -> 2.25.
  EXPECT_THAT(FloatsOf(median), ElementsAre(1.75f, 2.25f));
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, FinishAndRead(*fedavg));
  const std::vector<float> mean_values = FloatsOf(mean);
  ASSERT_THAT(mean_values, SizeIs(2));
  EXPECT_GT(std::abs(mean_values[0] - 1.75f), 1e5f);
  EXPECT_GT(std::abs(mean_values[1] - 2.25f), 1e5f);
}

TEST_F(MedianAggregatorTest, MultipleTensorsAcrossSeveralChunks) {
  // 11 parameters in chunks of 4: chunks end inside both tensors.
  UseChunk(4);
  const std::vector<TensorSpec> specs = {Float32("conv.weight", {3, 2}), Float32("fc.bias", {5})};
  const std::vector<float> base = {0.5f, -1, 2, 3, 100, -7, 0, 1e-3f, 42, 9, -0.25f};
  ASSERT_THAT(median_->Begin(2, specs), IsOk());
  for (int site = 0; site < 3; ++site) {
    ASSERT_THAT(Accept(absl::StrCat("site-", site), 1, specs, RotatedAround(base, site)), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  EXPECT_THAT(FloatsOf(model), ElementsAreArray(base));
}

TEST_F(MedianAggregatorTest, ModelLargerThanTheDefaultChunkThroughMakeAggregator) {
  // 150,001 parameters: three default chunks of 65,536, the last one partial.
  const std::vector<TensorSpec> specs = {Float32("big", {300, 400}), Float32("tail", {30001})};
  const size_t n = 150001;
  std::vector<float> base(n);
  for (size_t i = 0; i < n; ++i) base[i] = static_cast<float>(i % 101) - 50.0f;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> aggregator, MakeAggregator("median"));
  ASSERT_THAT(aggregator->Begin(1, specs), IsOk());
  for (int site = 0; site < 3; ++site) {
    ASSERT_THAT(AcceptUpdate(*aggregator, updates_.path(), absl::StrCat("site-", site), 1, specs,
                             RotatedAround(base, site)),
                IsOk());
  }
  const std::string spool_dir =
      dynamic_cast<MedianAggregator&>(*aggregator).spool_dir_for_testing();
  ASSERT_FALSE(spool_dir.empty());
  EXPECT_THAT(Entries(spool_dir), SizeIs(3));

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*aggregator));
  EXPECT_EQ(model.specs, specs);
  const std::vector<float> got = FloatsOf(model);
  ASSERT_EQ(got.size(), n);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    if (got[i] != base[i]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_FALSE(fs::exists(spool_dir));
}

TEST_F(MedianAggregatorTest, FinishReturnsTheContentAddressOfTheModel) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {1, 2}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string sha, median_->Finish(*store_));
  const std::vector<float> expected = {1, 2};
  EXPECT_EQ(sha, HexEncode(Sha256::Digest(
                     absl::string_view(reinterpret_cast<const char*>(expected.data()), 8))));
}

TEST_F(MedianAggregatorTest, SpoolIsRemovedByFinishBeginAndTheDestructor) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {1, 2}), IsOk());
  ASSERT_THAT(Accept("b", 1, specs, {3, 4}), IsOk());
  EXPECT_THAT(Entries(spool_.path()), SizeIs(1));  // the round's directory
  EXPECT_THAT(Entries(median_->spool_dir_for_testing()), SizeIs(2));
  ASSERT_THAT(median_->Finish(*store_), IsOk());
  EXPECT_THAT(Entries(spool_.path()), IsEmpty());
  EXPECT_THAT(median_->spool_dir_for_testing(), IsEmpty());

  ASSERT_THAT(median_->Begin(2, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {1, 2}), IsOk());
  const std::string round2 = median_->spool_dir_for_testing();
  ASSERT_THAT(median_->Begin(3, specs), IsOk());  // abandons round 2
  EXPECT_FALSE(fs::exists(round2));
  EXPECT_EQ(median_->accepted(), 0);
  ASSERT_THAT(Accept("a", 1, specs, {1, 2}), IsOk());
  median_.reset();
  EXPECT_THAT(Entries(spool_.path()), IsEmpty());
}

TEST_F(MedianAggregatorTest, BeginStartsAFreshRound) {
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {10}), IsOk());
  ASSERT_THAT(Accept("b", 1, specs, {20}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle first, FinishAndRead());
  EXPECT_THAT(FloatsOf(first), ElementsAre(15.0f));

  ASSERT_THAT(median_->Begin(2, specs), IsOk());
  EXPECT_EQ(median_->accepted(), 0);
  ASSERT_THAT(Accept("a", 1, specs, {2}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle second, FinishAndRead());
  EXPECT_THAT(FloatsOf(second), ElementsAre(2.0f));
}

TEST_F(MedianAggregatorTest, BeginRefusesNonFloat32TensorsByName) {
  const std::vector<TensorSpec> specs = {Float32("fc.weight", {2}),
                                         {"bn.num_batches_tracked", DType::kInt64, {}}};
  EXPECT_THAT(median_->Begin(1, specs),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("median"), HasSubstr("'bn.num_batches_tracked'"),
                             HasSubstr("int64"), HasSubstr("float32"))));
  EXPECT_THAT(Entries(spool_.path()), IsEmpty());
}

TEST_F(MedianAggregatorTest, BeginRefusesAZeroChunk) {
  UseChunk(0);
  EXPECT_THAT(median_->Begin(1, {Float32("w", {2})}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parameters_per_chunk")));
}

TEST_F(MedianAggregatorTest, BeginFailsWhenTheSpoolCannotBeCreated) {
  MedianAggregatorOptions options;
  options.spool_parent = spool_.Join("missing");
  median_ = std::make_unique<MedianAggregator>(options);
  EXPECT_THAT(median_->Begin(1, {Float32("w", {2})}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("spool"), HasSubstr(spool_.Join("missing")))));
  EXPECT_THAT(Accept("a", 1, {Float32("w", {2})}, {1, 2}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
}

TEST_F(MedianAggregatorTest, FinishWithoutUpdatesIsFailedPrecondition) {
  ASSERT_THAT(median_->Begin(3, {Float32("w", {2})}), IsOk());
  EXPECT_THAT(median_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("round 3"), HasSubstr("no update"))));
}

TEST_F(MedianAggregatorTest, AcceptOrFinishBeforeBeginIsFailedPrecondition) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  EXPECT_THAT(Accept("a", 1, specs, {1, 2}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
  EXPECT_THAT(median_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
}

TEST_F(MedianAggregatorTest, RefusesAnUpdateOfAnotherShapeAndStaysUsable) {
  const std::vector<TensorSpec> specs = {Float32("fc.weight", {2, 2})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  EXPECT_THAT(
      Accept("hospital-a", 1, {Float32("fc.weight", {2, 3})}, std::vector<float>(6)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'hospital-a'"), HasSubstr("'fc.weight'"), HasSubstr("[2,2]"))));
  EXPECT_EQ(median_->accepted(), 0);
  EXPECT_THAT(Entries(median_->spool_dir_for_testing()), IsEmpty());

  ASSERT_THAT(Accept("hospital-b", 1, specs, {1, 2, 3, 4}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, 2.0f, 3.0f, 4.0f));
}

TEST_F(MedianAggregatorTest, RefusesNonFiniteValuesByNameAndStaysUsable) {
  const std::vector<TensorSpec> specs = {Float32("a", {2}), Float32("b", {3})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("good-1", 1, specs, {1, 2, 3, 4, 5}), IsOk());
  EXPECT_THAT(Accept("diverged", 1, specs, {1, 2, 3, std::nanf(""), 5}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'diverged'"), HasSubstr("tensor 'b'"),
                             HasSubstr("element 1"), HasSubstr("median"))));
  EXPECT_THAT(
      Accept("exploded", 1, specs, {-std::numeric_limits<float>::infinity(), 0, 0, 0, 0}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'exploded'"), HasSubstr("tensor 'a'"), HasSubstr("element 0"))));
  EXPECT_EQ(median_->accepted(), 1);
  EXPECT_THAT(Entries(median_->spool_dir_for_testing()), SizeIs(1));

  ASSERT_THAT(Accept("good-2", 1, specs, {3, 4, 5, 6, 7}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.0f, 3.0f, 4.0f, 5.0f, 6.0f));
}

TEST_F(MedianAggregatorTest, LostSpoolFileIsDataLossAndFinishCanBeRetried) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(median_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("a", 1, specs, {1, 2}), IsOk());
  ASSERT_THAT(Accept("b", 1, specs, {3, 4}), IsOk());
  const std::string dir = median_->spool_dir_for_testing();
  const std::string victim = absl::StrCat(dir, "/", Entries(dir).front());
  ASSERT_TRUE(fs::copy_file(victim, victim + ".bak"));
  ASSERT_TRUE(fs::remove(victim));  // e.g. a temp-dir cleaner
  EXPECT_THAT(median_->Finish(*store_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("spool file")));

  fs::rename(victim + ".bak", victim);
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.0f, 3.0f));
}

TEST(MedianStrategyTest, MakeAggregatorBuildsAWorkingMedian) {
  ScratchDir updates, models;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> store, ModelStore::Open(models.path()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> aggregator, MakeAggregator("median"));
  ASSERT_NE(dynamic_cast<MedianAggregator*>(aggregator.get()), nullptr);
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(aggregator->Begin(1, specs), IsOk());
  for (float value : {7.0f, -3.0f, 100.0f}) {
    ASSERT_THAT(AcceptUpdate(*aggregator, updates.path(), "site", 1, specs, {value}), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store));
  ASSERT_OK_AND_ASSIGN(std::string path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(7.0f));
}

TEST(MedianStrategyTest, UnknownStrategyListsTheKnownOnes) {
  EXPECT_THAT(MakeAggregator("bulyan"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'bulyan'"),
                             HasSubstr("known strategies: fedavg, median, trimmed_mean, krum, "
                                       "multikrum"))));
}

TEST(MedianStrategyTest, EveryStrategyButFedAvgNeedsIndividualUpdates) {
  for (const char* strategy : {"median", "trimmed_mean", "krum", "multikrum"}) {
    EXPECT_TRUE(StrategyNeedsIndividualUpdates(strategy)) << strategy;
  }
  EXPECT_FALSE(StrategyNeedsIndividualUpdates("fedavg"));
  EXPECT_FALSE(StrategyNeedsIndividualUpdates("bulyan"));
  EXPECT_FALSE(StrategyNeedsIndividualUpdates(""));
}

}  // namespace
}  // namespace fedmi
