#include "client/ml/dp_sgd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "client/ml/architectures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

torch::Tensor Values(std::vector<float> values, std::vector<int64_t> shape) {
  return torch::tensor(values).reshape(shape);
}

torch::jit::Module MustBuild(const std::string& arch, uint64_t seed = 3) {
  ModelConfig config;
  config.arch = arch;
  config.seed = seed;
  torch::jit::Module module;
  EXPECT_TRUE(BuildArchitecture(config, &module).ok());
  return module;
}

std::vector<torch::Tensor> Parameters(const torch::jit::Module& module) {
  std::vector<torch::Tensor> params;
  for (const torch::Tensor& p : module.parameters(/*recurse=*/false)) params.push_back(p);
  return params;
}

// Gray-noise 28x28 images in [-1, 1] with alternating labels.
std::pair<torch::Tensor, torch::Tensor> Batch(int64_t n, uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {torch::rand({n, 1, 28, 28}, generator) * 2 - 1, torch::arange(n) % 2};
}

ImageSet Squares(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60), corner(0, 22);
  ImageSet set;
  set.height = set.width = 28;
  set.channels = 1;
  set.pixels.resize(n * 28 * 28);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* image = set.pixels.data() + i * 28 * 28;
    for (int p = 0; p < 28 * 28; ++p) image[p] = static_cast<uint8_t>(noise(rng));
    if (i % 2 == 1) {
      const int top = corner(rng), left = corner(rng);
      for (int r = top; r < top + 6; ++r) {
        for (int c = left; c < left + 6; ++c) image[r * 28 + c] = 230;
      }
    }
    set.labels.push_back(i % 2);
  }
  return set;
}

absl::StatusOr<std::unique_ptr<LocalModel>> GroupNormModel() {
  ModelConfig config;
  config.arch = "cnn-gn";
  return LocalModel::Create(config);
}

class DpSgdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { SetThreads(1); }
};

TEST_F(DpSgdTest, ClippingScalesLongGradientsToTheClipAndKeepsShortOnes) {
  // Two examples, two parameters. Example 0's gradient (3, 4) has norm 5,
  // example 1's (0.3, 0.4) has norm 0.5.
  const std::vector<torch::Tensor> per_example = {Values({3, 0.3}, {2, 1}),
                                                  Values({4, 0.4}, {2, 1})};
  std::vector<torch::Tensor> sums = {torch::zeros({1}), torch::zeros({1})};
  const torch::Tensor norms = AddClipped(per_example, /*clip=*/1.0, &sums);
  EXPECT_NEAR(norms[0].item<float>(), 5.0, 1e-6);
  EXPECT_NEAR(norms[1].item<float>(), 0.5, 1e-6);
  // 0.6 + 0.3 and 0.8 + 0.4: the long one shrank to norm 1, the short one kept its size.
  EXPECT_NEAR(sums[0].item<float>(), 0.9, 1e-6);
  EXPECT_NEAR(sums[1].item<float>(), 1.2, 1e-6);
}

TEST_F(DpSgdTest, NoExampleMovesTheSumByMoreThanTheClip) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(11);
  const int64_t n = 16;
  // Gradients of very different sizes, spread over three parameters.
  const torch::Tensor size = torch::logspace(-3, 3, n).reshape({n, 1});
  const std::vector<torch::Tensor> per_example = {
      torch::randn({n, 5}, generator) * size,
      torch::randn({n, 2, 3}, generator) * size.unsqueeze(2),
      torch::randn({n, 1}, generator) * size};
  const double clip = 0.7;
  std::vector<torch::Tensor> all = {torch::zeros({5}), torch::zeros({2, 3}), torch::zeros({1})};
  AddClipped(per_example, clip, &all);
  for (int64_t left_out = 0; left_out < n; ++left_out) {
    const torch::Tensor keep = torch::arange(n).ne(left_out).nonzero().flatten();
    std::vector<torch::Tensor> others;
    std::vector<torch::Tensor> sums = {torch::zeros({5}), torch::zeros({2, 3}), torch::zeros({1})};
    for (const torch::Tensor& g : per_example) others.push_back(g.index_select(0, keep));
    AddClipped(others, clip, &sums);
    double squared = 0;
    for (size_t k = 0; k < sums.size(); ++k)
      squared += (all[k] - sums[k]).pow(2).sum().item<double>();
    EXPECT_LE(std::sqrt(squared), clip * (1 + 1e-5)) << "example " << left_out;
  }
}

