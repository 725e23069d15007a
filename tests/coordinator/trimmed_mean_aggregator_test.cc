#include "coordinator/trimmed_mean_aggregator.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/aggregator.h"
#include "tests/coordinator/spooled_aggregator_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Four honest sites that roughly agree, for the outlier tests.
const std::vector<std::vector<float>> kHonest = {
    {1.0f, -2.0f, 0.5f}, {1.5f, -1.5f, 0.25f}, {0.5f, -2.5f, 0.75f}, {1.25f, -2.25f, 0.5f}};

class TrimmedMeanAggregatorTest : public SpoolingTest {
 protected:
  void SetUp() override {
    SpoolingTest::SetUp();
    UseTrim(0.2);
  }

  void UseTrim(double trim_fraction, size_t parameters_per_chunk = size_t{64} * 1024) {
    trimmed_ = std::make_unique<TrimmedMeanAggregator>(trim_fraction, Spool(parameters_per_chunk));
  }

  absl::Status Accept(const std::string& site, double weight, const std::vector<TensorSpec>& specs,
                      const std::vector<float>& values) {
    return AcceptInto(*trimmed_, site, weight, specs, values);
  }

  using SpoolingTest::FinishAndRead;
  absl::StatusOr<TensorBundle> FinishAndRead() { return FinishAndRead(*trimmed_); }

  std::unique_ptr<TrimmedMeanAggregator> trimmed_;
};

TEST(TrimmedMeanOfTest, DropsTheGivenCountAtEachEnd) {
  std::vector<float> odd = {5, 1, 4, 2, 3};
  EXPECT_EQ(TrimmedMeanOf(odd, 2), 3.0f);  // the median
  std::vector<float> even = {4, 1, 3, 2};
  EXPECT_EQ(TrimmedMeanOf(even, 1), 2.5f);
  std::vector<float> untrimmed = {4, 1, 3, 2};
  EXPECT_EQ(TrimmedMeanOf(untrimmed, 0), 2.5f);
  std::vector<float> outliers = {-100, 1, 2, 6, 1000};
  EXPECT_EQ(TrimmedMeanOf(outliers, 1), 3.0f);
}

TEST(TrimmedMeanOfTest, TrimmedPerEndIsTheFloorOfFractionTimesSites) {
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0.2, 4), 0u);
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0.2, 5), 1u);
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0.25, 7), 1u);
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0.25, 8), 2u);
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0.49, 100), 49u);
  EXPECT_EQ(TrimmedMeanAggregator::TrimmedPerEnd(0, 9), 0u);
}

