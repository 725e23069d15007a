#include "coordinator/run_spec_validation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

v1::RunSpec SpecFor(const std::string& model, int32_t image_size) {
  v1::RunSpec spec;
  spec.set_model(model);
  spec.set_rounds(1);
  spec.set_image_size(image_size);
  spec.set_channels(1);
  return spec;
}

TEST(RunSpecValidationTest, ARunWhoseInputNoSiteCouldTrainIsRefusedAtStart) {
  v1::RunSpec small_densenet = SpecFor("densenet121", 28);
  EXPECT_THAT(ValidateRunSpec(&small_densenet).message(),
              HasSubstr("'densenet121' needs images of at least 32x32, got 28x28"));
  v1::RunSpec densenet = SpecFor("densenet121", 64);
  EXPECT_THAT(ValidateRunSpec(&densenet), IsOk());
}

TEST(RunSpecValidationTest, TheUNetShapeIsCheckedAgainstTheInput) {
  v1::RunSpec unet = SpecFor("unet", 28);
  EXPECT_THAT(ValidateRunSpec(&unet).message(),
              HasSubstr("unet of depth 4 needs image sides divisible by 16, got 28x28"));
  unet.mutable_unet()->set_depth(2);
  unet.mutable_unet()->set_base_width(8);
  EXPECT_THAT(ValidateRunSpec(&unet), IsOk());
  unet.mutable_unet()->set_base_width(1000);
  EXPECT_THAT(ValidateRunSpec(&unet).message(), HasSubstr("base width in [1, 256]"));
}

TEST(RunSpecValidationTest, UNetSettingsForAnotherModelAreRefused) {
  v1::RunSpec cnn = SpecFor("cnn", 28);
  cnn.mutable_unet()->set_depth(2);
  EXPECT_THAT(ValidateRunSpec(&cnn).message(), HasSubstr("'cnn' has no U-Net base width"));
  v1::RunSpec synthetic = SpecFor("synthetic", 28);
  synthetic.set_synthetic_params(10);
  synthetic.mutable_unet();
  EXPECT_THAT(ValidateRunSpec(&synthetic).message(),
              HasSubstr("unet settings are given but the model is 'synthetic'"));
}

// A Krum round with fewer than 2f + 3 updates can only fail at Finish, so a
// run whose quorum lets that happen would fail every round after training
// the sites for nothing: refuse it at start, naming the bound.
TEST(RunSpecValidationTest, AKrumRunWhoseQuorumIsBelowTwoFPlusThreeIsRefused) {
  for (const char* strategy : {"krum", "multikrum"}) {
    v1::RunSpec spec = SpecFor("cnn", 28);
    spec.set_strategy(strategy);
    spec.set_min_sites(4);
    EXPECT_THAT(ValidateRunSpec(&spec),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("needs at least 5 updates per round; min_sites is 4")))
        << strategy;
    v1::RunSpec by_default = SpecFor("cnn", 28);
    by_default.set_strategy(strategy);
    EXPECT_THAT(ValidateRunSpec(&by_default),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_sites is 1")))
        << strategy;
    spec.set_min_sites(5);
    EXPECT_THAT(ValidateRunSpec(&spec), IsOk()) << strategy;
  }
  v1::RunSpec fedavg = SpecFor("cnn", 28);
  fedavg.set_min_sites(1);
  EXPECT_THAT(ValidateRunSpec(&fedavg), IsOk());
}

TEST(RunSpecValidationTest, ScaffoldNeedsPlainSgdAndRefusesWhatItCannotCover) {
  v1::RunSpec adam = SpecFor("cnn", 28);
  adam.set_scaffold(true);
  EXPECT_THAT(ValidateRunSpec(&adam), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("scaffold needs optimizer sgd")));
  v1::RunSpec sgd = SpecFor("cnn", 28);
  sgd.set_scaffold(true);
  sgd.set_optimizer("sgd");
  EXPECT_THAT(ValidateRunSpec(&sgd), IsOk());
  v1::RunSpec frozen = sgd;
  frozen.mutable_transfer()->add_freeze_prefixes("conv1");
  EXPECT_THAT(ValidateRunSpec(&frozen), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("cannot run with frozen tensors")));
  v1::RunSpec synthetic = sgd;
  synthetic.set_model("synthetic");
  synthetic.set_synthetic_params(10);
  EXPECT_THAT(ValidateRunSpec(&synthetic),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not synthetic")));
}

TEST(RunSpecValidationTest, TheServerOptimizerIsCompletedAndProximalMuChecked) {
  v1::RunSpec adam = SpecFor("cnn", 28);
  adam.mutable_server_optimizer()->set_kind("fedadam");
  ASSERT_THAT(ValidateRunSpec(&adam), IsOk());
  EXPECT_DOUBLE_EQ(adam.server_optimizer().server_lr(), 0.1);
  v1::RunSpec unknown = SpecFor("cnn", 28);
  unknown.mutable_server_optimizer()->set_kind("fedsgd");
  EXPECT_THAT(ValidateRunSpec(&unknown), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("unknown server optimizer 'fedsgd'")));
  v1::RunSpec prox = SpecFor("cnn", 28);
  prox.mutable_recipe()->set_proximal_mu(-1);
  EXPECT_THAT(ValidateRunSpec(&prox), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("proximal_mu must be in [0, 10000]")));
  prox.mutable_recipe()->set_proximal_mu(0.01);
  EXPECT_THAT(ValidateRunSpec(&prox), IsOk());
}

// Unlike the other robust strategies, norm_bounded runs under secure
// aggregation: its sites clip their own change before masking it.
TEST(RunSpecValidationTest, NormBoundedIsAllowedWithSecureAggregationAndTheRobustOnesAreNot) {
  v1::RunSpec spec = SpecFor("cnn", 28);
  spec.set_min_sites(3);
  spec.set_secure_aggregation(true);
  spec.set_strategy("norm_bounded");
  spec.mutable_robust()->set_norm_bound(5);
  EXPECT_THAT(ValidateRunSpec(&spec), IsOk());
  v1::RunSpec unbounded = spec;
  unbounded.clear_robust();
  EXPECT_THAT(ValidateRunSpec(&unbounded),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs norm_bound")));
  v1::RunSpec median = spec;
  median.set_strategy("median");
  median.clear_robust();
  EXPECT_THAT(ValidateRunSpec(&median),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("strategy 'median' needs each site's individual update")));
  v1::RunSpec unknown = spec;
  unknown.set_strategy("bulyan");
  EXPECT_THAT(ValidateRunSpec(&unknown),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown aggregation strategy 'bulyan'")));
}

}  // namespace
}  // namespace fedmi
