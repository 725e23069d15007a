// Site-level DP-FedAvg at the coordinator, plaintext path: every site counts
// once, the sum is divided by the expected sites whoever returned, and the
// central noise on the sum has standard deviation sigma * S. (Under secure
// aggregation see secagg_aggregator_test; the refusal of an unclipped
// update, round_manager_test.)
#include "coordinator/site_dp_aggregator.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "common/base/status.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

class SiteDpAggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path())); }

  void Begin(const SiteDpSum& sum, const std::vector<float>& global) {
    global_ = global;
    ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(globals_.path(), Bundle(global)));
    aggregator_ = MakeSiteDpAggregator(sum, path);
    ASSERT_THAT(aggregator_->Begin(3, Specs()), IsOk());
  }

  std::vector<TensorSpec> Specs() const {
    return {TensorSpec{"w", DType::kFloat32, {static_cast<int64_t>(global_.size())}}};
  }
  TensorBundle Bundle(const std::vector<float>& values) const {
    return FloatBundle({TensorSpec{"w", DType::kFloat32, {static_cast<int64_t>(values.size())}}},
                       values);
  }

  absl::Status Accept(const std::string& site, double weight, const std::vector<float>& values) {
    ASSIGN_OR_RETURN(std::string path, WriteBundleFile(updates_.path(), Bundle(values)));
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> reader, BundleFileReader::Open(path));
    return aggregator_->Accept(site, weight, *reader);
  }

  absl::StatusOr<std::vector<float>> Finish() {
    ASSIGN_OR_RETURN(std::string sha, aggregator_->Finish(*store_));
    ASSIGN_OR_RETURN(std::string path, store_->PathFor(sha));
    ASSIGN_OR_RETURN(TensorBundle bundle, ReadBundleFile(path));
    return FloatsOf(bundle);
  }

  ScratchDir globals_, updates_, models_;
  std::unique_ptr<ModelStore> store_;
  std::unique_ptr<Aggregator> aggregator_;
  std::vector<float> global_;
};

// Two of four expected sites return: the sum of their changes is divided by
// 4, not 2, and not weighted by the example counts they claim.
TEST_F(SiteDpAggregatorTest, EachSiteCountsOnceAndTheDenominatorIsFixed) {
  SiteDpSum sum;
  sum.denominator = 4;
  Begin(sum, {1, 1, 1});
  ASSERT_THAT(Accept("big-hospital", 100000, {1.4f, 1, 0.8f}), IsOk());
  ASSERT_THAT(Accept("small-clinic", 3, {1, 1.2f, 1}), IsOk());
  EXPECT_EQ(aggregator_->accepted(), 2);
  ASSERT_OK_AND_ASSIGN(std::vector<float> model, Finish());
  EXPECT_NEAR(model[0], 1 + 0.4 / 4, 1e-6);
  EXPECT_NEAR(model[1], 1 + 0.2 / 4, 1e-6);
  EXPECT_NEAR(model[2], 1 - 0.2 / 4, 1e-6);
}

// One site whose change is zero: the new model minus the global is the
// central noise over n, which must have standard deviation sigma S / n.
TEST_F(SiteDpAggregatorTest, CentralNoiseHasStandardDeviationSigmaTimesClipOnTheSum) {
  const v1::DpSettings dp = CompletedSiteDp(/*clip=*/0.5, /*noise_multiplier=*/1.2,
                                            v1::DP_NOISE_CENTRAL, /*expected_sites=*/4);
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(3);
  const SiteDpSum sum = SiteDpSum::ForRound(dp, dp.clip_norm(), noise.get());
  EXPECT_DOUBLE_EQ(sum.noise_stddev, 0.6);
  EXPECT_EQ(sum.denominator, 4);
  const std::vector<float> global(200000, 0.25f);
  Begin(sum, global);
  ASSERT_THAT(Accept("site-a", 1, global), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<float> model, Finish());
  std::vector<double> noise_on_sum(model.size());
  for (size_t i = 0; i < model.size(); ++i) noise_on_sum[i] = (model[i] - 0.25) * 4;
  const double mean =
      std::accumulate(noise_on_sum.begin(), noise_on_sum.end(), 0.0) / noise_on_sum.size();
  double squares = 0;
  for (double v : noise_on_sum) squares += (v - mean) * (v - mean);
  const double stddev = std::sqrt(squares / (noise_on_sum.size() - 1));
  EXPECT_NEAR(mean, 0, 0.01);
  EXPECT_NEAR(stddev, 0.6, 0.6 * 0.05);
  // Distributed noise: the sites added it, the coordinator adds none.
  const SiteDpSum shared =
      SiteDpSum::ForRound(CompletedSiteDp(0.5, 1.2, v1::DP_NOISE_DISTRIBUTED, 4), 0.5, noise.get());
  EXPECT_EQ(shared.noise_stddev, 0);
}

TEST_F(SiteDpAggregatorTest, RefusesAFinishWithoutUpdatesAndABrokenRound) {
  SiteDpSum sum;
  sum.denominator = 2;
  Begin(sum, {1, 1});
  EXPECT_THAT(aggregator_->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no update")));
  EXPECT_THAT(Accept("site-a", 1, {1, NAN}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Accept("site-b", 1, {1, 1}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("begin the round")));
}

}  // namespace
}  // namespace fedmi
