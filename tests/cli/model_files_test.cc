#include "cli/model_files.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "common/data/dicom_writer.h"
#include "common/data/npz.h"
#include "common/data/phantoms.h"
#include "common/evaluation/segmentation_metrics.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Six 28x28 grayscale images of noise, labels alternating 0, 1.
ImageSet TinyImageSet() {
  ImageSet images;
  images.height = 28;
  images.width = 28;
  images.channels = 1;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> pixel(0, 255);
  for (int i = 0; i < 6; ++i) {
    for (int p = 0; p < 28 * 28; ++p) images.pixels.push_back(static_cast<uint8_t>(pixel(rng)));
    images.labels.push_back(i % 2);
  }
  return images;
}

class ModelFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml::ModelConfig config;
    config.arch = "cnn";
    config.num_classes = 2;
    config.seed = 7;
    auto model = ml::LocalModel::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    auto expected = model_->Predict(images_);
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = *std::move(expected);
  }

  // Loads `path` and checks it predicts exactly what model_ predicts.
  void ExpectSamePredictions(const std::string& path) {
    auto loaded = LoadModelFile(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto got = (*loaded)->Predict(images_);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->prob_positive.size(), expected_.prob_positive.size());
    for (size_t i = 0; i < got->prob_positive.size(); ++i) {
      EXPECT_FLOAT_EQ(got->prob_positive[i], expected_.prob_positive[i]) << "image " << i;
    }
    EXPECT_EQ(got->predicted, expected_.predicted);
    EXPECT_DOUBLE_EQ(got->loss, expected_.loss);
  }

  // images_ as the "test" split of an .npz; returns its path.
  std::string WriteImagesAsNpz() {
    NpyArray pixels{"|u1", {images_.size(), 28, 28}, {}};
    NpyArray labels{"|u1", {images_.size(), 1}, {}};
    pixels.data.assign(images_.pixels.begin(), images_.pixels.end());
    for (int64_t label : images_.labels) labels.data.push_back(static_cast<char>(label));
    const std::string path = dir_.Join("images.npz");
    EXPECT_THAT(WriteNpz(path, {{"test_images", pixels}, {"test_labels", labels}}), IsOk());
    return path;
  }

  ScratchDir dir_;
  ImageSet images_ = TinyImageSet();
  std::unique_ptr<ml::LocalModel> model_;
  ml::Predictions expected_;
};

TEST_F(ModelFilesTest, TorchScriptFileGivesIdenticalPredictions) {
  ASSERT_TRUE(model_->SaveTorchScript(dir_.Join("model.pt")).ok());
  ExpectSamePredictions(dir_.Join("model.pt"));
}

TEST_F(ModelFilesTest, SafetensorsFileWithMetadataGivesIdenticalPredictions) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ModelFileInfo info;
  info.arch = "cnn";
  info.num_classes = 2;
  info.run_id = 3;
  info.round = 5;
  ASSERT_TRUE(
      WriteSafetensors(dir_.Join("model.safetensors"), *weights, SafetensorsMetadata(info)).ok());
  ExpectSamePredictions(dir_.Join("model.safetensors"));

  std::map<std::string, std::string> metadata;
  ASSERT_TRUE(ReadSafetensors(dir_.Join("model.safetensors"), &metadata).ok());
  EXPECT_EQ(metadata["arch"], "cnn");
  EXPECT_EQ(metadata["num_classes"], "2");
  EXPECT_EQ(metadata["run"], "3");
  EXPECT_EQ(metadata["round"], "5");
  EXPECT_FALSE(metadata["fedmi_version"].empty());
}

