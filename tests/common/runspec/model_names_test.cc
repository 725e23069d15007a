#include "common/runspec/model_names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;

TEST(ModelNamesTest, RunsMayNameTheTrainableArchitecturesAndSynthetic) {
  EXPECT_THAT(TrainableModelNames(), ElementsAre("cnn", "cnn-gn", "resnet18"));
  EXPECT_THAT(RunModelNames(), ElementsAre("cnn", "cnn-gn", "resnet18", "synthetic"));
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
}

}  // namespace
}  // namespace fedmi
