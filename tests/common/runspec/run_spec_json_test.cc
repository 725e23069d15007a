#include "common/runspec/run_spec_json.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

TEST(RunSpecJsonTest, AnAuditorSeesTheModelFileTheStartingWeightsAndTheFrozenTensors) {
  v1::RunSpec spec;
  spec.set_model("custom");
  spec.set_model_file_sha256("ab12");
  spec.set_task(v1::MODEL_TASK_SEGMENTATION);
  v1::TransferSettings& transfer = *spec.mutable_transfer();
  transfer.set_init_weights_sha256("cd34");
  transfer.set_init_allow_partial(true);
  transfer.add_freeze_prefixes("features.");
  transfer.set_unfreeze_after_round(3);

  const nlohmann::json json = RunSpecToJson(spec);
  EXPECT_EQ(json.at("model_file_sha256"), "ab12");
  EXPECT_EQ(json.at("task"), "segmentation");
  EXPECT_EQ(json.at("transfer").at("init_weights_sha256"), "cd34");
  EXPECT_EQ(json.at("transfer").at("init_allow_partial"), true);
  EXPECT_EQ(json.at("transfer").at("freeze_prefixes"), nlohmann::json({"features."}));
  EXPECT_EQ(json.at("transfer").at("unfreeze_after_round"), 3);
  EXPECT_FALSE(json.contains("unet"));
}

TEST(RunSpecJsonTest, TheUNetShapeAppearsOnlyWhenSet) {
  v1::RunSpec spec;
  spec.set_model("unet");
  EXPECT_FALSE(RunSpecToJson(spec).contains("unet"));
  spec.mutable_unet()->set_base_width(16);
  spec.mutable_unet()->set_depth(3);
  const nlohmann::json json = RunSpecToJson(spec);
  EXPECT_EQ(json.at("unet").at("base_width"), 16);
  EXPECT_EQ(json.at("unet").at("depth"), 3);
  // A built-in model: no model file or transfer keys to mislead a reader.
  EXPECT_FALSE(json.contains("model_file_sha256"));
  EXPECT_FALSE(json.contains("transfer"));
}

TEST(RunSpecJsonTest, AnAuditorSeesTheServerOptimizerFedProxAndScaffold) {
  v1::RunSpec spec;
  EXPECT_FALSE(RunSpecToJson(spec).contains("server_optimizer"));
  EXPECT_FALSE(RunSpecToJson(spec).contains("scaffold"));
  spec.mutable_server_optimizer()->set_kind("fedadam");
  spec.mutable_server_optimizer()->set_server_lr(0.25);
  spec.mutable_server_optimizer()->set_tau(0.5);
  spec.mutable_recipe()->set_proximal_mu(0.125);
  spec.set_scaffold(true);
  const nlohmann::json json = RunSpecToJson(spec);
  EXPECT_EQ(json.at("server_optimizer").at("kind"), "fedadam");
  EXPECT_EQ(json.at("server_optimizer").at("server_lr"), 0.25);
  EXPECT_EQ(json.at("server_optimizer").at("tau"), 0.5);
  EXPECT_TRUE(json.at("server_optimizer").at("momentum").is_null());
  EXPECT_EQ(json.at("training").at("proximal_mu"), 0.125);
  EXPECT_EQ(json.at("scaffold"), true);
}

TEST(RunSpecJsonTest, TheNormBoundIsOnRecordForTheRunThatSetsIt) {
  v1::RunSpec spec;
  spec.set_strategy("norm_bounded");
  spec.mutable_robust()->set_norm_bound(2.5);
  EXPECT_EQ(RunSpecToJson(spec).at("robust").at("norm_bound"), 2.5);
  v1::RunSpec trimmed;
  trimmed.mutable_robust()->set_trim_fraction(0.2);
  EXPECT_TRUE(RunSpecToJson(trimmed).at("robust").at("norm_bound").is_null());
}

}  // namespace
}  // namespace fedmi
