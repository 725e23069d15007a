#include "client/ml/local_model.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/client/ml/user_modules.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<LocalModel> MustCreate(const ModelConfig& config) {
  auto model = LocalModel::Create(config);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

TensorBundle MustExport(const LocalModel& model) {
  auto bundle = model.ExportWeights();
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return bundle.ok() ? *bundle : TensorBundle{};
}

std::vector<std::string> Names(const TensorBundle& bundle) {
  std::vector<std::string> names;
  for (const auto& spec : bundle.specs) names.push_back(spec.name);
  return names;
}

double Accuracy(const Predictions& predictions, const ImageSet& data) {
  int64_t correct = 0;
  for (int64_t i = 0; i < data.size(); ++i) correct += predictions.predicted[i] == data.labels[i];
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

class LocalModelTest : public ::testing::Test {
 protected:
  // One thread: the tests share small CI machines and stay deterministic.
  static void SetUpTestSuite() { SetThreads(1); }

  std::string TempPath(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("fedmi_local_model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    dirs_.push_back(dir);
    return (dir / name).string();
  }
  void TearDown() override {
    for (const auto& dir : dirs_) std::filesystem::remove_all(dir);
  }

  std::vector<std::filesystem::path> dirs_;
};

TEST_F(LocalModelTest, ListsArchitecturesAndDevice) {
  EXPECT_THAT(ListArchitectures(), ElementsAre("cnn", "cnn-gn", "resnet18", "densenet121",
                                               "resnet50", "mobilenet_v2", "unet"));
  EXPECT_THAT(DefaultDevice(), ::testing::AnyOf("cpu", "cuda"));
}

TEST_F(LocalModelTest, UnknownArchitectureIsInvalidArgumentListingKnownOnes) {
  ModelConfig config;
  config.arch = "vgg";
  EXPECT_THAT(LocalModel::Create(config).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("'vgg'"), HasSubstr("cnn, cnn-gn, resnet18"))));
}

