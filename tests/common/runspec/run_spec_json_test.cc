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

}  // namespace
}  // namespace fedmi
