// The torchvision-style architectures (client/ml/architectures_imagenet.cc):
// tensor names and shapes against lists that bench/torchvision_names.py
// wrote from torchvision 0.14 and the torch.hub U-Net (checked in, so this
// test needs no Python), and that each builds, runs, explains and trains.
#include <torch/script.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/ml/architectures.h"
#include "client/ml/local_model.h"
#include "common/runspec/model_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

// "name AxBxC" per tensor, parameters then buffers, from the checked-in list
// (dropping its param/buffer column: wire order already puts them so).
std::vector<std::string> ReferenceList(const std::string& arch) {
  const char* source = std::getenv("FEDMI_SOURCE_DIR");
  const std::string path = absl::StrCat(source != nullptr ? source : ".",
                                        "/tests/client/ml/testdata/torchvision_", arch, ".txt");
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  std::string kind, name, shape;
  while (in >> kind >> name >> shape) lines.push_back(name + " " + shape);
  return lines;
}

std::vector<std::string> OurList(const ModelConfig& config) {
  auto model = LocalModel::Create(config);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto weights = (*model)->ExportWeights();
  EXPECT_TRUE(weights.ok()) << weights.status();
  std::vector<std::string> lines;
  for (const TensorSpec& spec : weights->specs) {
    lines.push_back(absl::StrCat(spec.name, " ", absl::StrJoin(spec.shape, "x")));
  }
  return lines;
}

ModelConfig ImageNetConfig(const std::string& arch) {
  ModelConfig config;
  config.arch = arch;
  config.channels = 3;
  config.num_classes = arch == kUNetModel ? 2 : 1000;
  config.height = config.width = 224;
  config.seed = 1;
  return config;
}

class TorchvisionNamesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionNamesTest, NamesAndShapesAreTorchvisionsInOrder) {
  const std::vector<std::string> reference = ReferenceList(GetParam());
  ASSERT_GT(reference.size(), 50u);
  const std::vector<std::string> ours = OurList(ImageNetConfig(GetParam()));
  ASSERT_EQ(ours.size(), reference.size());
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_EQ(ours[i], reference[i]) << "tensor " << i;
}

// A batch of `n` images of `side` x `side` gray noise, labels alternating.
ImageSet Noise(int64_t n, int64_t side, int64_t channels) {
  ImageSet set;
  set.height = set.width = side;
  set.channels = channels;
  for (int64_t i = 0; i < n * side * side * channels; ++i) {
    set.pixels.push_back(static_cast<uint8_t>((i * 37) % 251));
  }
  for (int64_t i = 0; i < n; ++i) set.labels.push_back(i % 2);
  return set;
}

TEST_P(TorchvisionNamesTest, RunsAtItsSmallestSizeAndExplainsItsLastBlock) {
  const ModelInfo* info = FindModelInfo(GetParam());
  ASSERT_NE(info, nullptr);
  ModelConfig config;
  config.arch = GetParam();
  config.channels = 2;
  config.num_classes = 3;
  config.height = config.width = info->min_side;
  auto model = LocalModel::Create(config);
  ASSERT_TRUE(model.ok()) << model.status();
  ScratchDir dir;
  const std::string path = dir.Join("m.pt");
  ASSERT_TRUE((*model)->SaveTorchScript(path).ok());

  torch::jit::Module module = torch::jit::load(path);
  module.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({2, 2, info->min_side, info->min_side});
  const torch::Tensor y = module.forward({x}).toTensor();
  if (info->task == ModelTask::kSegmentation) {
    EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 3, info->min_side, info->min_side}));
  } else {
    EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 3}));
  }
  const std::string layer = module.attr(kExplainLayerAttr).toStringRef();
  const std::string layers = module.attr(kExplainLayersAttr).toStringRef();
  EXPECT_THAT(layers, HasSubstr(layer));
  auto explained = module.get_method(kForwardWithFeatureMethod)({x, layer}).toTuple()->elements();
  EXPECT_TRUE(torch::allclose(explained[0].toTensor(), y));
  const torch::Tensor feature = explained[1].toTensor();
  ASSERT_EQ(feature.dim(), 4);
  EXPECT_EQ(feature.size(0), 2);
  EXPECT_GT(feature.size(1), 1);
  // BatchNorm everywhere: no per-example (DP-SGD) methods.
  EXPECT_FALSE(module.find_method(kForwardWithActivationsMethod).has_value());
  EXPECT_FALSE(module.find_method(kPerExampleForwardMethod).has_value());
}

INSTANTIATE_TEST_SUITE_P(Architectures, TorchvisionNamesTest,
                         ::testing::Values("densenet121", "resnet50", "mobilenet_v2", "unet"));

