#include "client/ml/mobile_model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "client/ml/local_model.h"
#include "common/runspec/model_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& status = arg;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

double MaxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double max = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    max = std::max(max, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return max;
}

class MobileModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetThreads(1); }

  std::string TempPath(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("fedmi_mobile_model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    dirs_.push_back(dir);
    return (dir / name).string();
  }
  void TearDown() override {
    for (const auto& dir : dirs_) std::filesystem::remove_all(dir);
  }

  // A cnn trained for two epochs, so its probabilities spread over (0, 1).
  std::unique_ptr<LocalModel> TrainedCnn() {
    ModelConfig config;
    config.seed = 3;
    auto model = LocalModel::Create(config);
    EXPECT_TRUE(model.ok()) << model.status();
    TrainOptions options;
    options.epochs = 2;
    options.batch_size = 50;
    EXPECT_TRUE((*model)->Train(MakeSquares(200, 28, 1), options).ok());
    return std::move(*model);
  }

  std::vector<std::filesystem::path> dirs_;
};

// Every built-in architecture: the frozen lite-interpreter file predicts as
// the live model (and so as its .pt) does; a segmentation model's, the same
// masks.
TEST_F(MobileModelTest, FloatFilePredictsAsTheModelForEveryArchitecture) {
  for (const std::string& arch : ListArchitectures()) {
    SCOPED_TRACE(arch);
    const ModelInfo* info = FindModelInfo(arch);
    ASSERT_NE(info, nullptr);
    // The smallest side at least 28 that the architecture takes.
    int64_t side = std::max<int64_t>(28, info->min_side);
    side = (side + info->side_multiple - 1) / info->side_multiple * info->side_multiple;
    const ImageSet test = MakeSquares(16, side, 5);
    ModelConfig config;
    config.arch = arch;
    config.seed = 11;
    config.height = config.width = side;
    auto model = LocalModel::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    auto expected = (*model)->Predict(test);
    ASSERT_TRUE(expected.ok()) << expected.status();

    const std::string path = TempPath(arch + ".ptl");
    ASSERT_TRUE((*model)->SaveForMobile(path).ok());
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
    auto mobile = MobileModel::Load(path);
    ASSERT_TRUE(mobile.ok()) << mobile.status();
    EXPECT_EQ((*mobile)->config().arch, arch);
    EXPECT_EQ((*mobile)->is_segmentation(), info->task == ModelTask::kSegmentation);
    auto got = (*mobile)->Predict(test);
    ASSERT_TRUE(got.ok()) << got.status();
    if ((*mobile)->is_segmentation()) {
      ASSERT_EQ(got->masks.size(), static_cast<size_t>(test.size() * side * side));
      EXPECT_EQ(got->masks, expected->masks);
      continue;
    }
    EXPECT_LE(MaxAbsDifference(got->prob_positive, expected->prob_positive), 1e-5);
    EXPECT_EQ(got->predicted, expected->predicted);
    EXPECT_NEAR(got->loss, expected->loss, 1e-5);
  }
}

// The .pt written by SaveTorchScript and the .ptl of the same model agree.
TEST_F(MobileModelTest, MobileFileMatchesTorchScriptFile) {
  auto model = TrainedCnn();
  const std::string pt = TempPath("model.pt");
  const std::string ptl = TempPath("model.ptl");
  ASSERT_TRUE(model->SaveTorchScript(pt).ok());
  ASSERT_TRUE(model->SaveForMobile(ptl).ok());
  auto full = LocalModel::LoadTorchScript(pt);
  ASSERT_TRUE(full.ok()) << full.status();
  auto mobile = MobileModel::Load(ptl);
  ASSERT_TRUE(mobile.ok()) << mobile.status();
  const ImageSet test = MakeSquares(40, 28, 9);
  auto expected = (*full)->Predict(test);
  auto got = (*mobile)->Predict(test);
  ASSERT_TRUE(expected.ok() && got.ok());
  EXPECT_LE(MaxAbsDifference(got->prob_positive, expected->prob_positive), 1e-5);
  // Saving froze a copy: the live model still trains and predicts as before.
  auto again = model->Predict(test);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->prob_positive, expected->prob_positive);
  TrainOptions options;
  options.batch_size = 20;
  EXPECT_TRUE(model->Train(MakeSquares(40, 28, 2), options).ok());
}

