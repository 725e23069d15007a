#include "common/runspec/model_names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

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

TEST(ModelNamesTest, ArchitectureShapeNamesTheSideThatDoesNotFit) {
  EXPECT_THAT(CheckArchitectureShape("densenet121", 64, 64, 0, 0), IsOk());
  EXPECT_THAT(CheckArchitectureShape("densenet121", 28, 28, 0, 0).message(),
              HasSubstr("'densenet121' needs images of at least 32x32, got 28x28"));
  EXPECT_THAT(CheckArchitectureShape("vgg16", 224, 224, 0, 0).message(),
              HasSubstr("unknown architecture 'vgg16'"));
}

TEST(ModelNamesTest, OnlyTheUNetTakesAWidthAndDepth) {
  EXPECT_THAT(CheckArchitectureShape("cnn", 28, 28, 16, 0).message(),
              HasSubstr("'cnn' has no U-Net base width or depth"));
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 0, 0), IsOk());
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 8, 6), IsOk());
  EXPECT_THAT(CheckArchitectureShape("unet", 28, 28, 8, 2), IsOk());  // 28 = 7 * 2^2
  EXPECT_THAT(CheckArchitectureShape("unet", 28, 28, 0, 0).message(),
              HasSubstr("unet of depth 4 needs image sides divisible by 16, got 28x28"));
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 0, 7).message(),
              HasSubstr("and a depth in [1, 6]; got 32 and 7"));
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 257, 0).message(),
              HasSubstr("a base width in [1, 256] and a depth in [1, 6]; got 257 and 4"));
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, -1, 0), Not(IsOk()));
}

// Width and depth each in range can still multiply to a model no site can
// hold: 256 doubled 6 times is a 16384-channel bottleneck, about 8 billion
// parameters (32 GB of float32 before gradients and Adam's moments). The
// coordinator refuses such a run and a site such a spec, before allocating.
TEST(ModelNamesTest, TheUNetBottleneckIsBounded) {
  EXPECT_THAT(CheckArchitectureShape("unet", 192, 192, 256, 6),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bottleneck of 256 x 2^6 = 16384 channels")));
  EXPECT_THAT(CheckArchitectureShape("unet", 224, 224, 256, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 2048")));
  EXPECT_THAT(CheckArchitectureShape("unet", 224, 224, 128, 4), IsOk());  // 2048
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 32, 6), IsOk());     // 2048
  EXPECT_THAT(CheckArchitectureShape("unet", 64, 64, 256, 1), IsOk());    // 512
}

}  // namespace
}  // namespace fedmi
