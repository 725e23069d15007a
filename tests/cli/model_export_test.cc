// Model files without model code: what a fedmi built without training can
// and cannot write (cli/model_export.h, cli/model_runner.h).
#include "cli/model_export.h"

#include <map>
#include <string>

#include "cli/model_runner.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

TEST(ModelExportTest, WithoutARunnerSafetensorsAreWritable) {
  EXPECT_THAT(CheckModelFileWritable("/x/m.safetensors", nullptr), IsOk());
  EXPECT_THAT(CheckModelFileWritable("/x/m.onnx", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".safetensors")));
}

TEST(ModelExportTest, WithoutARunnerTorchScriptIsRefusedNamingTheBuildOption) {
  EXPECT_THAT(CheckModelFileWritable("/x/m.pt", nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("built without training (cmake -DFEDMI_WITH_TRAINING=ON); "
                                 "export to .safetensors instead")));
  ScratchDir dir;
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {2}}}, {1.0f, 2.0f});
  EXPECT_THAT(WriteModelFile(dir.Join("m.pt"), weights, ModelFileInfo(), nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ModelExportTest, WritesSafetensorsWithTheirMetadataWithoutARunner) {
  ScratchDir dir;
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {2}}}, {1.0f, 2.0f});
  ModelFileInfo info;
  info.arch = "resnet18";
  info.run_id = 7;
  info.round = 3;
  ASSERT_THAT(WriteModelFile(dir.Join("m.safetensors"), weights, info, nullptr), IsOk());
  std::map<std::string, std::string> metadata;
  auto read = ReadSafetensors(dir.Join("m.safetensors"), &metadata);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(FloatsOf(*read), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(metadata, SafetensorsMetadata(info));
  EXPECT_EQ(metadata["arch"], "resnet18");
  EXPECT_EQ(metadata["round"], "3");
}

TEST(TrainingUnavailableErrorTest, NamesTheCommandAndTheBuildOption) {
  EXPECT_THAT(TrainingUnavailableError("fedmi model evaluate"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "`fedmi model evaluate` runs models, and this fedmi was built without "
                       "training (cmake -DFEDMI_WITH_TRAINING=ON)"));
}

}  // namespace
}  // namespace fedmi::cli
