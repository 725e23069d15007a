#include "common/runspec/model_names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;

TEST(ModelNamesTest, RunsMayNameTheTrainableArchitecturesAndSynthetic) {
  EXPECT_THAT(TrainableModelNames(), ElementsAre("cnn", "cnn-gn", "resnet18", "densenet121",
                                                 "resnet50", "mobilenet_v2", "unet"));
  EXPECT_THAT(RunModelNames(), ElementsAre("cnn", "cnn-gn", "resnet18", "densenet121", "resnet50",
                                           "mobilenet_v2", "unet", "synthetic"));
  EXPECT_TRUE(IsTrainableModel(kDefaultModel));
  EXPECT_FALSE(IsTrainableModel(kSyntheticModel));
  EXPECT_TRUE(IsRunModel(kSyntheticModel));
  EXPECT_FALSE(IsRunModel("vgg16"));
  EXPECT_FALSE(IsRunModel(""));
}

TEST(ModelNamesTest, OnlyModelsWithoutBatchNormAreDpCompatible) {
  EXPECT_THAT(DpCompatibleModelNames(), ElementsAre("cnn-gn"));
  EXPECT_TRUE(IsDpCompatibleModel(kCnnGroupNormModel));
  EXPECT_FALSE(IsDpCompatibleModel(kCnnModel));
  EXPECT_FALSE(IsDpCompatibleModel(kResNet18Model));
  EXPECT_FALSE(IsDpCompatibleModel(kSyntheticModel));
  EXPECT_FALSE(IsDpCompatibleModel(kMobileNetV2Model));
  EXPECT_FALSE(IsDpCompatibleModel(kUNetModel));
}

TEST(ModelNamesTest, ModelInfoDescribesEachTrainableModel) {
  for (const std::string& name : TrainableModelNames()) {
    const ModelInfo* info = FindModelInfo(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->name, name);
    EXPECT_GE(info->default_side, info->min_side) << name;
    EXPECT_EQ(info->default_side % info->side_multiple, 0) << name;
    EXPECT_EQ(info->dp_compatible, IsDpCompatibleModel(name)) << name;
  }
  EXPECT_EQ(FindModelInfo("vgg16"), nullptr);
  EXPECT_EQ(FindModelInfo(kSyntheticModel), nullptr);
  EXPECT_EQ(FindModelInfo(kUNetModel)->task, ModelTask::kSegmentation);
  EXPECT_STREQ(ModelTaskName(FindModelInfo(kUNetModel)->task), "segmentation");
  EXPECT_EQ(FindModelInfo(kDenseNet121Model)->task, ModelTask::kClassification);
  EXPECT_EQ(FindModelInfo(kResNet50Model)->default_side, 224);
  EXPECT_EQ(FindModelInfo(kCnnModel)->min_side, 8);
}

}  // namespace
}  // namespace fedmi