TEST_F(LocalModelTest, RejectsConfigWithOneClass) {
  ModelConfig config;
  config.num_classes = 1;
  EXPECT_THAT(LocalModel::Create(config).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
}

TEST_F(LocalModelTest, InitialWeightsArePureFunctionOfSeed) {
  ModelConfig config;
  config.seed = 7;
  auto a = MustCreate(config);
  auto b = MustCreate(config);
  config.seed = 8;
  auto c = MustCreate(config);
  const TensorBundle wa = MustExport(*a), wb = MustExport(*b), wc = MustExport(*c);
  EXPECT_EQ(wa.specs, wb.specs);
  EXPECT_EQ(wa.body, wb.body);
  EXPECT_EQ(wa.specs, wc.specs);
  EXPECT_NE(wa.body, wc.body);
}

TEST_F(LocalModelTest, ExportsFloat32ParametersThenBuffersWithDottedNames) {
  auto model = MustCreate(ModelConfig{});
  const TensorBundle weights = MustExport(*model);
  ASSERT_FALSE(weights.specs.empty());
  EXPECT_EQ(weights.specs.front().name, "conv1.weight");
  EXPECT_EQ(weights.body.size(), weights.ExpectedBodyBytes());
  for (const auto& spec : weights.specs) EXPECT_EQ(spec.dtype, DType::kFloat32) << spec.name;
  const int fc2 = weights.IndexOf("fc2.weight");
  ASSERT_GE(fc2, 0);
  EXPECT_EQ(weights.specs[fc2].shape, (std::vector<int64_t>{2, 128}));
  // Buffers (if the architecture has any) come after every parameter.
  const auto names = Names(weights);
  auto first_buffer = std::find_if(names.begin(), names.end(), [](const std::string& name) {
    return name.find("running_") != std::string::npos;
  });
  for (auto it = first_buffer; it != names.end(); ++it) {
    EXPECT_THAT(*it, HasSubstr("running_"));
  }
}

TEST_F(LocalModelTest, ImportThenExportRoundTrips) {
  ModelConfig config;
  config.seed = 1;
  auto source = MustCreate(config);
  config.seed = 2;
  auto target = MustCreate(config);
  const TensorBundle weights = MustExport(*source);
  ASSERT_TRUE(target->ImportWeights(weights).ok());
  EXPECT_EQ(MustExport(*target).body, weights.body);
}

TEST_F(LocalModelTest, ImportRejectsMismatchedBundleNamingTheTensor) {
  ModelConfig three_classes;
  three_classes.num_classes = 3;
  auto other = MustCreate(three_classes);
  auto model = MustCreate(ModelConfig{});
  const TensorBundle before = MustExport(*model);

  EXPECT_THAT(model->ImportWeights(MustExport(*other)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'fc2.weight' has shape [3,128], expected [2,128]")));

  TensorBundle renamed = before;
  renamed.specs[0].name = "stem.weight";
  EXPECT_THAT(model->ImportWeights(renamed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'stem.weight'")));

  TensorBundle truncated = before;
  truncated.body.resize(truncated.body.size() - 4);
  EXPECT_THAT(model->ImportWeights(truncated),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bytes")));

  TensorBundle missing = before;
  missing.specs.pop_back();
  EXPECT_THAT(model->ImportWeights(missing),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensors, expected")));

  // A rejected import leaves the weights as they were.
  EXPECT_EQ(MustExport(*model).body, before.body);
}

TEST_F(LocalModelTest, TrainingLearnsSyntheticTask) {
  const ImageSet train = MakeSquares(200, 28, 1);
  const ImageSet test = MakeSquares(100, 28, 2);
  auto model = MustCreate(ModelConfig{});
  TrainOptions options;
  options.epochs = 4;
  options.batch_size = 32;
  options.seed = 3;
  int calls = 0;
  int64_t last_seen = 0;
  options.progress = [&](int /*epoch*/, int64_t seen, int64_t total, double loss) {
    ++calls;
    last_seen = seen;
    EXPECT_EQ(total, 200);
    EXPECT_GE(loss, 0);
  };
  auto summary = model->Train(train, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->examples, 200);
  EXPECT_EQ(calls, 4 * 7);  // ceil(200 / 32) batches per epoch
  EXPECT_EQ(last_seen, 200);
  EXPECT_GT(summary->accuracy, 0.8);

  auto predictions = model->Predict(test);
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  ASSERT_EQ(predictions->prob_positive.size(), 100u);
  ASSERT_EQ(predictions->predicted.size(), 100u);
  EXPECT_THAT(predictions->prob_positive,
              Each(::testing::AllOf(::testing::Ge(0.0f), ::testing::Le(1.0f))));
  EXPECT_GT(Accuracy(*predictions, test), 0.9);
  EXPECT_LT(predictions->loss, 0.4);
  for (int64_t i = 0; i < test.size(); ++i) {
    EXPECT_EQ(predictions->predicted[i], predictions->prob_positive[i] >= 0.5f ? 1 : 0);
  }
}

TEST_F(LocalModelTest, SgdAlsoTrains) {
  const ImageSet train = MakeSquares(200, 28, 1);
  auto model = MustCreate(ModelConfig{});
  TrainOptions options;
  options.epochs = 3;
  options.batch_size = 32;
  options.optimizer = "sgd";
  options.lr = 0.02;
  auto summary = model->Train(train, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto predictions = model->Predict(MakeSquares(100, 28, 2));
  ASSERT_TRUE(predictions.ok());
  EXPECT_GT(Accuracy(*predictions, MakeSquares(100, 28, 2)), 0.9);
}

TEST_F(LocalModelTest, TrainingIsReproducibleForSeeds) {
  const ImageSet train = MakeSquares(100, 28, 1);
  TrainOptions options;
  options.batch_size = 25;
  options.seed = 11;
  auto a = MustCreate(ModelConfig{});
  auto b = MustCreate(ModelConfig{});
  ASSERT_TRUE(a->Train(train, options).ok());
  ASSERT_TRUE(b->Train(train, options).ok());
  EXPECT_EQ(MustExport(*a).body, MustExport(*b).body);
}

// Sum of squared parameters (running statistics left out).
double SquaredNorm(const TensorBundle& bundle) {
  double sum = 0;
  const float* values = reinterpret_cast<const float*>(bundle.body.data());
  for (const auto& spec : bundle.specs) {
    const int64_t count = spec.NumElements();
    if (spec.name.find("running_") == std::string::npos) {
      for (int64_t i = 0; i < count; ++i) sum += static_cast<double>(values[i]) * values[i];
    }
    values += count;
  }
  return sum;
}

TEST_F(LocalModelTest, AugmentationOptionsReachTrainingAndStayReproducible) {
  const ImageSet train = MakeSquares(64, 28, 1);
  auto weights_after = [&](const AugmentationOptions& augmentation) {
    auto model = MustCreate(ModelConfig{});
    TrainOptions options;
    options.batch_size = 16;
    options.seed = 4;
    options.augmentation = augmentation;
    EXPECT_TRUE(model->Train(train, options).ok());
    return MustExport(*model).body;
  };
  AugmentationOptions all;
  all.crop_min_scale = 0.8;
  all.crop_max_aspect = 4.0 / 3;
  all.max_rotation_degrees = 10;
  all.horizontal_flip = true;
  all.brightness = 0.1;
  all.contrast = 0.1;
  AugmentationOptions none;
  none.max_shift = 0;
  EXPECT_EQ(weights_after(all), weights_after(all));
  EXPECT_NE(weights_after(all), weights_after(AugmentationOptions{}));
  EXPECT_NE(weights_after(none), weights_after(AugmentationOptions{}));
}

TEST_F(LocalModelTest, WeightDecayShrinksTheWeights) {
  const ImageSet train = MakeSquares(100, 28, 1);
  for (const char* optimizer : {"adam", "sgd"}) {
    auto norm_after = [&](double weight_decay) {
      auto model = MustCreate(ModelConfig{});
      TrainOptions options;
      options.batch_size = 25;
      options.optimizer = optimizer;
      options.lr = 0.01;
      options.weight_decay = weight_decay;
      EXPECT_TRUE(model->Train(train, options).ok());
      return SquaredNorm(MustExport(*model));
    };
    // Four steps shrink by about (1 - lr * wd)^4 = 0.81 (squared: 0.66);
    // SGD's momentum compounds the decay to about 0.61 (squared: 0.37).
    const double plain = norm_after(0), decayed = norm_after(5);
    EXPECT_LT(decayed, 0.8 * plain) << optimizer;
    EXPECT_GT(decayed, 0.2 * plain) << optimizer;
  }
}

TEST_F(LocalModelTest, SaveThenLoadGivesSamePredictionsAndConfig) {
  ModelConfig config;
  config.seed = 0xFEDCBA9876543210ULL;  // above INT64_MAX: must round-trip
  auto model = MustCreate(config);
  TrainOptions options;
  options.batch_size = 50;
  ASSERT_TRUE(model->Train(MakeSquares(100, 28, 1), options).ok());
  const std::string path = TempPath("model.pt");
  ASSERT_TRUE(model->SaveTorchScript(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));

  auto loaded = LocalModel::LoadTorchScript(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ModelConfig& got = (*loaded)->config();
  EXPECT_EQ(got.arch, "cnn");
  EXPECT_EQ(got.num_classes, 2);
  EXPECT_EQ(got.channels, 1);
  EXPECT_EQ(got.height, 28);
  EXPECT_EQ(got.width, 28);
  EXPECT_EQ(got.seed, config.seed);
  EXPECT_EQ(MustExport(**loaded).specs, MustExport(*model).specs);
  EXPECT_EQ(MustExport(**loaded).body, MustExport(*model).body);

  const ImageSet test = MakeSquares(50, 28, 5);
  auto expected = model->Predict(test);
  auto actual = (*loaded)->Predict(test);
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_EQ(actual->prob_positive, expected->prob_positive);
  EXPECT_EQ(actual->predicted, expected->predicted);

  // The loaded model keeps training.
  EXPECT_TRUE((*loaded)->Train(MakeSquares(50, 28, 6), options).ok());
}

TEST_F(LocalModelTest, LoadReportsMissingAndCorruptFiles) {
  EXPECT_THAT(LocalModel::LoadTorchScript(TempPath("absent.pt")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.pt")));
  const std::string path = TempPath("garbage.pt");
  std::ofstream(path) << "not a model";
  EXPECT_THAT(LocalModel::LoadTorchScript(path).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("garbage.pt")));
}

TEST_F(LocalModelTest, SaveIntoMissingDirectoryFails) {
  auto model = MustCreate(ModelConfig{});
  const absl::Status status = model->SaveTorchScript("/nonexistent-dir/fedmi/model.pt");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent-dir/fedmi")));
}

TEST_F(LocalModelTest, RejectsBadInputs) {
  auto model = MustCreate(ModelConfig{});
  TrainOptions options;

  EXPECT_THAT(model->Train(ImageSet{28, 28, 1, {}, {}}, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(model->Predict(MakeSquares(4, 16, 1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("images are 16x16x1 (HxWxC) but the model expects 28x28x1")));

  ImageSet bad_label = MakeSquares(4, 28, 1);
  bad_label.labels[2] = 2;
  EXPECT_THAT(model->Train(bad_label, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 2 of example 2")));

  ImageSet short_pixels = MakeSquares(4, 28, 1);
  short_pixels.pixels.pop_back();
  EXPECT_THAT(model->Predict(short_pixels).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pixel bytes")));

  options.optimizer = "rmsprop";
  EXPECT_THAT(
      model->Train(MakeSquares(4, 28, 1), options).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown optimizer 'rmsprop'")));
  options.optimizer = "adam";
  options.batch_size = 0;
  EXPECT_THAT(model->Train(MakeSquares(4, 28, 1), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  options.batch_size = 64;
  options.weight_decay = -0.1;
  EXPECT_THAT(model->Train(MakeSquares(4, 28, 1), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight_decay")));
  options.weight_decay = 0;
  options.augmentation.brightness = 2;
  EXPECT_THAT(model->Train(MakeSquares(4, 28, 1), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("brightness")));
  options.augmentation.brightness = 0;
  options.augmentation.max_shift = 30;
  EXPECT_THAT(model->Train(MakeSquares(4, 28, 1), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("below the image's sides")));
}

TEST_F(LocalModelTest, ResNet18CreatesAndTakesATrainingStep) {
  ModelConfig config;
  config.arch = "resnet18";
  config.height = 16;
  config.width = 16;
  auto model = MustCreate(config);
  const TensorBundle before = MustExport(*model);
  const auto names = Names(before);
  EXPECT_EQ(names.front(), "conv1.weight");
  EXPECT_THAT(names, Contains("layer2.0.downsample.0.weight"));
  EXPECT_THAT(names, Not(Contains("layer1.0.downsample.0.weight")));
  EXPECT_EQ(names.back(), "layer4.1.bn2.running_var");
  const int fc = before.IndexOf("fc.weight");
  ASSERT_GE(fc, 0);
  EXPECT_EQ(before.specs[fc].shape, (std::vector<int64_t>{2, 512}));
  int64_t parameters = 0;
  for (const auto& spec : before.specs) {
    if (spec.name.find("running_") == std::string::npos) parameters += spec.NumElements();
  }
  EXPECT_EQ(parameters, 11168706);  // torchvision resnet18 less its 7x7 RGB stem and 1000-way fc,
                                    // plus a 3x3 gray stem and 2-way fc

  TrainOptions options;
  options.batch_size = 8;
  auto summary = model->Train(MakeSquares(8, 16, 1), options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_NE(MustExport(*model).body, before.body);
  auto predictions = model->Predict(MakeSquares(4, 16, 2));
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  EXPECT_EQ(predictions->prob_positive.size(), 4u);
}

}  // namespace
}  // namespace fedmi::ml

namespace fedmi::ml {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ModelConfig UserConfig() {
  ModelConfig config;
  config.arch = "custom";
  config.num_classes = 2;
  config.channels = 1;
  config.height = config.width = 16;
  return config;
}

class UserModuleTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.Join(name); }
  ScratchDir dir_;
};

TEST_F(UserModuleTest, AUserModuleTrainsAndExportsItsFloatTensorsByDottedName) {
  ASSERT_THAT(user_modules::WriteUserClassifier(Path("net.pt"), 1, 2, 7), IsOk());
  ASSERT_OK_AND_ASSIGN(auto model,
                       LocalModel::LoadUserModule(ReadAll(Path("net.pt")), UserConfig(), false));
  ASSERT_OK_AND_ASSIGN(TensorBundle before, model->ExportWeights());
  std::vector<std::string> names;
  for (const TensorSpec& spec : before.specs) names.push_back(spec.name);
  // num_batches_tracked is int64: no weight, it stays local.
  EXPECT_THAT(names, ElementsAre("features.weight", "features.bias", "features.norm.weight",
                                 "features.norm.bias", "head.weight", "head.bias",
                                 "features.norm.running_mean", "features.norm.running_var"));
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = 16;
  options.augmentation.max_shift = 0;
  options.frozen_prefixes = {"features."};
  ASSERT_THAT(model->Train(MakeSquares(64, 16, 3), options), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle after, model->ExportWeights());
  // The frozen convolution and its affine BatchNorm did not move; the head
  // did (the running statistics are buffers, updated by any forward pass).
  for (const char* frozen : {"features.weight", "features.bias", "features.norm.weight"}) {
    const int i = before.IndexOf(frozen);
    EXPECT_EQ(0, std::memcmp(before.body.data() + before.OffsetOf(i),
                             after.body.data() + after.OffsetOf(i), before.specs[i].ByteSize()))
        << frozen;
  }
  const int head = before.IndexOf("head.weight");
  EXPECT_NE(0,
            std::memcmp(before.body.data() + before.OffsetOf(head),
                        after.body.data() + after.OffsetOf(head), before.specs[head].ByteSize()));
  // Unfrozen again for the next call: training everything moves the conv.
  options.frozen_prefixes.clear();
  ASSERT_THAT(model->Train(MakeSquares(64, 16, 4), options), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle unfrozen, model->ExportWeights());
  EXPECT_NE(0, std::memcmp(after.body.data(), unfrozen.body.data(), before.specs[0].ByteSize()));

  ASSERT_OK_AND_ASSIGN(TensorBundle read, ReadTorchScriptWeights(Path("net.pt")));
  EXPECT_EQ(read.specs, before.specs);
  EXPECT_EQ(read.body, before.body);
}

TEST_F(UserModuleTest, AModuleWhoseOutputDoesNotFitTheRunIsRefusedBeforeTraining) {
  ASSERT_THAT(user_modules::WriteUserClassifier(Path("three.pt"), 1, 3, 7), IsOk());
  EXPECT_THAT(
      LocalModel::LoadUserModule(ReadAll(Path("three.pt")), UserConfig(), false),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("returns shape [2,3]"), HasSubstr("needs logits of shape [2,2]"))));
  EXPECT_THAT(LocalModel::LoadUserModule(ReadAll(Path("three.pt")), UserConfig(), true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[2,1,16,16]")));
  ASSERT_THAT(user_modules::WriteUserClassifier(Path("rgb.pt"), 3, 2, 7), IsOk());
  EXPECT_THAT(LocalModel::LoadUserModule(ReadAll(Path("rgb.pt")), UserConfig(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("forward fails on")));
  ASSERT_THAT(user_modules::WriteUserModuleReturningTuple(Path("tuple.pt")), IsOk());
  EXPECT_THAT(LocalModel::LoadUserModule(ReadAll(Path("tuple.pt")), UserConfig(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a tensor")));
  EXPECT_THAT(LocalModel::LoadUserModule("not a zip", UserConfig(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a readable")));
}

}  // namespace
}  // namespace fedmi::ml
