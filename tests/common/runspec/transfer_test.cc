#include "common/runspec/transfer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::RunSpec FrozenSpec(int32_t unfreeze_after_round) {
  v1::RunSpec spec;
  spec.set_model("resnet18");
  spec.set_rounds(5);
  spec.mutable_transfer()->add_freeze_prefixes("conv1");
  spec.mutable_transfer()->add_freeze_prefixes("layer1.");
  spec.mutable_transfer()->set_unfreeze_after_round(unfreeze_after_round);
  return spec;
}

TEST(TransferTest, TensorsUnderAPrefixAreFrozenUntilTheUnfreezeRound) {
  const v1::RunSpec spec = FrozenSpec(2);
  EXPECT_TRUE(IsFrozenInRound(spec, "conv1.weight", 1));
  EXPECT_TRUE(IsFrozenInRound(spec, "layer1.0.conv1.weight", 2));
  EXPECT_FALSE(IsFrozenInRound(spec, "layer1.0.conv1.weight", 3));
  EXPECT_FALSE(IsFrozenInRound(spec, "layer10.weight", 1));  // "layer1." needs the dot
  EXPECT_FALSE(IsFrozenInRound(spec, "fc.weight", 1));
  EXPECT_TRUE(FreezesInRound(spec, 2));
  EXPECT_FALSE(FreezesInRound(spec, 3));
  EXPECT_THAT(TrainedTensorNames(spec, {"conv1.weight", "layer1.0.bn1.bias", "fc.weight"}, 1),
              ElementsAre("fc.weight"));
  EXPECT_THAT(TrainedTensorNames(spec, {"conv1.weight", "fc.weight"}, 3),
              ElementsAre("conv1.weight", "fc.weight"));
}

TEST(TransferTest, UnfreezeRoundZeroFreezesForTheWholeRun) {
  const v1::RunSpec spec = FrozenSpec(0);
  EXPECT_TRUE(IsFrozenInRound(spec, "conv1.weight", 1));
  EXPECT_TRUE(IsFrozenInRound(spec, "conv1.weight", 1000));
  EXPECT_FALSE(FreezesInRound(v1::RunSpec(), 1));
}

TEST(TransferTest, FreezePrefixesMustNameATensorAndLeaveOneTrainable) {
  const v1::RunSpec spec = FrozenSpec(0);
  EXPECT_THAT(CheckFreezePrefixes(spec, {"conv1.weight", "layer1.0.weight", "fc.weight"}), IsOk());
  EXPECT_THAT(CheckFreezePrefixes(spec, {"conv1.weight", "fc.weight"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'layer1.' names no tensor")));
  EXPECT_THAT(CheckFreezePrefixes(spec, {"conv1.weight", "layer1.0.weight"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("every tensor")));
}

TEST(TransferTest, ValidationNamesTheBadField) {
  v1::RunSpec spec = FrozenSpec(5);
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unfreeze_after_round")));
  spec = FrozenSpec(0);
  spec.mutable_transfer()->add_freeze_prefixes("conv1");
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repeated")));
  spec = FrozenSpec(0);
  spec.mutable_transfer()->set_init_weights_sha256("ABC");
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("init_weights_sha256")));
  spec = FrozenSpec(0);
  spec.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sample-level DP")));
  spec = v1::RunSpec();
  spec.set_rounds(1);
  spec.set_model(kCustomModel);
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a model file")));
  spec.set_model_file_sha256(std::string(64, 'a'));
  EXPECT_THAT(ValidateTransferSettings(spec), IsOk());
  spec.set_model("cnn");
  EXPECT_THAT(ValidateTransferSettings(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("goes with model 'custom'")));
  EXPECT_THAT(ArtifactHashes(spec), ElementsAre(std::string(64, 'a')));
}

}  // namespace
}  // namespace fedmi
