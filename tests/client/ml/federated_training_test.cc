// The strategies' changes to local training: FedProx's proximal term and
// SCAFFOLD's gradient offset (GradientCorrection in torch_support.h) on
// hand-made tensors, and through LocalModel::Train.
#include <cmath>
#include <random>

#include "client/ml/local_model.h"
#include "client/ml/torch_support.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::ml {
namespace {

using ::testing::HasSubstr;

TensorBundle FloatTensor(const std::string& name, const std::vector<int64_t>& shape,
                         const std::vector<float>& values) {
  TensorBundle bundle;
  bundle.specs.push_back({name, DType::kFloat32, shape});
  bundle.body.resize(values.size() * sizeof(float));
  std::memcpy(bundle.body.data(), values.data(), bundle.body.size());
  return bundle;
}

std::vector<float> Values(const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

TEST(GradientCorrectionTest, AddsTheProximalTermAndTheOffsetToTheGradient) {
  torch::Tensor weight = torch::tensor({1.0f, 2.0f, 3.0f}).requires_grad_(true);
  torch::Tensor bias = torch::tensor({4.0f}).requires_grad_(true);
  ASSERT_OK_AND_ASSIGN(GradientCorrection correction,
                       GradientCorrection::Create(
                           {weight, bias}, {"fc.weight", "fc.bias"}, /*proximal_mu=*/0.5,
                           FloatTensor("fc.weight", {3}, {0.25f, -0.5f, 0.125f}), torch::kCPU));
  // Training moved the weights from w0 = (1, 2, 3), (4) ...
  {
    torch::NoGradGuard no_grad;
    weight.copy_(torch::tensor({1.5f, 2.0f, 2.0f}));
    bias.copy_(torch::tensor({3.0f}));
  }
  // ... and backward() left these gradients.
  weight.mutable_grad() = torch::tensor({0.1f, 0.2f, 0.3f});
  bias.mutable_grad() = torch::tensor({1.0f});
  correction.Apply();
  // g + mu (w - w0) + (c - c_i): 0.1 + 0.25 + 0.25, 0.2 + 0 - 0.5,
  // 0.3 - 0.5 + 0.125; the bias has no offset: 1 - 0.5.
  const std::vector<float> expected_weight = {0.6f, -0.3f, -0.075f};
  const std::vector<float> got_weight = Values(weight.grad());
  for (size_t i = 0; i < expected_weight.size(); ++i) {
    EXPECT_NEAR(got_weight[i], expected_weight[i], 1e-6) << i;
  }
  EXPECT_NEAR(Values(bias.grad())[0], 0.5f, 1e-6);
}

TEST(GradientCorrectionTest, WithoutEitherTheGradientIsUntouched) {
  torch::Tensor weight = torch::tensor({1.0f, 2.0f}).requires_grad_(true);
  ASSERT_OK_AND_ASSIGN(GradientCorrection correction,
                       GradientCorrection::Create({weight}, {"w"}, 0, TensorBundle{}, torch::kCPU));
  {
    torch::NoGradGuard no_grad;
    weight.add_(1);
  }
  weight.mutable_grad() = torch::tensor({0.5f, -0.5f});
  correction.Apply();
  EXPECT_EQ(Values(weight.grad()), (std::vector<float>{0.5f, -0.5f}));
}

TEST(GradientCorrectionTest, AnOffsetForNoParameterOrOfAnotherShapeIsRefused) {
  torch::Tensor weight = torch::zeros({2}).requires_grad_(true);
  EXPECT_THAT(
      GradientCorrection::Create({weight}, {"w"}, 0, FloatTensor("v", {2}, {1, 2}), torch::kCPU)
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'v' names no trained")));
  EXPECT_THAT(
      GradientCorrection::Create({weight}, {"w"}, 0, FloatTensor("w", {1}, {1}), torch::kCPU)
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parameter's shape")));
}

// Gray noise, labels alternating: enough for gradients to flow.
ImageSet Noise(int64_t n) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> pixel(0, 255);
  ImageSet set;
  set.height = set.width = 28;
  set.channels = 1;
  set.pixels.resize(n * 28 * 28);
  for (uint8_t& p : set.pixels) p = static_cast<uint8_t>(pixel(rng));
  for (int64_t i = 0; i < n; ++i) set.labels.push_back(i % 2);
  return set;
}

// Over the named tensors only: BatchNorm's running statistics follow the
// data whatever the loss.
double DistanceFrom(const TensorBundle& start, const TensorBundle& end,
                    const std::vector<std::string>& names) {
  double sum = 0;
  for (const std::string& name : names) {
    const int index = start.IndexOf(name);
    const float* a = reinterpret_cast<const float*>(start.body.data() + start.OffsetOf(index));
    const float* b = reinterpret_cast<const float*>(end.body.data() + end.OffsetOf(index));
    for (int64_t i = 0; i < start.specs[index].NumElements(); ++i) {
      sum += (a[i] - b[i]) * (a[i] - b[i]);
    }
  }
  return std::sqrt(sum);
}

TEST(FederatedTrainingTest, TheProximalTermKeepsTheWeightsNearTheGlobalModel) {
  SetThreads(1);
  const ImageSet data = Noise(96);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 16;
  options.optimizer = "sgd";
  options.sgd_momentum = 0;
  options.lr = 0.05;
  // lr * mu = 0.25: each step pulls a quarter of the way back to w0, stably.
  auto distance_with = [&](double mu) -> double {
    auto model = LocalModel::Create(ModelConfig{});
    EXPECT_THAT(model, IsOk());
    TensorBundle start = *(*model)->ExportWeights();
    options.proximal_mu = mu;
    absl::StatusOr<TrainSummary> summary = (*model)->Train(data, options);
    EXPECT_THAT(summary, IsOk());
    // 96 images in batches of 16, twice.
    EXPECT_EQ(summary->steps, 12);
    return DistanceFrom(start, *(*model)->ExportWeights(), (*model)->ParameterNames());
  };
  const double free = distance_with(0);
  const double pulled = distance_with(5);
  EXPECT_GT(free, 0);
  EXPECT_LT(pulled, 0.8 * free) << "free " << free << ", pulled " << pulled;
}

// SCAFFOLD's offset o on one tensor moves it by about -K lr o more than
// training without it: K plain SGD steps each add lr * o, and at a small lr
// the data's gradients barely notice the shift.
TEST(FederatedTrainingTest, TheGradientOffsetShiftsTheTrainedTensor) {
  SetThreads(1);
  const ImageSet data = Noise(64);
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = 16;  // K = 4
  options.optimizer = "sgd";
  options.sgd_momentum = 0;
  options.lr = 1e-3;
  auto trained = [&](const TensorBundle& offset) -> TensorBundle {
    auto model = LocalModel::Create(ModelConfig{});
    EXPECT_THAT(model, IsOk());
    options.gradient_offset = offset;
    EXPECT_THAT((*model)->Train(data, options), IsOk());
    return *(*model)->ExportWeights();
  };
  auto model = LocalModel::Create(ModelConfig{});
  ASSERT_THAT(model, IsOk());
  const std::string last = (*model)->ParameterNames().back();
  const TensorBundle weights = *(*model)->ExportWeights();
  const TensorSpec spec = weights.specs[weights.IndexOf(last)];
  ASSERT_EQ(spec.shape.size(), 1u);
  const TensorBundle offset =
      FloatTensor(last, spec.shape, std::vector<float>(spec.shape[0], 10.0f));
  const TensorBundle plain = trained(TensorBundle{});
  const TensorBundle shifted = trained(offset);
  const size_t at = plain.OffsetOf(plain.IndexOf(last)) / sizeof(float);
  const float* a = reinterpret_cast<const float*>(plain.body.data()) + at;
  const float* b = reinterpret_cast<const float*>(shifted.body.data()) + at;
  for (int64_t i = 0; i < spec.shape[0]; ++i) {
    EXPECT_NEAR(b[i] - a[i], -4 * 1e-3 * 10.0, 4e-3) << last << "[" << i << "]";
  }
}

TEST(FederatedTrainingTest, DpSgdRefusesTheCorrections) {
  auto model = LocalModel::Create(ModelConfig{});
  ASSERT_THAT(model, IsOk());
  TrainOptions options;
  options.dp = DpSgdOptions{1.0, 1.0, 0.1, 1};
  options.proximal_mu = 0.1;
  EXPECT_THAT((*model)->Train(Noise(8), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("FedProx and SCAFFOLD")));
}

}  // namespace
}  // namespace fedmi::ml