TEST_F(MobileModelTest, MetadataAndConfigRoundTrip) {
  ModelConfig config;
  config.arch = "cnn";
  config.height = config.width = 32;
  auto model = LocalModel::Create(config);
  ASSERT_TRUE(model.ok());
  const std::string path = TempPath("meta.ptl");
  ASSERT_TRUE((*model)
                  ->SaveForMobile(path, {{"operating_threshold", "0.31"},
                                         {"operating_threshold_method", "youden"},
                                         {"dp_epsilon", "2.5"}})
                  .ok());
  auto mobile = MobileModel::Load(path);
  ASSERT_TRUE(mobile.ok()) << mobile.status();
  const std::map<std::string, std::string>& metadata = (*mobile)->metadata();
  EXPECT_EQ(metadata.at("operating_threshold"), "0.31");
  EXPECT_EQ(metadata.at("operating_threshold_method"), "youden");
  EXPECT_EQ(metadata.at("dp_epsilon"), "2.5");
  EXPECT_EQ(metadata.at("arch"), "cnn");
  EXPECT_EQ(metadata.at("quantization"), "none");
  // Only forward is kept: no layers an explanation could look at.
  EXPECT_EQ(metadata.count("explain_layers"), 0u);
  EXPECT_EQ((*mobile)->config().height, 32);
  EXPECT_EQ((*mobile)->config().width, 32);
  EXPECT_EQ((*mobile)->config().channels, 1);
  EXPECT_EQ((*mobile)->config().num_classes, 2);
  EXPECT_THAT((*mobile)->Predict(MakeSquares(2, 28, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model expects 32x32x1")));
}

// Dynamic int8 linear layers: the cnn's two linear layers hold 75% of its
// weights, so the file shrinks to well under 60% of the float one.
// Per-channel int8 weights are within half a step (max |w| / 254) of the
// float ones, and the 7-bit dynamic activations within max |x| / 254, so
// each layer's output moves by well under 1% of its range; through two
// layers and a softmax that moves a probability by at most a few
// hundredths. 0.05 leaves room for that; 1e-5 (float) would fail.
TEST_F(MobileModelTest, QuantizedFileIsSmallerAndPredictsClose) {
  ASSERT_THAT(SupportedQuantizedEngines(), Not(IsEmpty()));
  auto model = TrainedCnn();
  const std::string float_path = TempPath("float.ptl");
  const std::string int8_path = TempPath("int8.ptl");
  ASSERT_TRUE(model->SaveForMobile(float_path).ok());
  ASSERT_TRUE(model->SaveForMobile(int8_path, {}, MobileQuantization::kDynamicInt8).ok());
  const auto float_bytes = std::filesystem::file_size(float_path);
  const auto int8_bytes = std::filesystem::file_size(int8_path);
  EXPECT_LT(int8_bytes, float_bytes * 6 / 10) << float_bytes << " -> " << int8_bytes;

  auto mobile = MobileModel::Load(int8_path);
  ASSERT_TRUE(mobile.ok()) << mobile.status();
  EXPECT_EQ((*mobile)->metadata().at("quantization"), "dynamic_int8");
  EXPECT_EQ((*mobile)->metadata().at("quantized_linear_layers"), "2");
  const ImageSet test = MakeSquares(100, 28, 9);
  auto expected = model->Predict(test);
  auto got = (*mobile)->Predict(test);
  ASSERT_TRUE(expected.ok() && got.ok()) << got.status();
  const double difference = MaxAbsDifference(got->prob_positive, expected->prob_positive);
  EXPECT_LE(difference, 0.05);
  // Really quantized: the int8 file does not predict bit for bit as float.
  EXPECT_GT(difference, 0);
}

TEST_F(MobileModelTest, CorruptOrForeignFilesAreRefusedWithAReason) {
  EXPECT_THAT(MobileModel::Load(TempPath("missing.ptl")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.ptl")));

  const std::string garbage = TempPath("garbage.ptl");
  std::ofstream(garbage) << "this is not a zip archive";
  EXPECT_THAT(MobileModel::Load(garbage).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is not a readable mobile (lite interpreter) model")));

  auto model = LocalModel::Create(ModelConfig{});
  ASSERT_TRUE(model.ok());
  const std::string good = TempPath("good.ptl");
  ASSERT_TRUE((*model)->SaveForMobile(good).ok());
  const std::string truncated = TempPath("truncated.ptl");
  std::filesystem::copy_file(good, truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(good) / 2);
  EXPECT_THAT(MobileModel::Load(truncated).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated.ptl")));

  // A full TorchScript archive has no lite-interpreter bytecode.
  const std::string pt = TempPath("model.pt");
  ASSERT_TRUE((*model)->SaveTorchScript(pt).ok());
  EXPECT_THAT(MobileModel::Load(pt).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.pt")));
}

TEST_F(MobileModelTest, SaveIntoMissingDirectoryFails) {
  auto model = LocalModel::Create(ModelConfig{});
  ASSERT_TRUE(model.ok());
  EXPECT_THAT((*model)->SaveForMobile("/nonexistent-dir/fedmi/model.ptl"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent-dir/fedmi")));
}

}  // namespace
}  // namespace fedmi::ml