TEST_F(ModelFilesTest, PredictsOnADicomFolderAtTheModelsGeometry) {
  // The six images as 8-bit DICOM files in test/<class>/ folders: at 28x28
  // the pipeline is the identity, so predictions match the in-memory ones.
  // Loading order: neg (rows 0, 2, 4) before pos (rows 1, 3, 5).
  const std::filesystem::path root = dir_.Join("dicom");
  for (int row = 0; row < 6; ++row) {
    const std::filesystem::path file =
        root / "test" / (row % 2 == 0 ? "neg" : "pos") / (std::to_string(row) + ".dcm");
    std::filesystem::create_directories(file.parent_path());
    DicomPixels pixels;
    pixels.rows = pixels.columns = 28;
    pixels.values.assign(images_.pixels.begin() + row * 784,
                         images_.pixels.begin() + (row + 1) * 784);
    ASSERT_THAT(WriteDicomFile(file.string(), pixels), IsOk());
  }
  ASSERT_TRUE(model_->SaveTorchScript(dir_.Join("model.pt")).ok());
  TorchModelRunner runner;
  ASSERT_OK_AND_ASSIGN(SplitPredictions predictions,
                       runner.PredictSplit(dir_.Join("model.pt"), root.string(), "test"));
  EXPECT_EQ(predictions.labels, std::vector<int64_t>({0, 0, 0, 1, 1, 1}));
  const int rows[] = {0, 2, 4, 1, 3, 5};
  ASSERT_EQ(predictions.prob_positive.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(predictions.prob_positive[i], expected_.prob_positive[rows[i]]) << i;
  }
}

TEST_F(ModelFilesTest, WriteModelFileWritesBothKinds) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ModelFileInfo info;
  info.seed = 99;  // different initial weights, overwritten by the import
  ASSERT_TRUE(WriteModelFile(dir_.Join("a.pt"), *weights, info).ok());
  ASSERT_TRUE(WriteModelFile(dir_.Join("a.safetensors"), *weights, info).ok());
  ExpectSamePredictions(dir_.Join("a.pt"));
  ExpectSamePredictions(dir_.Join("a.safetensors"));
}

// What `model export --format mobile [--quantize int8]` writes for a run's
// weights: the run's metadata, and predictions as the weights give them
// (exactly in float; int8 within mobile_model_test's bound).
TEST_F(ModelFilesTest, WriteModelFileWritesMobileFilesWithTheRunsMetadata) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ModelFileInfo info;
  info.seed = 99;
  info.run_id = 4;
  info.round = 3;
  info.metadata = {{"operating_threshold", "0.4"}};
  TorchModelRunner runner;
  for (const bool int8 : {false, true}) {
    SCOPED_TRACE(int8);
    const std::string path = dir_.Join(int8 ? "q.ptl" : "f.ptl");
    ASSERT_THAT(
        WriteModelFile(path, *weights, info, ExportFormat{ModelFileKind::kMobile, int8}, &runner),
        IsOk());
    auto predictions = PredictModelFile(path, WriteImagesAsNpz(), "test");
    ASSERT_TRUE(predictions.ok()) << predictions.status();
    const std::vector<float>& got = predictions->predictions.prob_positive;
    ASSERT_EQ(got.size(), expected_.prob_positive.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected_.prob_positive[i], int8 ? 0.05 : 1e-6) << "image " << i;
    }
    EXPECT_EQ(predictions->metadata.at("run"), "4");
    EXPECT_EQ(predictions->metadata.at("round"), "3");
    EXPECT_EQ(predictions->metadata.at("operating_threshold"), "0.4");
    EXPECT_EQ(predictions->metadata.at("quantization"), int8 ? "dynamic_int8" : "none");
  }
  // A .ptl is for inference only: nothing loads it back as a trainable model.
  EXPECT_THAT(LoadModelFile(dir_.Join("f.ptl")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is a mobile model")));
}

// `model export --format mobile --quantize int8` once the run's weights are
// downloaded: the file is int8 (smaller, says so) and carries the run.
TEST_F(ModelFilesTest, WriteRunModelFileWritesTheRequestedMobileFormat) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  v1::RunStatus run;
  run.set_run_id(9);
  run.mutable_spec()->set_model("cnn");
  TorchModelRunner runner;
  const std::string float_path = dir_.Join("float.ptl");
  const std::string int8_path = dir_.Join("int8.ptl");
  std::string summary;
  ASSERT_THAT(WriteRunModelFile(run, 2, *weights, float_path, ExportFormat{ModelFileKind::kMobile},
                                &runner, &summary),
              IsOk());
  EXPECT_THAT(summary, HasSubstr("run 9 round 2 (cnn)"));
  ASSERT_THAT(WriteRunModelFile(run, 2, *weights, int8_path,
                                ExportFormat{ModelFileKind::kMobile, /*quantize_int8=*/true},
                                &runner, &summary),
              IsOk());
  EXPECT_THAT(summary, HasSubstr("run 9 round 2 (cnn, int8 linear layers)"));
  EXPECT_LT(std::filesystem::file_size(int8_path), std::filesystem::file_size(float_path));
  auto predictions = PredictModelFile(int8_path, WriteImagesAsNpz(), "test");
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  EXPECT_EQ(predictions->metadata.at("quantization"), "dynamic_int8");
  EXPECT_EQ(predictions->metadata.at("run"), "9");
  EXPECT_EQ(predictions->metadata.at("round"), "2");
}

