// Grad-CAM and Grad-CAM++ on a task where the evidence has a known place: a
// CNN trained to tell a bright disc from a dim one must point at the disc
// (pointing game), its maps must change when its weights are randomised
// (Adebayo et al. 2018's sanity check), and a user's TorchScript module is
// explained through a submodule named by its path.
#include "client/ml/explain.h"

#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/ml/local_model.h"
#include "common/runspec/model_file_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kSide = 32;
constexpr int64_t kRadius = 3;
// A peak counts as a hit within the disc's radius plus one pixel of its
// centre: the maps come from a layer of stride 4, upsampled bilinearly.
constexpr double kHitDistance = kRadius + 1;

struct DiscImages {
  ImageSet images;
  std::vector<int64_t> centre_row, centre_col;
};

// `side` x `side` noise (0..60) with a disc of radius kRadius at a random
// place in every image: bright (230) in class 1, dim (110) in class 0, so
// the label is decided by the disc's brightness, nowhere else.
DiscImages MakeDiscs(int64_t n, uint32_t seed, int64_t side = kSide) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  std::uniform_int_distribution<int64_t> centre(kRadius + 1, side - kRadius - 2);
  DiscImages set;
  set.images.height = set.images.width = side;
  set.images.channels = 1;
  set.images.pixels.resize(n * side * side);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* image = set.images.pixels.data() + i * side * side;
    for (int64_t p = 0; p < side * side; ++p) image[p] = static_cast<uint8_t>(noise(rng));
    const int64_t label = i % 2;
    const int64_t row = centre(rng), col = centre(rng);
    for (int64_t r = row - kRadius; r <= row + kRadius; ++r) {
      for (int64_t c = col - kRadius; c <= col + kRadius; ++c) {
        if ((r - row) * (r - row) + (c - col) * (c - col) <= kRadius * kRadius) {
          image[r * side + c] = label == 1 ? 230 : 110;
        }
      }
    }
    set.images.labels.push_back(label);
    set.centre_row.push_back(row);
    set.centre_col.push_back(col);
  }
  return set;
}

// The share of class-1 images whose map peaks within kHitDistance of the
// disc's centre; `mirror` reflects each peak through the image's centre,
// which a test that can fail must score low.
double PointingGame(const DiscImages& set, const CamResult& cams, bool mirror = false) {
  int64_t hits = 0, positives = 0;
  for (int64_t i = 0; i < set.images.size(); ++i) {
    if (set.images.labels[i] != 1) continue;
    ++positives;
    if (!cams.images[i].peak.has_value()) continue;  // no peak: a miss
    int64_t row = cams.images[i].peak->row, col = cams.images[i].peak->col;
    if (mirror) {
      row = set.images.height - 1 - row;
      col = set.images.width - 1 - col;
    }
    hits += std::hypot(row - set.centre_row[i], col - set.centre_col[i]) <= kHitDistance;
  }
  return static_cast<double>(hits) / static_cast<double>(positives);
}

std::vector<double> Ranks(const std::vector<float>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = (i + j) / 2.0;  // ties share their mean
    i = j + 1;
  }
  return ranks;
}

double Pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double mean_a = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mean_b = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += (a[i] - mean_a) * (b[i] - mean_b);
    aa += (a[i] - mean_a) * (a[i] - mean_a);
    bb += (b[i] - mean_b) * (b[i] - mean_b);
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0;
}

double Spearman(const std::vector<float>& a, const std::vector<float>& b) {
  return Pearson(Ranks(a), Ranks(b));
}

ExplainOptions Options(CamMethod method, const std::string& layer) {
  ExplainOptions options;
  options.method = method;
  options.layer = layer;
  return options;
}

CamResult MustExplain(const std::string& path, const ImageSet& data,
                      const ExplainOptions& options) {
  auto cams = ExplainModelFile(path, data, options);
  EXPECT_THAT(cams, IsOk());
  return cams.ok() ? *std::move(cams) : CamResult{};
}