TEST_F(DpSgdTest, NoiseHasTheStandardDeviationSigmaTimesClip) {
  // The source sites use: the kernel's CSPRNG.
  std::unique_ptr<RandomSource> random = MakeSecureRandomSource();
  const double sigma = 1.3, clip = 0.8;
  std::vector<torch::Tensor> sums = {torch::zeros({400, 500}), torch::zeros({100001})};
  AddGaussianNoise(sigma * clip, *random, &sums);
  const torch::Tensor draws = torch::cat({sums[0].flatten(), sums[1]}).to(torch::kFloat64);
  const double stddev = draws.std().item<double>();
  // 300k draws: the estimate's own relative error is about 0.13%, far inside 5%.
  EXPECT_NEAR(stddev, sigma * clip, 0.05 * sigma * clip);
  EXPECT_NEAR(stddev, sigma * clip, 0.01 * sigma * clip);
  EXPECT_NEAR(draws.mean().item<double>(), 0.0, 0.01);
  // Gaussian tails, not a bounded sampler: 300k draws pass 4 sigma about 19 times.
  EXPECT_GT(draws.abs().gt(4 * sigma * clip).sum().item<int64_t>(), 3);
  EXPECT_FALSE(
      torch::equal(MakeSecureRandomSource()->Uniform(8), MakeSecureRandomSource()->Uniform(8)));
}

TEST_F(DpSgdTest, AnExampleWithANonFiniteGradientContributesNothing) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<torch::Tensor> per_example = {Values({3, nan, inf}, {3, 1}),
                                                  Values({4, 1, 0}, {3, 1})};
  std::vector<torch::Tensor> sums = {torch::zeros({1}), torch::zeros({1})};
  AddClipped(per_example, /*clip=*/1.0, &sums);
  EXPECT_NEAR(sums[0].item<float>(), 0.6, 1e-6);
  EXPECT_NEAR(sums[1].item<float>(), 0.8, 1e-6);
}

TEST_F(DpSgdTest, RefusesAGlobalModelWithNonFiniteWeights) {
  auto model = GroupNormModel();
  ASSERT_TRUE(model.ok());
  TensorBundle weights = *(*model)->ExportWeights();
  float* first = reinterpret_cast<float*>(weights.body.data());
  first[0] = std::numeric_limits<float>::infinity();
  ASSERT_TRUE((*model)->ImportWeights(weights).ok());
  TrainOptions options;
  options.dp = DpSgdOptions{1.0, 1.0, 0.1, 2};
  const ImageSet data = Squares(20, 1);
  EXPECT_THAT((*model)->Train(data, options).status().message(), HasSubstr("non-finite"));
}

TEST_F(DpSgdTest, VectorizedGradientsEqualOneBackwardPassPerExample) {
  torch::jit::Module module = MustBuild("cnn-gn");
  module.train(false);  // no dropout: both methods must then agree exactly
  const std::vector<torch::Tensor> params = Parameters(module);
  auto [x, y] = Batch(6, 1);
  torch::Tensor vectorized_losses, microbatch_losses;
  const auto vectorized =
      PerExampleGradients(module, params, x, y, PerExampleMethod::kVectorized, &vectorized_losses);
  const auto microbatch =
      PerExampleGradients(module, params, x, y, PerExampleMethod::kMicrobatch, &microbatch_losses);
  ASSERT_EQ(vectorized.size(), params.size());
  ASSERT_EQ(microbatch.size(), params.size());
  EXPECT_TRUE(torch::allclose(vectorized_losses, microbatch_losses, 1e-5, 1e-6));
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_EQ(vectorized[k].sizes()[0], 6);
    EXPECT_TRUE(torch::allclose(vectorized[k], microbatch[k], 1e-4, 1e-6))
        << "parameter " << k << " differs by "
        << (vectorized[k] - microbatch[k]).abs().max().item<double>();
  }
  // And the per-example gradients add up to the batch's gradient.
  torch::Tensor loss =
      torch::cross_entropy_loss(module.forward({x}).toTensor(), y, {}, at::Reduction::Sum);
  const auto batch = torch::autograd::grad({loss}, params);
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(torch::allclose(vectorized[k].sum(0), batch[k], 1e-4, 1e-5)) << "parameter " << k;
  }
}