TEST_F(ModelFilesTest, WriteModelFileRejectsUnknownExtensionAndArchitecture) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_THAT(WriteModelFile(dir_.Join("a.onnx"), *weights, ModelFileInfo()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("a.onnx"), HasSubstr(".pt"), HasSubstr(".safetensors"))));
  ModelFileInfo synthetic;
  synthetic.arch = "no-such-arch";
  EXPECT_THAT(WriteModelFile(dir_.Join("a.pt"), *weights, synthetic),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no-such-arch")));
}

TEST_F(ModelFilesTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadModelFile(dir_.Join("absent.pt")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("absent.pt"), HasSubstr("does not exist"))));
  EXPECT_THAT(LoadModelFile(dir_.Join("absent.safetensors")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.safetensors")));
}

TEST_F(ModelFilesTest, UnknownExtensionNamesTheAllowedOnes) {
  std::ofstream(dir_.Join("model.bin")) << "x";
  EXPECT_THAT(LoadModelFile(dir_.Join("model.bin")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("model.bin"), HasSubstr(".pt"), HasSubstr(".safetensors"))));
}

TEST_F(ModelFilesTest, SafetensorsWithoutMetadataIsRejected) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_TRUE(WriteSafetensors(dir_.Join("bare.safetensors"), *weights).ok());
  EXPECT_THAT(LoadModelFile(dir_.Join("bare.safetensors")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("bare.safetensors"), HasSubstr("arch"))));
}

TEST_F(ModelFilesTest, SafetensorsWithWrongArchitectureIsRejected) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ModelFileInfo info;
  info.arch = "resnet18";
  ASSERT_TRUE(
      WriteSafetensors(dir_.Join("wrong.safetensors"), *weights, SafetensorsMetadata(info)).ok());
  EXPECT_THAT(LoadModelFile(dir_.Join("wrong.safetensors")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("wrong.safetensors"), HasSubstr("resnet18"))));
}

TEST_F(ModelFilesTest, EvaluateModelScoresEveryExample) {
  auto evaluation = EvaluateModel(*model_, images_);
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->metrics.examples, 6);
  EXPECT_DOUBLE_EQ(evaluation->loss, expected_.loss);
  EXPECT_GE(evaluation->metrics.accuracy, 0.0);
  EXPECT_LE(evaluation->metrics.accuracy, 1.0);
  EXPECT_FALSE(std::isnan(evaluation->metrics.auc));
}

TEST_F(ModelFilesTest, EvaluateModelRejectsNonBinaryLabelsAndEmptyData) {
  ImageSet three_classes = images_;
  three_classes.labels[0] = 2;
  EXPECT_THAT(EvaluateModel(*model_, three_classes),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("binary")));
  ImageSet empty;
  empty.height = 28;
  empty.width = 28;
  EXPECT_THAT(EvaluateModel(*model_, empty),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no examples")));
}

TEST_F(ModelFilesTest, EvaluateModelKeepsTheProbabilities) {
  auto evaluation = EvaluateModel(*model_, images_);
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->predictions.labels, images_.labels);
  EXPECT_EQ(evaluation->predictions.prob_positive, expected_.prob_positive);
}

TEST_F(ModelFilesTest, TorchScriptMetadataIsReadBack) {
  const std::string path = dir_.Join("model.pt");
  ASSERT_TRUE(model_
                  ->SaveTorchScript(path, {{"operating_threshold", "0.374"},
                                           {"operating_threshold_method", "youden"}})
                  .ok());
  auto loaded = LoadModelFileWithMetadata(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->metadata["operating_threshold"], "0.374");
  EXPECT_EQ(loaded->metadata["operating_threshold_method"], "youden");
  EXPECT_EQ(loaded->metadata["arch"], "cnn");  // fedmi_arch, the only string config attribute
  EXPECT_EQ(loaded->metadata.count("num_classes"), 0u);  // an int attribute, not metadata
  auto metadata = loaded->model->Metadata();
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(*metadata, loaded->metadata);
}

