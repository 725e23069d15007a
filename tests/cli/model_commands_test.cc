// `fedmi model evaluate|predict|convert` with the real TorchModelRunner on a
// tiny untrained model: calibration, the reliability diagram, the metrics
// at a model file's stored operating threshold, and mobile (.ptl) files.
// And `fedmi model list`, with and without a runner.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/model_files.h"
#include "common/base/env.h"
#include "common/data/metrics.h"
#include "common/data/npz.h"
#include "common/data/phantoms.h"
#include "common/evaluation/calibration.h"
#include "common/evaluation/segmentation_metrics.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

constexpr int kImages = 8;

void AddModelCommandsWithTorch(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddModelCommands(app, global, result, std::make_shared<TorchModelRunner>());
}

class ModelCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml::ModelConfig config;
    config.seed = 5;
    auto model = ml::LocalModel::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);

    // Noise images, labels alternating, as the "test" split of an .npz.
    images_.height = 28;
    images_.width = 28;
    images_.channels = 1;
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> pixel(0, 255);
    NpyArray pixels{"|u1", {kImages, 28, 28}, {}};
    NpyArray labels{"|u1", {kImages, 1}, {}};
    for (int i = 0; i < kImages; ++i) {
      for (int p = 0; p < 28 * 28; ++p) {
        images_.pixels.push_back(static_cast<uint8_t>(pixel(rng)));
        pixels.data.push_back(static_cast<char>(images_.pixels.back()));
      }
      images_.labels.push_back(i % 2);
      labels.data.push_back(static_cast<char>(i % 2));
    }
    ASSERT_TRUE(WriteNpz(data_, {{"test_images", pixels}, {"test_labels", labels}}).ok());
    auto expected = model_->Predict(images_);
    ASSERT_TRUE(expected.ok()) << expected.status();
    expected_ = *std::move(expected);
  }

  // The model as a .pt file with `metadata`.
  std::string SaveModel(const std::string& name,
                        const std::map<std::string, std::string>& metadata) {
    const std::string path = dir_.Join(name);
    EXPECT_TRUE(model_->SaveTorchScript(path, metadata).ok());
    return path;
  }

  CliOutcome Run(std::vector<std::string> args) {
    return RunCliCommands(&AddModelCommandsWithTorch, "model", std::move(args));
  }

  ScratchDir dir_;
  std::string data_ = dir_.Join("data.npz");
  ImageSet images_;
  std::unique_ptr<ml::LocalModel> model_;
  ml::Predictions expected_;
};