TEST_F(DpSgdTest, LayerwiseGradientsEqualOneBackwardPassPerExample) {
  torch::jit::Module module = MustBuild("cnn-gn");
  module.train(false);  // no dropout: both methods must then agree
  const std::vector<torch::Tensor> params = Parameters(module);
  auto [x, y] = Batch(8, 2);
  torch::Tensor layerwise_losses, microbatch_losses, layerwise_logits, microbatch_logits;
  const auto layerwise = PerExampleGradients(module, params, x, y, PerExampleMethod::kLayerwise,
                                             &layerwise_losses, &layerwise_logits);
  const auto microbatch = PerExampleGradients(module, params, x, y, PerExampleMethod::kMicrobatch,
                                              &microbatch_losses, &microbatch_logits);
  ASSERT_EQ(layerwise.size(), params.size());
  EXPECT_TRUE(torch::allclose(layerwise_losses, microbatch_losses, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(layerwise_logits, microbatch_logits, 1e-5, 1e-6));
  for (size_t k = 0; k < params.size(); ++k) {
    ASSERT_EQ(layerwise[k].sizes(), microbatch[k].sizes()) << "parameter " << k;
    EXPECT_TRUE(torch::allclose(layerwise[k], microbatch[k], 1e-4, 1e-6))
        << "parameter " << k << " differs by "
        << (layerwise[k] - microbatch[k]).abs().max().item<double>();
  }
}

TEST_F(DpSgdTest, LayerwiseClippedSumsEqualMicrobatchedOnes) {
  torch::jit::Module module = MustBuild("cnn-gn");
  module.train(false);
  const std::vector<torch::Tensor> params = Parameters(module);
  auto [x, y] = Batch(10, 3);
  // Example 4's gradient is NaN: both methods must leave it out.
  x[4][0][5][5] = std::numeric_limits<float>::quiet_NaN();
  // What DP-SGD runs: for kLayerwise, norms and sums without per-example gradients.
  auto clipped_sums = [&](PerExampleMethod method, double clip, torch::Tensor* norms) {
    std::vector<torch::Tensor> sums;
    for (const torch::Tensor& p : params) sums.push_back(torch::zeros_like(p));
    *norms = AddClippedGradients(module, params, x, y, method, clip, &sums);
    return sums;
  };
  torch::Tensor norms;
  clipped_sums(PerExampleMethod::kMicrobatch, 1.0, &norms);
  const torch::Tensor finite = norms.index_select(0, norms.isfinite().nonzero().flatten());
  ASSERT_EQ(finite.size(0), 9);
  // A clip between the smallest and largest norm: some examples are clipped, some kept.
  const double clip = finite.median().item<double>();
  torch::Tensor microbatch_norms, layerwise_norms;
  const auto microbatch = clipped_sums(PerExampleMethod::kMicrobatch, clip, &microbatch_norms);
  const auto layerwise = clipped_sums(PerExampleMethod::kLayerwise, clip, &layerwise_norms);
  EXPECT_GT(layerwise_norms.gt(clip).sum().item<int64_t>(), 0);
  EXPECT_GT(layerwise_norms.lt(clip).sum().item<int64_t>(), 0);
  EXPECT_FALSE(std::isfinite(layerwise_norms[4].item<float>()));
  EXPECT_TRUE(torch::allclose(layerwise_norms.nan_to_num(0, 0, 0),
                              microbatch_norms.nan_to_num(0, 0, 0), 1e-4, 1e-6));
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(layerwise[k].isfinite().all().item<bool>()) << "parameter " << k;
    EXPECT_TRUE(torch::allclose(layerwise[k], microbatch[k], 1e-4, 1e-6))
        << "parameter " << k << " differs by "
        << (layerwise[k] - microbatch[k]).abs().max().item<double>();
  }
}

TEST_F(DpSgdTest, LayerwiseFallsBackToMicrobatchingOnModulesWithoutItsMethods) {
  torch::jit::Module module = MustBuild("cnn-gn");
  module.train(false);
  // A module without forward_with_activations, as saved before it existed,
  // sharing the parameters.
  torch::jit::Module plain("__torch__.fedmi.Plain");
  plain.register_module("inner", module);
  plain.define("def forward(self, x):\n    return self.inner.forward(x)\n");
  const std::vector<torch::Tensor> params = Parameters(module);
  auto [x, y] = Batch(3, 4);
  const auto fallback = PerExampleGradients(plain, params, x, y, PerExampleMethod::kLayerwise);
  const auto microbatch = PerExampleGradients(module, params, x, y, PerExampleMethod::kMicrobatch);
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(torch::allclose(fallback[k], microbatch[k], 1e-5, 1e-7)) << "parameter " << k;
  }
}

TEST_F(DpSgdTest, RefusesAnArchitectureWithBatchNorm) {
  ModelConfig config;
  config.arch = "cnn";
  auto model = LocalModel::Create(config);
  ASSERT_TRUE(model.ok());
  TrainOptions options;
  options.dp = DpSgdOptions{1.0, 1.0, 0.1, 2};
  const ImageSet data = Squares(20, 1);
  const auto summary = (*model)->Train(data, options);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(summary.status().message(), HasSubstr("BatchNorm"));
}