TEST_F(ModelFilesTest, SafetensorsMetadataIsReadBack) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  std::map<std::string, std::string> metadata = SafetensorsMetadata(ModelFileInfo());
  metadata["operating_threshold"] = "0.25";
  ASSERT_TRUE(WriteSafetensors(dir_.Join("m.safetensors"), *weights, metadata).ok());
  auto loaded = LoadModelFileWithMetadata(dir_.Join("m.safetensors"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->metadata["operating_threshold"], "0.25");
  EXPECT_EQ(loaded->metadata["arch"], "cnn");
}

TEST_F(ModelFilesTest, WriteModelFileStoresTheOperatingThresholdInBothKinds) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  ModelFileInfo info;
  info.metadata = {{"operating_threshold", "0.412"},
                   {"operating_threshold_method", "sensitivity>=0.95"}};
  for (const char* name : {"t.pt", "t.safetensors"}) {
    ASSERT_TRUE(WriteModelFile(dir_.Join(name), *weights, info).ok()) << name;
    auto loaded = LoadModelFileWithMetadata(dir_.Join(name));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->metadata["operating_threshold"], "0.412") << name;
    EXPECT_EQ(loaded->metadata["operating_threshold_method"], "sensitivity>=0.95") << name;
  }
}

// `model export --format mobile` of a U-Net run: the .ptl, rebuilt from
// the run's weights, predicts the masks those weights give, reading the
// split with its masks, and is scored on them.
TEST(ModelFilesSegmentationTest, MobileExportOfAUNetPredictsItsMasks) {
  ScratchDir dir;
  PhantomOptions phantoms;
  phantoms.size = 32;
  phantoms.count = 20;
  phantoms.seed = 2;
  ASSERT_OK_AND_ASSIGN(auto arrays, PhantomNpz(phantoms));
  const std::string data = dir.Join("phantoms.npz");
  ASSERT_THAT(WriteNpz(data, arrays), IsOk());
  ml::ModelConfig config;  // the U-Net's default width and depth, as a run's
  config.arch = "unet";
  config.height = config.width = 32;
  config.seed = 3;
  ASSERT_OK_AND_ASSIGN(auto model, ml::LocalModel::Create(config));
  ASSERT_OK_AND_ASSIGN(TensorBundle weights, model->ExportWeights());
  ModelFileInfo info;
  info.arch = "unet";
  info.image_size = 32;
  info.seed = 99;  // other initial weights, replaced by the run's
  const std::string ptl = dir.Join("unet.ptl");
  TorchModelRunner runner;
  ASSERT_THAT(WriteModelFile(ptl, weights, info, ExportFormat{ModelFileKind::kMobile}, &runner),
              IsOk());

  ASSERT_OK_AND_ASSIGN(ModelFilePredictions got, PredictModelFile(ptl, data, "test"));
  ASSERT_EQ(got.images.size(), 3);
  ASSERT_EQ(got.images.masks.size(), 3u * 32 * 32);  // read with the split's masks
  ASSERT_OK_AND_ASSIGN(ml::Predictions expected, model->Predict(got.images));
  EXPECT_EQ(got.predictions.masks, expected.masks);
  EXPECT_TRUE(got.predictions.prob_positive.empty());
  EXPECT_NEAR(got.predictions.loss, expected.loss, 1e-5);
  ASSERT_OK_AND_ASSIGN(ModelEvaluation evaluation, EvaluateModelOnSplit(ptl, data, "test"));
  ASSERT_TRUE(evaluation.segmentation.has_value());
  SegmentationCounts counts;
  for (int64_t i = 0; i < 3; ++i) {
    counts.AddImage(expected.masks.data() + i * 32 * 32, got.images.masks.data() + i * 32 * 32, 32,
                    32);
  }
  EXPECT_DOUBLE_EQ(evaluation.segmentation->PooledDice(), counts.PooledDice());
  EXPECT_EQ(evaluation.segmentation->hausdorff95_images, counts.hausdorff95_images);
}

TEST(ModelFileKindTest, ReadsTheExtension) {
  EXPECT_EQ(*ModelFileKindOf("/x/m.pt"), ModelFileKind::kTorchScript);
  EXPECT_EQ(*ModelFileKindOf("m.safetensors"), ModelFileKind::kSafetensors);
  EXPECT_EQ(*ModelFileKindOf("m.ptl"), ModelFileKind::kMobile);
  EXPECT_EQ(ModelFileKindOf("m.pth").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelFileKindOf("pt").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedmi::cli