TEST_F(ModelCommandsTest, EvaluateReportsCalibrationAndTheStoredThresholdsMetrics) {
  // Threshold 0 predicts class 1 for every image: sensitivity 1,
  // specificity 0, accuracy 0.5, whatever the untrained model outputs.
  const std::string model = SaveModel(
      "m.pt", {{"operating_threshold", "0"}, {"operating_threshold_method", "sensitivity>=0.95"}});
  const std::string plot = dir_.Join("reliability.png");
  const CliOutcome outcome =
      Run({"evaluate", "--model", model, "--data", data_, "--json", "--reliability-plot", plot});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = outcome.Json();
  ASSERT_TRUE(json.is_object()) << outcome.out;

  absl::StatusOr<Calibration> calibration =
      ComputeCalibration(images_.labels, expected_.prob_positive);
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  absl::StatusOr<BinaryMetrics> at_half =
      ComputeBinaryMetrics(images_.labels, expected_.prob_positive, 0.5);
  ASSERT_TRUE(at_half.ok()) << at_half.status();
  EXPECT_NEAR(json["brier"].get<double>(), calibration->brier, 1e-9);
  EXPECT_NEAR(json["ece"].get<double>(), calibration->ece, 1e-9);
  EXPECT_GT(json["brier"].get<double>(), 0);
  EXPECT_EQ(json["ece_bins"], 15);
  // The keys that were there before are unchanged.
  EXPECT_EQ(json["examples"], kImages);
  EXPECT_EQ(json["threshold"], 0.5);
  for (const char* key : {"auc", "accuracy", "sensitivity", "specificity", "f1", "loss"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(json["accuracy"].get<double>(), at_half->accuracy);

  const nlohmann::json& stored = json["operating_threshold"];
  ASSERT_TRUE(stored.is_object()) << outcome.out;
  EXPECT_EQ(stored["threshold"], 0.0);
  EXPECT_EQ(stored["method"], "sensitivity>=0.95");
  EXPECT_EQ(stored["sensitivity"], 1.0);
  EXPECT_EQ(stored["specificity"], 0.0);
  EXPECT_EQ(stored["accuracy"], 0.5);

  EXPECT_EQ(json["reliability_plot"], plot);
  absl::StatusOr<std::string> png = ReadFileToString(plot);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(ModelCommandsTest, EvaluateTextNamesTheStoredThreshold) {
  const std::string model =
      SaveModel("m.pt", {{"operating_threshold", "0"}, {"operating_threshold_method", "youden"}});
  const CliOutcome outcome = Run({"evaluate", "--model", model, "--data", data_});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("brier"));
  EXPECT_THAT(outcome.out, HasSubstr("ece"));
  EXPECT_THAT(outcome.out, HasSubstr("at the model's operating threshold 0 (youden):"));
  EXPECT_THAT(outcome.out, HasSubstr("sensitivity  1.0000"));
}

TEST_F(ModelCommandsTest, EvaluateWithoutAStoredThresholdSaysSo) {
  auto weights = model_->ExportWeights();
  ASSERT_TRUE(weights.ok()) << weights.status();
  const std::string model = dir_.Join("m.safetensors");
  ASSERT_TRUE(WriteSafetensors(model, *weights, SafetensorsMetadata(ModelFileInfo())).ok());
  CliOutcome outcome = Run({"evaluate", "--model", model, "--data", data_, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_TRUE(outcome.Json()["operating_threshold"].is_null()) << outcome.out;
  outcome = Run({"evaluate", "--model", model, "--data", data_});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("stores no operating threshold"));
}

TEST_F(ModelCommandsTest, EvaluateRefusesAMalformedStoredThreshold) {
  const std::string model = SaveModel("bad.pt", {{"operating_threshold", "high"}});
  const CliOutcome outcome = Run({"evaluate", "--model", model, "--data", data_});
  EXPECT_NE(outcome.exit_code, 0);
  EXPECT_THAT(outcome.err, HasSubstr("bad.pt"));
  EXPECT_THAT(outcome.err, HasSubstr("operating_threshold is 'high'"));
}

TEST_F(ModelCommandsTest, PredictAddsTheClassAtTheStoredThreshold) {
  // Halfway between the lowest and highest probability: some of each class.
  const auto [low, high] =
      std::minmax_element(expected_.prob_positive.begin(), expected_.prob_positive.end());
  ASSERT_LT(*low, *high);
  const double threshold = (static_cast<double>(*low) + *high) / 2;
  const std::string model =
      SaveModel("m.pt", {{"operating_threshold", absl::StrFormat("%.9g", threshold)}});
  const std::string csv = dir_.Join("p.csv");
  const CliOutcome outcome = Run({"predict", "--model", model, "--data", data_, "--out", csv});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("predicted_class is 1 when prob_pneumonia >= "));

  absl::StatusOr<std::string> text = ReadFileToString(csv);
  ASSERT_TRUE(text.ok()) << text.status();
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kImages + 1));
  EXPECT_EQ(lines[0], "index,label,prob_pneumonia,predicted_class");
  int positives = 0;
  for (int i = 0; i < kImages; ++i) {
    const std::string expected_class = expected_.prob_positive[i] >= threshold ? "1" : "0";
    positives += expected_class == "1";
    EXPECT_EQ(lines[i + 1].back(), expected_class[0]) << lines[i + 1];
  }
  EXPECT_GT(positives, 0);
  EXPECT_LT(positives, kImages);
}

TEST_F(ModelCommandsTest, PredictWithoutAStoredThresholdHasNoClassColumn) {
  const std::string model = SaveModel("m.pt", {});
  const std::string csv = dir_.Join("p.csv");
  const CliOutcome outcome = Run({"predict", "--model", model, "--data", data_, "--out", csv});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("no predicted_class column"));
  absl::StatusOr<std::string> text = ReadFileToString(csv);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->substr(0, text->find('\n')), "index,label,prob_pneumonia");
}

