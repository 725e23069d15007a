// Model files without model code: what a fedmi built without training can
// and cannot write (cli/model_export.h, cli/model_runner.h).
#include "cli/model_export.h"

#include <map>
#include <string>

#include "cli/model_runner.h"
#include "common/privacy/dp_plan.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/privacy/dp_settings_fixture.h"
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

TEST(ModelExportTest, AModelOfAPrivateRunCarriesItsGuarantee) {
  v1::RunSpec spec;
  spec.set_rounds(10);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp = CompletedSampleDp(1.1, 0.05, 20);
  dp.set_clip_norm(1.5);
  const std::map<std::string, std::string> privacy = PrivacyMetadata(spec, /*round=*/4);
  EXPECT_EQ(privacy.at("dp_level"), "sample");
  EXPECT_THAT(privacy.at("dp_mechanism"), HasSubstr("DP-SGD"));
  EXPECT_EQ(std::stod(privacy.at("dp_delta")), 1e-5);
  EXPECT_EQ(std::stod(privacy.at("dp_clip_norm")), 1.5);
  EXPECT_EQ(privacy.at("dp_rounds"), "4");
  // Epsilon of the exported round, not of the whole plan, read back exactly.
  EXPECT_EQ(std::stod(privacy.at("dp_epsilon")), privacy::EpsilonAfterRounds(dp, 4)->epsilon);
  EXPECT_LT(std::stod(privacy.at("dp_epsilon")), privacy::EpsilonAfterRounds(dp, 10)->epsilon);

  ScratchDir dir;
  ModelFileInfo info;
  info.metadata = privacy;
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {1}}}, {1.0f});
  ASSERT_THAT(WriteModelFile(dir.Join("m.safetensors"), weights, info, nullptr), IsOk());
  std::map<std::string, std::string> metadata;
  ASSERT_THAT(ReadSafetensors(dir.Join("m.safetensors"), &metadata), IsOk());
  for (const auto& [key, value] : privacy) EXPECT_EQ(metadata[key], value) << key;
  EXPECT_EQ(metadata["arch"], info.arch);

  EXPECT_TRUE(PrivacyMetadata(v1::RunSpec(), 4).empty()) << "no DP, no claim";
}

TEST(TrainingUnavailableErrorTest, NamesTheCommandAndTheBuildOption) {
  EXPECT_THAT(TrainingUnavailableError("fedmi model evaluate"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "`fedmi model evaluate` runs models, and this fedmi was built without "
                       "training (cmake -DFEDMI_WITH_TRAINING=ON)"));
}

}  // namespace
}  // namespace fedmi::cli