TEST_F(TrimmedMeanAggregatorTest, DropsTheSmallestAndLargestOfEveryCoordinate) {
  const std::vector<TensorSpec> specs = {Float32("w", {3})};
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  // Weights are ignored: the heavy site would dominate an example-weighted mean.
  ASSERT_THAT(Accept("a", 1, specs, {1, 10, -4}), IsOk());
  ASSERT_THAT(Accept("b", 5000, specs, {2, 20, -1}), IsOk());
  ASSERT_THAT(Accept("c", 1, specs, {3, 30, 0}), IsOk());
  ASSERT_THAT(Accept("d", 1, specs, {4, 40, 2}), IsOk());
  ASSERT_THAT(Accept("e", 1, specs, {100, -50, 3}), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_EQ(model.specs, specs);
  // 5 x 0.2 = 1 dropped at each end:
  // {1,2,3,4,100} -> (2+3+4)/3; {-50,10,20,30,40} -> (10+20+30)/3;
  // {-4,-1,0,2,3} -> (-1+0+2)/3.
  EXPECT_THAT(FloatsOf(model), ElementsAre(3.0f, 20.0f, static_cast<float>(1.0 / 3.0)));
}

TEST_F(TrimmedMeanAggregatorTest, TooFewSitesToTrimGiveThePlainUnweightedMean) {
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  // 4 x 0.2 = 0.8: nothing is trimmed.
  for (float value : {1.0f, 2.0f, 3.0f, 10.0f}) {
    ASSERT_THAT(Accept(absl::StrCat("site-", value), 100 * value, specs, {value}), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(4.0f));
}

TEST_F(TrimmedMeanAggregatorTest, TiesAtTheCutGiveTheSameResultInAnyArrivalOrder) {
  const std::vector<TensorSpec> specs = {Float32("w", {4})};
  // Columns {1,1,1,5,5} -> (1+1+5)/3; {2,2,2,2,2} -> 2; {0,0,7,7,7} -> (0+7+7)/3;
  // {1e-8, 1, 3e8, 3e8, 5e8} -> (1+3e8+3e8)/3.
  const std::vector<std::vector<float>> updates = {
      {1, 2, 7, 1e-8f}, {5, 2, 0, 3e8f}, {1, 2, 7, 1}, {5, 2, 0, 5e8f}, {1, 2, 7, 3e8f}};
  const std::vector<float> expected = {static_cast<float>(7.0 / 3.0), 2.0f,
                                       static_cast<float>(14.0 / 3.0),
                                       static_cast<float>((1.0 + 3e8 + 3e8) / 3.0)};
  std::string first_sha;
  for (const std::vector<int>& order :
       {std::vector<int>{0, 1, 2, 3, 4}, std::vector<int>{4, 3, 2, 1, 0},
        std::vector<int>{2, 4, 1, 0, 3}}) {
    ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
    for (int i : order) {
      ASSERT_THAT(Accept(absl::StrCat("site-", i), 1, specs, updates[i]), IsOk());
    }
    ASSERT_OK_AND_ASSIGN(std::string sha, trimmed_->Finish(*store_));
    if (first_sha.empty()) first_sha = sha;
    EXPECT_EQ(sha, first_sha) << "arrival order changed the model";
    ASSERT_OK_AND_ASSIGN(std::string path, store_->PathFor(sha));
    ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
    EXPECT_THAT(FloatsOf(model), ::testing::ElementsAreArray(expected));
  }
}

TEST_F(TrimmedMeanAggregatorTest, ArrivalOrderCannotChangeTheRounding) {
  // 3 x 0.2 trims none. Summed in ascending order in double,
  // (-2^60 + 1) + 2^60 = 0: the 1 is lost to rounding; in the order
  // 2^60, -2^60, 1 it would survive and give 1/3. Ascending order every time
  // gives 0 whatever order the sites arrive in.
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  const float big = std::ldexp(1.0f, 60);
  const std::vector<float> values = {-big, 1, big};
  for (const std::vector<int>& order : {std::vector<int>{0, 1, 2}, std::vector<int>{2, 0, 1},
                                        std::vector<int>{1, 2, 0}, std::vector<int>{2, 1, 0}}) {
    ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
    for (int i : order) {
      ASSERT_THAT(Accept(absl::StrCat("site-", i), 1, specs, {values[i]}), IsOk());
    }
    ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
    EXPECT_THAT(FloatsOf(model), ElementsAre(0.0f));
  }
}

TEST_F(TrimmedMeanAggregatorTest, ScaledOutlierIsTrimmedAwayWhereFedAvgFollowsIt) {
  const std::vector<TensorSpec> specs = {Float32("w", {3})};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> fedavg, MakeAggregator("fedavg"));
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  ASSERT_THAT(fedavg->Begin(1, specs), IsOk());
  std::vector<std::vector<float>> updates = kHonest;
  updates.push_back({10.0f, -20.0f, 5.0f});  // site 0's update scaled x10
  for (size_t i = 0; i < updates.size(); ++i) {
    ASSERT_THAT(Accept(absl::StrCat("site-", i), 1, specs, updates[i]), IsOk());
    ASSERT_THAT(AcceptInto(*fedavg, absl::StrCat("site-", i), 1, specs, updates[i]), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  // {0.5,1,1.25,1.5,10} -> (1+1.25+1.5)/3; {-20,-2.5,-2.25,-2,-1.5} -> (-2.5-2.25-2)/3;
  // {0.25,0.5,0.5,0.75,5} -> (0.5+0.5+0.75)/3.
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.25f, -2.25f, static_cast<float>(1.75 / 3.0)));
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, FinishAndRead(*fedavg));
  // FedAvg: (4.25 + 10) / 5 = 2.85, outside every honest value.
  EXPECT_THAT(FloatsOf(mean), SizeIs(3));
  EXPECT_GT(FloatsOf(mean)[0], 2.8f);
}

