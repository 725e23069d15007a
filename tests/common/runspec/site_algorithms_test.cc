#include "common/runspec/site_algorithms.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

v1::RunSpec Scaffold() {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_strategy("fedavg");
  spec.set_optimizer("sgd");
  spec.set_scaffold(true);
  return spec;
}

void ExpectRefused(const v1::RunSpec& spec, const std::string& reason) {
  EXPECT_THAT(CheckSiteAlgorithms(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(reason)));
}

TEST(SiteAlgorithmsTest, ScaffoldRunsOnlyWithWhatItsVariatesMeanSomethingWith) {
  EXPECT_THAT(CheckSiteAlgorithms(Scaffold()), IsOk());
  v1::RunSpec adam = Scaffold();
  adam.set_optimizer("adam");
  ExpectRefused(adam, "scaffold needs optimizer sgd");
  v1::RunSpec dp = Scaffold();
  dp.mutable_dp()->set_level(v1::DP_LEVEL_SITE);
  ExpectRefused(dp, "cannot run with differential privacy");
  v1::RunSpec krum = Scaffold();
  krum.set_strategy("krum");
  ExpectRefused(krum, "scaffold needs strategy fedavg, got krum");
  v1::RunSpec bounded = Scaffold();
  bounded.set_max_update_norm(5);
  ExpectRefused(bounded, "max_update_norm");
  v1::RunSpec prox = Scaffold();
  prox.mutable_recipe()->set_proximal_mu(0.1);
  ExpectRefused(prox, "choose one");
  v1::RunSpec frozen = Scaffold();
  frozen.mutable_transfer()->add_freeze_prefixes("fc");
  ExpectRefused(frozen, "frozen tensors");
}

TEST(SiteAlgorithmsTest, FedProxIsRefusedWithSampleLevelDpButNotSiteLevel) {
  v1::RunSpec prox;
  prox.set_model("cnn");
  prox.mutable_recipe()->set_proximal_mu(0.1);
  EXPECT_THAT(CheckSiteAlgorithms(prox), IsOk());
  prox.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  ExpectRefused(prox, "sample-level DP");
  prox.mutable_dp()->set_level(v1::DP_LEVEL_SITE);
  EXPECT_THAT(CheckSiteAlgorithms(prox), IsOk());
  v1::RunSpec synthetic;
  synthetic.set_model("synthetic");
  synthetic.mutable_recipe()->set_proximal_mu(0.1);
  ExpectRefused(synthetic, "not synthetic");
}

}  // namespace
}  // namespace fedmi