TEST_F(ModelCommandsTest, ConvertedMobileFileEvaluatesAsItsReference) {
  const std::string pt = SaveModel("m.pt", {{"operating_threshold", "0"}});
  const std::string ptl = dir_.Join("m.ptl");
  CliOutcome outcome = Run({"convert", "--model", pt, "--out", ptl});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("wrote " + ptl + " (mobile)"));

  outcome = Run({"evaluate", "--model", ptl, "--data", data_, "--reference", pt, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = outcome.Json();
  ASSERT_TRUE(json.is_object()) << outcome.out;
  const nlohmann::json& reference = json["reference"];
  ASSERT_TRUE(reference.is_object()) << outcome.out;
  EXPECT_EQ(reference["model"], pt);
  EXPECT_LE(reference["max_abs_prob_difference"].get<double>(), 1e-5);
  EXPECT_NEAR(json["loss"].get<double>(), reference["loss"].get<double>(), 1e-5);
  EXPECT_EQ(json["auc"], reference["auc"]);
  // The stored threshold travelled into the .ptl's metadata.
  EXPECT_EQ(json["operating_threshold"]["threshold"], 0.0) << outcome.out;

  outcome = Run({"evaluate", "--model", ptl, "--data", data_, "--reference", pt});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("reference " + pt));
  EXPECT_THAT(outcome.out, HasSubstr("max |P(class 1) difference|"));

  const std::string csv = dir_.Join("p.csv");
  outcome = Run({"predict", "--model", ptl, "--data", data_, "--out", csv});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  absl::StatusOr<std::string> text = ReadFileToString(csv);
  ASSERT_TRUE(text.ok()) << text.status();
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), static_cast<size_t>(kImages + 1));
}

TEST_F(ModelCommandsTest, QuantizedMobileFileReportsItsDifference) {
  const std::string pt = SaveModel("m.pt", {});
  const std::string ptl = dir_.Join("q.ptl");
  CliOutcome outcome = Run({"convert", "--model", pt, "--out", ptl, "--quantize", "int8"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("int8 linear layers"));
  outcome = Run({"evaluate", "--model", ptl, "--data", data_, "--reference", pt, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const double difference = outcome.Json()["reference"]["max_abs_prob_difference"].get<double>();
  EXPECT_GT(difference, 0);
  EXPECT_LE(difference, 0.05);  // see mobile_model_test's bound
}

TEST_F(ModelCommandsTest, MobileFormatMismatchesAreUsageErrors) {
  const std::string pt = SaveModel("m.pt", {});
  CliOutcome outcome = Run({"convert", "--model", pt, "--out", dir_.Join("m.pt2")});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("must end in .ptl"));
  outcome = Run({"convert", "--model", pt, "--out", dir_.Join("m.ptl"), "--quantize", "int4"});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("unknown quantization 'int4'"));
  // Refused before connecting to any coordinator.
  outcome = Run({"export", "1", "--out", dir_.Join("m.pt"), "--format", "mobile"});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("--format mobile writes a .ptl file"));
  outcome = Run({"export", "1", "--out", dir_.Join("m.pt"), "--quantize", "int8"});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("--quantize int8 applies to mobile files"));
}

TEST_F(ModelCommandsTest, CorruptMobileFileIsAnErrorNotACrash) {
  const std::string ptl = dir_.Join("bad.ptl");
  ASSERT_TRUE(WriteFileAtomically(*Env::Default(), ptl, "PK\x03\x04 not really a zip").ok());
  const CliOutcome outcome = Run({"evaluate", "--model", ptl, "--data", data_});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("bad.ptl is not a readable mobile (lite interpreter) model"));
}

void AddModelCommandsWithoutTorch(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddModelCommands(app, global, result, nullptr);
}

