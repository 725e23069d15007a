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

TEST(ModelExportTest, FormatComesFromTheExtensionOrAMatchingFlag) {
  absl::StatusOr<ExportFormat> format = ResolveExportFormat("/x/m.ptl", "", "");
  ASSERT_THAT(format, IsOk());
  EXPECT_EQ(format->kind, ModelFileKind::kMobile);
  EXPECT_FALSE(format->quantize_int8);
  format = ResolveExportFormat("m.ptl", "mobile", "int8");
  ASSERT_THAT(format, IsOk());
  EXPECT_EQ(format->kind, ModelFileKind::kMobile);
  EXPECT_TRUE(format->quantize_int8);
  format = ResolveExportFormat("m.safetensors", "safetensors", "none");
  ASSERT_THAT(format, IsOk());
  EXPECT_EQ(format->kind, ModelFileKind::kSafetensors);
  EXPECT_EQ(ResolveExportFormat("m.pt", "pt", "")->kind, ModelFileKind::kTorchScript);

  EXPECT_THAT(ResolveExportFormat("m.pt", "mobile", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--format mobile writes a .ptl file, and 'm.pt' does not end")));
  EXPECT_THAT(ResolveExportFormat("m.ptl", "pt", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not end in .pt")));
  EXPECT_THAT(ResolveExportFormat("m.ptl", "onnx", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown format 'onnx'")));
  EXPECT_THAT(ResolveExportFormat("m.pt", "", "int8"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--quantize int8 applies to mobile files")));
  EXPECT_THAT(ResolveExportFormat("m.ptl", "", "fp16"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown quantization")));
  EXPECT_THAT(ResolveExportFormat("m.onnx", "", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".ptl")));
}

TEST(ModelExportTest, WithoutARunnerMobileFilesAreRefused) {
  EXPECT_THAT(CheckModelFileWritable("/x/m.ptl", nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("`fedmi model export --out *.ptl` runs models")));
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