// One CNN trained once for the whole suite, saved as TorchScript.
class ExplainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    test_ = new DiscImages(MakeDiscs(200, 2));
    ModelConfig config;
    config.height = config.width = kSide;
    config.seed = 1;
    auto model = LocalModel::Create(config);
    ASSERT_THAT(model, IsOk());
    TrainOptions train;
    train.epochs = 6;
    train.batch_size = 32;
    train.augmentation.max_shift = 0;
    ASSERT_THAT((*model)->Train(MakeDiscs(1000, 1).images, train), IsOk());
    auto predictions = (*model)->Predict(test_->images);
    ASSERT_THAT(predictions, IsOk());
    int64_t correct = 0;
    for (int64_t i = 0; i < test_->images.size(); ++i) {
      correct += predictions->predicted[i] == test_->images.labels[i];
    }
    accuracy_ = static_cast<double>(correct) / static_cast<double>(test_->images.size());
    ASSERT_THAT((*model)->SaveTorchScript(scratch_->Join("trained.pt")), IsOk());
    // The same training from other initial weights: how far two models that
    // both learnt the task agree, the reference for the sanity check.
    config.seed = 2;
    auto retrained = LocalModel::Create(config);
    ASSERT_THAT(retrained, IsOk());
    ASSERT_THAT((*retrained)->Train(MakeDiscs(1000, 1).images, train), IsOk());
    ASSERT_THAT((*retrained)->SaveTorchScript(scratch_->Join("retrained.pt")), IsOk());
    config.seed = 77;  // same architecture, other initial weights, untrained
    auto random = LocalModel::Create(config);
    ASSERT_THAT(random, IsOk());
    ASSERT_THAT((*random)->SaveTorchScript(scratch_->Join("random.pt")), IsOk());
  }
  static void TearDownTestSuite() {
    delete test_;
    delete scratch_;
  }

  static ScratchDir* scratch_;
  static DiscImages* test_;
  static double accuracy_;
};

ScratchDir* ExplainTest::scratch_ = nullptr;
DiscImages* ExplainTest::test_ = nullptr;
double ExplainTest::accuracy_ = 0;

TEST_F(ExplainTest, GradCamPointsAtTheDisc) {
  std::cout << "test accuracy: " << accuracy_ << "\n";
  ASSERT_GE(accuracy_, 0.95) << "the model did not learn the task; its maps would mean nothing";
  const CamResult cams = MustExplain(scratch_->Join("trained.pt"), test_->images,
                                     Options(CamMethod::kGradCam, "block2"));
  ASSERT_EQ(cams.images.size(), test_->images.size());
  EXPECT_EQ(cams.layer, "block2");
  EXPECT_EQ(cams.feature_height, kSide / 4);
  const double hits = PointingGame(*test_, cams);
  std::cout << "pointing game, Grad-CAM at block2: " << hits << "\n";
  EXPECT_GE(hits, 0.9);
  EXPECT_LE(PointingGame(*test_, cams, /*mirror=*/true), 0.5);
  for (const ImageCam& image : cams.images) {
    ASSERT_EQ(image.heatmap.size(), static_cast<size_t>(kSide * kSide));
    EXPECT_EQ(image.target_class, 1);
    EXPECT_GE(*std::min_element(image.heatmap.begin(), image.heatmap.end()), 0);
    ASSERT_TRUE(image.peak.has_value());
    EXPECT_EQ(image.peak->value, 1);  // maps are scaled to [0, 1]
    EXPECT_EQ(image.heatmap[image.peak->row * kSide + image.peak->col], image.peak->value);
  }
}

// At 32 x 32 the cnn's last block (4 x 4, cells of 8 pixels) is too coarse
// to point with (0.63 measured); the default is the last block whose map is
// at least 7 x 7, block2 (8 x 8).
TEST_F(ExplainTest, DefaultLayerIsTheLastBlockOfAtLeast7x7) {
  const CamResult cams =
      MustExplain(scratch_->Join("trained.pt"), test_->images, Options(CamMethod::kGradCam, ""));
  EXPECT_EQ(cams.layer, "block2");
  EXPECT_EQ(cams.feature_height, kSide / 4);
  const double hits = PointingGame(*test_, cams);
  std::cout << "pointing game, Grad-CAM at the default layer: " << hits << "\n";
  EXPECT_GE(hits, 0.9);
}