TEST_F(DpSgdTest, TrainsWithNoiseAndReportsItsSteps) {
  auto model = GroupNormModel();
  ASSERT_TRUE(model.ok());
  const ImageSet train = Squares(400, 2), test = Squares(200, 3);
  TrainOptions options;
  options.lr = 2e-3;
  options.augmentation.max_shift = 0;
  options.dp = DpSgdOptions{
      /*clip_norm=*/1.0, /*noise_multiplier=*/0.8,     /*sample_rate=*/0.1,
      /*steps=*/60,      PerExampleMethod::kLayerwise, /*secret_seed=*/9};
  auto summary = (*model)->Train(train, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->dp_steps, 60);
  EXPECT_GT(summary->clipped_fraction, 0.0);
  auto predictions = (*model)->Predict(test);
  ASSERT_TRUE(predictions.ok());
  int correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) correct += predictions->predicted[i] == test.labels[i];
  EXPECT_GT(correct, 170) << "of 200";
}

TEST_F(DpSgdTest, TheSecretSeedAloneDecidesSamplingAndNoise) {
  const ImageSet train = Squares(60, 4);
  auto weights_after = [&](uint64_t secret_seed) {
    auto model = GroupNormModel();
    TrainOptions options;
    options.dp = DpSgdOptions{1.0, 1.0, 0.2, 3, PerExampleMethod::kVectorized, secret_seed};
    EXPECT_TRUE((*model)->Train(train, options).ok());
    return (*model)->ExportWeights()->body;
  };
  EXPECT_EQ(weights_after(21), weights_after(21));
  EXPECT_NE(weights_after(21), weights_after(22));
}

TEST_F(DpSgdTest, AugmentsBeforeEachExampleGradientReproducibly) {
  const ImageSet train = Squares(60, 4);
  auto weights_after = [&](const AugmentationOptions& augmentation) {
    auto model = GroupNormModel();
    TrainOptions options;
    options.seed = 5;
    options.augmentation = augmentation;
    options.dp = DpSgdOptions{1.0, 1.0, 0.2, 3, PerExampleMethod::kLayerwise, 21};
    auto summary = (*model)->Train(train, options);
    EXPECT_TRUE(summary.ok()) << summary.status();
    return (*model)->ExportWeights()->body;
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
  EXPECT_NE(weights_after(all), weights_after(none));
}

TEST_F(DpSgdTest, WeightDecayShrinksTheNoisedStepsParameters) {
  const ImageSet train = Squares(60, 4);
  auto norm_after = [&](const std::string& optimizer, double weight_decay) {
    auto model = GroupNormModel();
    TrainOptions options;
    options.optimizer = optimizer;
    options.lr = 0.01;
    options.weight_decay = weight_decay;
    options.dp = DpSgdOptions{1.0, 1.0, 0.2, 4, PerExampleMethod::kLayerwise, 21};
    EXPECT_TRUE((*model)->Train(train, options).ok());
    const TensorBundle weights = *(*model)->ExportWeights();
    const float* values = reinterpret_cast<const float*>(weights.body.data());
    double sum = 0;
    for (size_t i = 0; i < weights.body.size() / sizeof(float); ++i) sum += values[i] * values[i];
    return sum;
  };
  for (const char* optimizer : {"adam", "sgd"}) {
    // Same sample and noise (secret seed 21); 4 steps at lr * wd = 0.05,
    // compounded by SGD's momentum.
    const double plain = norm_after(optimizer, 0), decayed = norm_after(optimizer, 5);
    EXPECT_LT(decayed, 0.8 * plain) << optimizer;
    EXPECT_GT(decayed, 0.2 * plain) << optimizer;
  }
}

TEST_F(DpSgdTest, ASavedModelCarriesItsGuaranteeAsAttributesTorchJitLoadReads) {
  auto model = GroupNormModel();
  ASSERT_TRUE(model.ok());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("fedmi_dp_attr_" + std::to_string(::getpid()) + ".pt"))
                               .string();
  ASSERT_TRUE(
      (*model)->SaveTorchScript(path, {{"dp_epsilon", "2.5"}, {"dp_level", "sample"}}).ok());
  torch::jit::Module loaded = torch::jit::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.attr("fedmi_dp_epsilon").toStringRef(), "2.5");
  EXPECT_EQ(loaded.attr("fedmi_dp_level").toStringRef(), "sample");
  EXPECT_TRUE(loaded.find_method(kPerExampleForwardMethod).has_value());
}

TEST_F(DpSgdTest, RefusesImpossibleSettings) {
  auto model = GroupNormModel();
  ASSERT_TRUE(model.ok());
  TrainOptions options;
  options.dp = DpSgdOptions{1.0, 1.0, /*sample_rate=*/1.5, 2};
  const ImageSet data = Squares(20, 1);
  EXPECT_THAT((*model)->Train(data, options).status().message(), HasSubstr("sample_rate"));
}

}  // namespace
}  // namespace fedmi::ml
