#include "common/runspec/model_task.h"

#include "gtest/gtest.h"

namespace fedmi {
namespace {

TEST(ModelTaskTest, BuiltInModelsByTheirInfoAndModelFilesByTheSpecsTask) {
  v1::RunSpec spec;
  spec.set_model("unet");
  EXPECT_TRUE(IsSegmentationRun(spec));
  spec.set_model("cnn");
  EXPECT_FALSE(IsSegmentationRun(spec));
  spec.set_task(v1::MODEL_TASK_SEGMENTATION);  // ignored for a built-in model
  EXPECT_FALSE(IsSegmentationRun(spec));
  spec.set_model("custom");
  EXPECT_TRUE(IsSegmentationRun(spec));
  spec.set_task(v1::MODEL_TASK_CLASSIFICATION);
  EXPECT_FALSE(IsSegmentationRun(spec));
  spec.set_model("no-such-model");
  EXPECT_FALSE(IsSegmentationRun(spec));
}

}  // namespace
}  // namespace fedmi