// The default by input size (untrained models; only map sizes matter): the
// last block once it is 7 x 7, an earlier one below, and the largest map
// when none is 7 x 7.
TEST(ExplainDefaultLayerTest, FollowsTheInputSize) {
  ScratchDir scratch;
  for (const auto& [arch, side, layer] :
       std::vector<std::tuple<std::string, int64_t, std::string>>{{"cnn", 8, "block1"},
                                                                  {"cnn", 28, "block2"},
                                                                  {"cnn", 56, "block3"},
                                                                  {"cnn-gn", 64, "block3"},
                                                                  {"resnet18", 28, "layer3"}}) {
    SCOPED_TRACE(absl::StrCat(arch, " at ", side));
    ModelConfig config;
    config.arch = arch;
    config.height = config.width = side;
    auto model = LocalModel::Create(config);
    ASSERT_THAT(model, IsOk());
    const std::string path = scratch.Join(absl::StrCat(arch, side, ".pt"));
    ASSERT_THAT((*model)->SaveTorchScript(path), IsOk());
    auto info = DescribeExplainableModel(path);
    ASSERT_THAT(info, IsOk());
    EXPECT_EQ(info->default_layer, layer);
    ImageSet blank;
    blank.height = blank.width = side;
    blank.pixels.assign(2 * side * side, 0);
    blank.labels = {0, 1};
    EXPECT_EQ(MustExplain(path, blank, Options(CamMethod::kGradCam, "")).layer, layer);
  }
}

TEST_F(ExplainTest, GradCamPlusPlusPointsAtTheDisc) {
  const CamResult cams = MustExplain(scratch_->Join("trained.pt"), test_->images,
                                     Options(CamMethod::kGradCamPlusPlus, "block2"));
  ASSERT_EQ(cams.images.size(), test_->images.size());
  for (const ImageCam& image : cams.images) {
    ASSERT_EQ(image.heatmap.size(), static_cast<size_t>(kSide * kSide));
  }
  const double hits = PointingGame(*test_, cams);
  std::cout << "pointing game, Grad-CAM++ at block2: " << hits << "\n";
  EXPECT_GE(hits, 0.9);
}

// Adebayo et al. 2018: maps that survive randomising the weights explain
// the input, not the model.
TEST_F(ExplainTest, MapsChangeWhenWeightsAreRandomised) {
  const ExplainOptions options = Options(CamMethod::kGradCam, "block2");
  const CamResult trained = MustExplain(scratch_->Join("trained.pt"), test_->images, options);
  const CamResult random = MustExplain(scratch_->Join("random.pt"), test_->images, options);
  const CamResult retrained = MustExplain(scratch_->Join("retrained.pt"), test_->images, options);
  ASSERT_EQ(trained.images.size(), random.images.size());
  ASSERT_EQ(trained.images.size(), retrained.images.size());
  double trained_vs_random = 0, trained_vs_retrained = 0;
  for (size_t i = 0; i < trained.images.size(); ++i) {
    trained_vs_random += Spearman(trained.images[i].heatmap, random.images[i].heatmap);
    trained_vs_retrained += Spearman(trained.images[i].heatmap, retrained.images[i].heatmap);
  }
  trained_vs_random /= static_cast<double>(trained.images.size());
  trained_vs_retrained /= static_cast<double>(trained.images.size());
  std::cout << "mean Spearman correlation of maps, trained vs randomised: " << trained_vs_random
            << ", trained vs retrained from other weights: " << trained_vs_retrained << "\n";
  // Measured: 0.006 against a randomised model and 0.81 against a
  // retrained one (docs/explain.md); the bounds leave room for other
  // LibTorch builds while still telling the two apart.
  EXPECT_LT(trained_vs_random, 0.2);
  EXPECT_GT(trained_vs_retrained, trained_vs_random + 0.2);
  EXPECT_LT(PointingGame(*test_, random), 0.5);
}