TEST(ImageNetArchitecturesTest, DefaultExplainLayers) {
  const std::pair<const char*, const char*> expected[] = {{"densenet121", "features.norm5"},
                                                          {"resnet50", "layer4"},
                                                          {"mobilenet_v2", "features.18"},
                                                          {"unet", "decoder1"}};
  for (const auto& [arch, layer] : expected) {
    ModelConfig config;
    config.arch = arch;
    config.height = config.width = 32;
    auto model = LocalModel::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    auto metadata = (*model)->Metadata();
    ASSERT_TRUE(metadata.ok()) << metadata.status();
    EXPECT_EQ(metadata->at("explain_layer"), layer) << arch;
  }
}

TEST(ImageNetArchitecturesTest, ClassificationModelsTrainAStepAt64) {
  for (const char* arch : {"densenet121", "resnet50", "mobilenet_v2"}) {
    ModelConfig config;
    config.arch = arch;
    config.height = config.width = 64;
    auto model = LocalModel::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    const ImageSet data = Noise(4, 64, 1);
    auto before = (*model)->ExportWeights();
    ASSERT_TRUE(before.ok());
    TrainOptions options;
    options.batch_size = 4;
    auto summary = (*model)->Train(data, options);
    ASSERT_TRUE(summary.ok()) << arch << ": " << summary.status();
    EXPECT_TRUE(std::isfinite(summary->loss)) << arch;
    auto after = (*model)->ExportWeights();
    ASSERT_TRUE(after.ok());
    EXPECT_NE(before->body, after->body) << arch;
    auto predictions = (*model)->Predict(data);
    ASSERT_TRUE(predictions.ok()) << arch << ": " << predictions.status();
    EXPECT_EQ(predictions->prob_positive.size(), 4u);
  }
}

TEST(ImageNetArchitecturesTest, UNetNeedsMasksAndRefusesOddSides) {
  ModelConfig config;
  config.arch = "unet";
  config.height = config.width = 32;
  auto model = LocalModel::Create(config);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config().base_width, 32);
  EXPECT_EQ((*model)->config().depth, 4);
  auto trained = (*model)->Train(Noise(2, 32, 1), TrainOptions());
  EXPECT_EQ(trained.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(trained.status().message(), HasSubstr("needs masks"));
  EXPECT_THAT((*model)->Predict(Noise(2, 32, 1)), IsOk());  // masks only for a loss

  config.height = 40;  // not a multiple of 2^4
  auto odd = LocalModel::Create(config);
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(odd.status().message(), HasSubstr("divisible by 16"));
  config.depth = 3;  // 40 is a multiple of 2^3
  config.base_width = 4;
  auto shallow = LocalModel::Create(config);
  ASSERT_TRUE(shallow.ok()) << shallow.status();
  auto weights = (*shallow)->ExportWeights();
  ASSERT_TRUE(weights.ok());
  EXPECT_EQ(weights->specs.front().name, "encoder1.enc1conv1.weight");
  EXPECT_EQ(weights->specs.front().shape, (std::vector<int64_t>{4, 1, 3, 3}));

  // A saved U-Net reloads with its width and depth.
  ScratchDir dir;
  ASSERT_TRUE((*shallow)->SaveTorchScript(dir.Join("u.pt")).ok());
  auto loaded = LocalModel::LoadTorchScript(dir.Join("u.pt"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->config().base_width, 4);
  EXPECT_EQ((*loaded)->config().depth, 3);

  ModelConfig resnet;
  resnet.arch = "resnet50";
  resnet.height = resnet.width = 64;
  resnet.depth = 3;
  EXPECT_THAT(LocalModel::Create(resnet).status().message(),
              HasSubstr("no U-Net base width or depth"));
}

TEST(ImageNetArchitecturesTest, ModelsWithoutWidthAndDepthAttributesStillRead) {
  // A module as fedmi wrote it before the U-Net: no fedmi_base_width/depth.
  torch::jit::Module module{c10::QualifiedName("__torch__.fedmi.Old")};
  module.register_attribute("fedmi_arch", c10::StringType::get(), std::string("cnn"));
  for (const char* name :
       {"fedmi_num_classes", "fedmi_channels", "fedmi_height", "fedmi_width", "fedmi_seed"}) {
    module.register_attribute(name, c10::IntType::get(), int64_t{2});
  }
  ModelConfig config;
  config.depth = 7;
  ASSERT_TRUE(ReadConfigAttributes(module, &config).ok());
  EXPECT_EQ(config.arch, "cnn");
  EXPECT_EQ(config.base_width, 0);
  EXPECT_EQ(config.depth, 0);
}

}  // namespace
}  // namespace fedmi::ml