TEST(ModelListTest, ListsEveryArchitectureWithItsParameterCount) {
  const CliOutcome outcome =
      RunCliCommands(&AddModelCommandsWithTorch, "model", {"list", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = outcome.Json();
  ASSERT_TRUE(json.is_object()) << outcome.out;
  std::map<std::string, nlohmann::json> by_name;
  for (const nlohmann::json& m : json["models"]) by_name[m["name"].get<std::string>()] = m;
  ASSERT_EQ(by_name.size(), 7u) << outcome.out;
  // torchvision's counts (bench/torchvision_names.py) less the first conv's
  // two missing input channels and the head's 998 missing classes.
  EXPECT_EQ(by_name["resnet50"]["parameters"], 25557032 - 64 * 2 * 7 * 7 - 998 * 2049);
  EXPECT_EQ(by_name["densenet121"]["parameters"], 7978856 - 64 * 2 * 7 * 7 - 998 * 1025);
  EXPECT_EQ(by_name["mobilenet_v2"]["parameters"], 3504872 - 32 * 2 * 3 * 3 - 998 * 1281);
  // The hub's U-Net less two input channels of its first conv.
  EXPECT_EQ(by_name["unet"]["parameters"], 7763041 - 32 * 2 * 3 * 3);
  EXPECT_EQ(by_name["unet"]["task"], "segmentation");
  EXPECT_EQ(by_name["unet"]["side_multiple"], 16);
  EXPECT_EQ(by_name["resnet50"]["default_side"], 224);
  EXPECT_EQ(by_name["cnn-gn"]["dp_compatible"], true);
  EXPECT_EQ(by_name["resnet50"]["dp_compatible"], false);
  EXPECT_EQ(by_name["cnn"]["task"], "classification");
}

TEST(ModelListTest, WithoutTrainingCountsAreNull) {
  CliOutcome outcome = RunCliCommands(&AddModelCommandsWithoutTorch, "model", {"list", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = outcome.Json();
  ASSERT_TRUE(json.is_object()) << outcome.out;
  ASSERT_EQ(json["models"].size(), 7u);
  EXPECT_TRUE(json["models"][0]["parameters"].is_null());
  EXPECT_EQ(json["models"][0]["name"], "cnn");
  outcome = RunCliCommands(&AddModelCommandsWithoutTorch, "model", {"list"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("mobilenet_v2"));
  EXPECT_THAT(outcome.out, HasSubstr("needs a training build"));
}

}  // namespace
}  // namespace fedmi::cli

namespace fedmi::cli {
namespace {

// 20 phantoms of 32x32 (seed 4) in an .npz, and a small untrained U-Net
// (width 4, depth 1) that scores some foreground on them.
class ModelCommandsSegmentationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    phantoms.size = 32;
    phantoms.count = 20;
    phantoms.seed = 4;
    ASSERT_OK_AND_ASSIGN(arrays, PhantomNpz(phantoms));
    ASSERT_THAT(WriteNpz(data, arrays), IsOk());
    ml::ModelConfig config;
    config.arch = "unet";
    config.height = config.width = 32;
    config.base_width = 4;
    config.depth = 1;
    config.seed = 3;
    ASSERT_OK_AND_ASSIGN(model, ml::LocalModel::Create(config));
  }

  ScratchDir dir;
  PhantomOptions phantoms;
  std::map<std::string, NpyArray> arrays;
  const std::string data = dir.Join("phantoms.npz");
  std::unique_ptr<ml::LocalModel> model;
};

// A U-Net converted to a .ptl (what `model export --format mobile` writes
// for a run) scores and predicts exactly as its .pt: the same Dice, IoU,
// HD95 and loss, the same masks' sizes, and mask PNGs.
TEST_F(ModelCommandsSegmentationTest, MobileFileScoresAndPredictsAsItsTorchScriptFile) {
  const std::string pt = dir.Join("unet.pt");
  const std::string ptl = dir.Join("unet.ptl");
  ASSERT_THAT(model->SaveTorchScript(pt), IsOk());
  auto run = [](std::vector<std::string> args) {
    return RunCliCommands(&AddModelCommandsWithTorch, "model", std::move(args));
  };
  CliOutcome outcome = run({"convert", "--model", pt, "--out", ptl});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;

  outcome = run({"evaluate", "--model", pt, "--data", data, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json expected = nlohmann::json::parse(outcome.out);
  outcome = run({"evaluate", "--model", ptl, "--data", data, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json got = nlohmann::json::parse(outcome.out);
  EXPECT_EQ(got["task"], "segmentation");
  EXPECT_EQ(got["examples"], 3);
  // Some foreground is predicted, or equal scores would say little.
  ASSERT_GT(expected["dice"].get<double>(), 0) << expected;
  for (const char* key : {"dice", "iou", "mean_image_dice", "mean_image_iou"}) {
    EXPECT_NEAR(got[key].get<double>(), expected[key].get<double>(), 1e-9) << key;
  }
  EXPECT_EQ(got["hd95_images"], expected["hd95_images"]);
  EXPECT_EQ(got["hd95"], expected["hd95"]);
  EXPECT_NEAR(got["loss"].get<double>(), expected["loss"].get<double>(), 1e-5);

  const std::string pngs = dir.Join("pngs");
  outcome = run({"predict", "--model", pt, "--data", data, "--out", dir.Join("pt.csv")});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  outcome = run({"predict", "--model", ptl, "--data", data, "--out", dir.Join("ptl.csv"),
                 "--out-masks", pngs});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  ASSERT_OK_AND_ASSIGN(std::string pt_csv, Env::Default()->ReadFile(dir.Join("pt.csv")));
  ASSERT_OK_AND_ASSIGN(std::string ptl_csv, Env::Default()->ReadFile(dir.Join("ptl.csv")));
  EXPECT_THAT(ptl_csv, ::testing::StartsWith("index,label,foreground_pixels\n"));
  EXPECT_EQ(ptl_csv, pt_csv);
  for (const char* file : {"/0_mask.png", "/0_overlay.png", "/2_mask.png", "/2_overlay.png"}) {
    EXPECT_TRUE(std::filesystem::exists(pngs + file)) << file;
  }
}

// `fedmi model evaluate` on a segmentation model: Dice, IoU and HD95 on
// the split's masks, the same as scoring the model's own predictions.
TEST_F(ModelCommandsSegmentationTest, EvaluateScoresAUNetOnTheSplitsMasks) {
  const std::string path = dir.Join("unet.pt");
  ASSERT_THAT(model->SaveTorchScript(path), IsOk());

  PhantomOptions test_rows = phantoms;
  ASSERT_OK_AND_ASSIGN(ImageSet test, GeneratePhantoms(test_rows, 17, 3));  // rows 17..19
  ASSERT_OK_AND_ASSIGN(ml::Predictions predicted, model->Predict(test));
  SegmentationCounts expected;
  for (int64_t i = 0; i < test.size(); ++i) {
    expected.AddImage(predicted.masks.data() + i * 32 * 32, test.masks.data() + i * 32 * 32, 32,
                      32);
  }

  CliOutcome outcome =
      RunCliCommands(&AddModelCommandsWithTorch, "model",
                     {"evaluate", "--model", path, "--data", data, "--split", "test", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = nlohmann::json::parse(outcome.out);
  EXPECT_EQ(json["task"], "segmentation");
  EXPECT_EQ(json["examples"], 3);
  ASSERT_TRUE(json["dice"].is_number()) << outcome.out;
  EXPECT_DOUBLE_EQ(json["dice"].get<double>(), expected.PooledDice());
  EXPECT_DOUBLE_EQ(json["iou"].get<double>(), expected.PooledIou());
  EXPECT_DOUBLE_EQ(json["mean_image_dice"].get<double>(), expected.MeanDice());
  EXPECT_EQ(json["hd95_images"], expected.hausdorff95_images);
  if (expected.hausdorff95_images > 0) {
    EXPECT_DOUBLE_EQ(json["hd95"].get<double>(), expected.MeanHausdorff95());
  }

  outcome = RunCliCommands(&AddModelCommandsWithTorch, "model",
                           {"evaluate", "--model", path, "--data", data, "--split", "test"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("dice (pooled)"));
  EXPECT_THAT(outcome.out, HasSubstr("hd95"));

  // Data without masks cannot score it.
  std::map<std::string, NpyArray> unmasked = arrays;
  for (const char* split : {"train", "val", "test"}) unmasked.erase(std::string(split) + "_masks");
  ASSERT_THAT(WriteNpz(dir.Join("unmasked.npz"), unmasked), IsOk());
  outcome = RunCliCommands(&AddModelCommandsWithTorch, "model",
                           {"evaluate", "--model", path, "--data", dir.Join("unmasked.npz")});
  EXPECT_NE(outcome.exit_code, 0);
  EXPECT_THAT(outcome.err, HasSubstr("mask"));

  // Predicting needs no masks: each image's foreground size in the CSV,
  // and its mask and overlay as PNGs.
  const std::string csv = dir.Join("masks.csv");
  const std::string pngs = dir.Join("pngs");
  outcome = RunCliCommands(&AddModelCommandsWithTorch, "model",
                           {"predict", "--model", path, "--data", dir.Join("unmasked.npz"), "--out",
                            csv, "--out-masks", pngs});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  ASSERT_OK_AND_ASSIGN(std::string text, Env::Default()->ReadFile(csv));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "index,label,foreground_pixels");
  const int64_t first_foreground =
      std::count(predicted.masks.begin(), predicted.masks.begin() + 32 * 32, 1);
  EXPECT_EQ(lines[1], absl::StrCat("0,", test.labels[0], ",", first_foreground));
  for (const char* file : {"/0_mask.png", "/0_overlay.png", "/2_mask.png", "/2_overlay.png"}) {
    EXPECT_TRUE(std::filesystem::exists(pngs + file)) << file;
  }
}

}  // namespace
}  // namespace fedmi::cli