TEST_F(ExplainTest, UnknownLayerOfABuiltInModelListsItsLayers) {
  EXPECT_THAT(ExplainModelFile(scratch_->Join("trained.pt"), test_->images,
                               Options(CamMethod::kGradCam, "layer4")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'layer4'"), HasSubstr("block1, block2, block3"))));
}

TEST_F(ExplainTest, ExplicitClassAndItsRange) {
  ExplainOptions options = Options(CamMethod::kGradCam, "");
  options.target_class = 0;
  const CamResult cams = MustExplain(scratch_->Join("trained.pt"), test_->images, options);
  ASSERT_FALSE(cams.images.empty());
  EXPECT_EQ(cams.images[0].target_class, 0);
  options.target_class = 2;
  EXPECT_THAT(ExplainModelFile(scratch_->Join("trained.pt"), test_->images, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 classes")));
}

TEST_F(ExplainTest, DescribesABuiltInModel) {
  auto info = DescribeExplainableModel(scratch_->Join("trained.pt"));
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->layers, (std::vector<std::string>{"block1", "block2", "block3"}));
  EXPECT_EQ(info->default_layer, "block2");
  EXPECT_EQ(info->height, kSide);
  EXPECT_EQ(info->channels, 1);
  EXPECT_THAT(DescribeExplainableModel(scratch_->Join("missing.pt")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.pt")));
}

// A user's module: Net.forward calls a helper, which calls body, whose
// forward calls body.conv; logits are a linear map of body's mean output,
// by `fc` (2 x 4) when given, else random.
torch::jit::Module MakeUserModule(const std::optional<torch::Tensor>& fc = std::nullopt) {
  torch::manual_seed(3);
  torch::jit::Module conv("UserConv");
  conv.register_parameter("weight", torch::randn({4, 1, 3, 3}), false);
  conv.define(
      "def forward(self, x):\n"
      "    return torch.relu(torch.conv2d(x, self.weight, None, [1, 1], [1, 1]))\n");
  torch::jit::Module body("UserBody");
  body.register_module("conv", conv);
  body.define("def forward(self, x):\n    return torch.max_pool2d(self.conv.forward(x), [2, 2])\n");
  torch::jit::Module net("UserNet");
  net.register_module("body", body);
  net.register_parameter("fc", fc.has_value() ? *fc : torch::randn({2, 4}), false);
  net.define(
      "def _impl(self, x):\n"
      "    return self.body.forward(x)\n"
      "def forward(self, x):\n"
      "    a = self._impl(x)\n"
      "    return torch.linear(torch.mean(a, [2, 3]), self.fc)\n");
  return net;
}

TEST_F(ExplainTest, UserModuleByASubmodulePath) {
  torch::jit::Module net = MakeUserModule();
  const std::string path = scratch_->Join("user.pt");
  net.save(path);
  ImageSet data = test_->images;
  const CamResult body = MustExplain(path, data, Options(CamMethod::kGradCam, "body"));
  EXPECT_EQ(body.layer, "body");
  EXPECT_EQ(body.feature_height, kSide / 2);
  const CamResult conv = MustExplain(path, data, Options(CamMethod::kGradCam, "body.conv"));
  EXPECT_EQ(conv.feature_height, kSide);
  ASSERT_EQ(body.images.size(), data.size());

  // Here d(logit_1)/dA_k is fc[1][k] / (h w) everywhere, so Grad-CAM's map
  // is ReLU(sum_k fc[1][k] A_k), scaled: compute it by hand for image 0.
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::from_blob(data.pixels.data(), {1, 1, kSide, kSide}, torch::kUInt8)
                              .to(torch::kFloat32)
                              .div(kPixelScale)
                              .sub(kInputMean)
                              .div(kInputStd);
  const torch::Tensor a = net.attr("body").toModule().forward({x}).toTensor();
  const torch::Tensor fc = net.attr("fc").toTensor();
  torch::Tensor cam = torch::relu((fc[1].view({1, 4, 1, 1}) * a).sum(1, true));
  cam = torch::upsample_bilinear2d(cam, {kSide, kSide}, false).flatten();
  cam = (cam - cam.min()) / (cam.max() - cam.min());
  for (int64_t p = 0; p < kSide * kSide; ++p) {
    ASSERT_NEAR(body.images[0].heatmap[p], cam[p].item<float>(), 1e-4) << "pixel " << p;
  }
}

// body's output is a max-pool of a ReLU, so >= 0; with every weight of
// class 1's logit negative, so is every channel's Grad-CAM weight, and the
// map's positive part is empty, as on real images where a layer holds no
// evidence for the class. Such a map has no peak: its first maximum would
// be pixel (0, 0), a peak that means nothing.
TEST_F(ExplainTest, MapWithNoEvidenceHasNoPeak) {
  const std::string path = scratch_->Join("no_evidence.pt");
  MakeUserModule(-torch::rand({2, 4}) - 0.1).save(path);
  const CamResult cams = MustExplain(path, test_->images, Options(CamMethod::kGradCam, "body"));
  ASSERT_EQ(cams.images.size(), test_->images.size());
  for (const ImageCam& image : cams.images) {
    EXPECT_FALSE(image.peak.has_value());
    EXPECT_TRUE(image.finite);
    EXPECT_EQ(*std::max_element(image.heatmap.begin(), image.heatmap.end()), 0);
  }
  // Class 0's weights are negative too, so its map is empty as well; with
  // them positive it is the whole of body's output, which has a peak.
  ExplainOptions class0 = Options(CamMethod::kGradCam, "body");
  class0.target_class = 0;
  const std::string mixed = scratch_->Join("mixed.pt");
  MakeUserModule(torch::stack({torch::rand({4}) + 0.1, -torch::rand({4}) - 0.1})).save(mixed);
  EXPECT_TRUE(MustExplain(mixed, test_->images, class0).images[0].peak.has_value());
  EXPECT_FALSE(MustExplain(mixed, test_->images, Options(CamMethod::kGradCam, "body"))
                   .images[0]
                   .peak.has_value());
}

// A model giving NaN: its map is flagged, drawn empty and has no peak.
TEST_F(ExplainTest, NonFiniteMapIsFlagged) {
  const std::string path = scratch_->Join("nan.pt");
  MakeUserModule(torch::full({2, 4}, std::nanf(""))).save(path);
  for (CamMethod method : {CamMethod::kGradCam, CamMethod::kGradCamPlusPlus}) {
    const CamResult cams = MustExplain(path, test_->images, Options(method, "body"));
    ASSERT_FALSE(cams.images.empty());
    const ImageCam& image = cams.images[0];
    EXPECT_FALSE(image.finite);
    EXPECT_FALSE(image.peak.has_value());
    EXPECT_EQ(std::count(image.heatmap.begin(), image.heatmap.end(), 0.0f),
              static_cast<int64_t>(image.heatmap.size()));
  }
}

TEST_F(ExplainTest, UserModuleNeedsAnExistingLayer) {
  const std::string path = scratch_->Join("user2.pt");
  MakeUserModule().save(path);
  EXPECT_THAT(ExplainModelFile(path, test_->images, Options(CamMethod::kGradCam, "")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("give a layer"), HasSubstr("body, body.conv"))));
  EXPECT_THAT(ExplainModelFile(path, test_->images, Options(CamMethod::kGradCam, "body.fc")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("no submodule 'body.fc'"), HasSubstr("body, body.conv"))));
  auto info = DescribeExplainableModel(path);
  ASSERT_THAT(info, IsOk());
  EXPECT_TRUE(info->layers.empty());
  EXPECT_FALSE(info->height.has_value());
  EXPECT_EQ(info->submodules, (std::vector<std::string>{"body", "body.conv"}));
}

// The pointing game at every layer of the small built-ins at several input
// sizes, trained as ExplainTest's cnn is: what docs/explain.md reports and
// the default layer rests on. Minutes of training, so disabled; run with
//   client_ml_explain_test --gtest_also_run_disabled_tests \
//     --gtest_filter='ExplainMeasurement.*'
// FEDMI_EXPLAIN_MEASURE (e.g. "cnn:64,resnet18:64") picks models and sizes.
TEST(ExplainMeasurement, DISABLED_PointingGameByLayerAndSize) {
  const char* chosen = std::getenv("FEDMI_EXPLAIN_MEASURE");
  const std::string list =
      chosen != nullptr ? chosen : "cnn:28,cnn:32,cnn:64,cnn-gn:64,resnet18:28,resnet18:64";
  ScratchDir scratch;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    // arch:side or arch:side:epochs
    const std::vector<std::string> parts = absl::StrSplit(item, ':');
    ASSERT_GE(parts.size(), 2u) << item;
    ModelConfig config;
    config.arch = parts[0];
    config.height = config.width = std::stoi(parts[1]);
    config.seed = 1;
    auto model = LocalModel::Create(config);
    ASSERT_THAT(model, IsOk());
    TrainOptions train;
    train.epochs = parts.size() > 2 ? std::stoi(parts[2]) : 6;
    train.batch_size = 32;
    train.augmentation.max_shift = 0;
    ASSERT_THAT((*model)->Train(MakeDiscs(1000, 1, config.height).images, train), IsOk());
    const DiscImages test = MakeDiscs(200, 2, config.height);
    auto predictions = (*model)->Predict(test.images);
    ASSERT_THAT(predictions, IsOk());
    int64_t correct = 0;
    for (int64_t i = 0; i < test.images.size(); ++i) {
      correct += predictions->predicted[i] == test.images.labels[i];
    }
    const std::string path = scratch.Join(absl::StrCat(item, ".pt"));
    ASSERT_THAT((*model)->SaveTorchScript(path), IsOk());
    auto info = DescribeExplainableModel(path);
    ASSERT_THAT(info, IsOk());
    const CamResult by_default = MustExplain(path, test.images, Options(CamMethod::kGradCam, ""));
    std::cout << item << ": test accuracy "
              << static_cast<double>(correct) / static_cast<double>(test.images.size())
              << ", default layer " << by_default.layer << "\n";
    for (const std::string& layer : info->layers) {
      const CamResult cams = MustExplain(path, test.images, Options(CamMethod::kGradCam, layer));
      const CamResult plus =
          MustExplain(path, test.images, Options(CamMethod::kGradCamPlusPlus, layer));
      int64_t empty = 0;  // of class-1 images, whose misses they are
      for (int64_t i = 0; i < test.images.size(); ++i) {
        empty += test.images.labels[i] == 1 && !cams.images[i].peak.has_value();
      }
      std::cout << "  " << layer << " " << cams.feature_height << "x" << cams.feature_width
                << ": Grad-CAM " << PointingGame(test, cams) << " (mirrored "
                << PointingGame(test, cams, /*mirror=*/true) << ", " << empty
                << " class-1 maps empty), Grad-CAM++ " << PointingGame(test, plus) << "\n";
    }
  }
}

TEST(CamMethodTest, ParsesItsNames) {
  EXPECT_EQ(*ParseCamMethod("gradcam"), CamMethod::kGradCam);
  EXPECT_EQ(*ParseCamMethod("gradcam++"), CamMethod::kGradCamPlusPlus);
  EXPECT_STREQ(CamMethodName(CamMethod::kGradCamPlusPlus), "gradcam++");
  EXPECT_THAT(ParseCamMethod("lime"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gradcam, gradcam++")));
}

}  // namespace
}  // namespace fedmi::ml