TEST_F(TrimmedMeanAggregatorTest, SignFlippedOutlierIsTrimmedAway) {
  const std::vector<TensorSpec> specs = {Float32("w", {3})};
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  std::vector<std::vector<float>> updates = kHonest;
  updates.push_back({-1.0f, 2.0f, -0.5f});  // site 0's update sign-flipped
  for (size_t i = 0; i < updates.size(); ++i) {
    ASSERT_THAT(Accept(absl::StrCat("site-", i), 1, specs, updates[i]), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  // {-1,0.5,1,1.25,1.5} -> (0.5+1+1.25)/3; {-2.5,-2.25,-2,-1.5,2} -> (-2.25-2-1.5)/3;
  // {-0.5,0.25,0.5,0.5,0.75} -> (0.25+0.5+0.5)/3: all within the honest range.
  EXPECT_THAT(FloatsOf(model),
              ElementsAre(static_cast<float>(2.75 / 3.0), static_cast<float>(-5.75 / 3.0),
                          static_cast<float>(1.25 / 3.0)));
}

TEST_F(TrimmedMeanAggregatorTest, ChunksEndingInsideTensorsGiveTheSameModel) {
  UseTrim(0.25, /*parameters_per_chunk=*/2);
  const std::vector<TensorSpec> specs = {Float32("a", {2}), Float32("b", {3})};
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  // 4 x 0.25 = 1 dropped at each end; coordinate j of site s is
  // j + s, and site 3 adds 1000 to every coordinate:
  // {j, j+1, j+2, j+1003} -> (j+1 + j+2)/2 = j + 1.5.
  for (int s = 0; s < 4; ++s) {
    std::vector<float> values(5);
    for (int j = 0; j < 5; ++j) values[j] = static_cast<float>(j + s + (s == 3 ? 1000 : 0));
    ASSERT_THAT(Accept(absl::StrCat("site-", s), 1, specs, values), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.5f, 2.5f, 3.5f, 4.5f, 5.5f));
}

TEST_F(TrimmedMeanAggregatorTest, RefusesNonFiniteValuesByNameAndStaysUsable) {
  const std::vector<TensorSpec> specs = {Float32("a", {2}), Float32("b", {1})};
  ASSERT_THAT(trimmed_->Begin(1, specs), IsOk());
  ASSERT_THAT(Accept("good-1", 1, specs, {1, 2, 3}), IsOk());
  EXPECT_THAT(Accept("diverged", 1, specs, {1, 2, std::nanf("")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("trimmed_mean"), HasSubstr("'diverged'"),
                             HasSubstr("tensor 'b'"), HasSubstr("element 0"))));
  EXPECT_THAT(Accept("exploded", 1, specs, {std::numeric_limits<float>::infinity(), 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'exploded'")));
  EXPECT_EQ(trimmed_->accepted(), 1);
  EXPECT_THAT(Entries(trimmed_->spool_dir_for_testing()), SizeIs(1));
  ASSERT_THAT(Accept("good-2", 1, specs, {3, 4, 5}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead());
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.0f, 3.0f, 4.0f));
}

TEST_F(TrimmedMeanAggregatorTest, BeginRefusesATrimFractionOutsideZeroToOneHalf) {
  for (double fraction : {0.5, 0.7, -0.1, std::nan("")}) {
    UseTrim(fraction);
    EXPECT_THAT(trimmed_->Begin(1, {Float32("w", {1})}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("trim_fraction"), HasSubstr("[0, 0.5)"))))
        << fraction;
  }
  EXPECT_THAT(Entries(spool_.path()), ::testing::IsEmpty());
  AggregatorOptions options;
  options.trim_fraction = 0.5;
  EXPECT_THAT(MakeAggregator("trimmed_mean", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trim_fraction")));
  EXPECT_THAT(ValidateAggregatorOptions("trimmed_mean", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 0.5")));
  // Options another strategy does not read are not its concern.
  EXPECT_THAT(ValidateAggregatorOptions("median", options), IsOk());
}

// Trims half of the sites at each end, which no trim_fraction < 0.5 does.
class OverTrimmingAggregator : public TrimmedMeanAggregator {
 public:
  explicit OverTrimmingAggregator(SpoolOptions spool)
      : TrimmedMeanAggregator(0, std::move(spool)) {}

 protected:
  size_t TrimFor(size_t n) const override { return n / 2; }
};

TEST_F(TrimmedMeanAggregatorTest, FinishRefusesARoundWithNothingLeftAfterTrimming) {
  OverTrimmingAggregator aggregator(Spool());
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(aggregator.Begin(4, specs), IsOk());
  ASSERT_THAT(AcceptInto(aggregator, "a", 1, specs, {1}), IsOk());
  ASSERT_THAT(AcceptInto(aggregator, "b", 1, specs, {2}), IsOk());
  EXPECT_THAT(aggregator.Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("round 4"), HasSubstr("trimming 1 of 2"),
                             HasSubstr("nothing to average"))));
}

TEST(TrimmedMeanStrategyTest, MakeAggregatorBuildsATrimmedMeanWithItsFraction) {
  ScratchDir updates, models, spool;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> store, ModelStore::Open(models.path()));
  AggregatorOptions options;
  options.trim_fraction = 0.4;  // 5 x 0.4 = 2 at each end: the median here
  options.spool.spool_parent = spool.path();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> aggregator,
                       MakeAggregator("trimmed_mean", options));
  ASSERT_NE(dynamic_cast<TrimmedMeanAggregator*>(aggregator.get()), nullptr);
  const std::vector<TensorSpec> specs = {Float32("w", {1})};
  ASSERT_THAT(aggregator->Begin(1, specs), IsOk());
  for (float value : {7.0f, -3.0f, 100.0f, 8.0f, 0.0f}) {
    ASSERT_THAT(AcceptUpdate(*aggregator, updates.path(), "site", 1, specs, {value}), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store));
  ASSERT_OK_AND_ASSIGN(std::string path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(7.0f));
  EXPECT_EQ(MinUpdatesFor("trimmed_mean", options), 1);
}

}  // namespace
}  // namespace fedmi
