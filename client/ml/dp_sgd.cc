#include "client/ml/dp_sgd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/random.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/optim.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "client/ml/architectures.h"
#include "client/ml/torch_support.h"
#include "client/ml/training_recipe.h"

namespace fedmi::ml {
namespace {

// Guards the norm division against an all-zero gradient.
constexpr double kNormFloor = 1e-12;

class SecureRandom : public RandomSource {
 public:
  torch::Tensor Uniform(int64_t n) override {
    torch::Tensor bits = torch::empty({n}, torch::kInt64);
    char* out = static_cast<char*>(bits.data_ptr());
    size_t left = static_cast<size_t>(n) * sizeof(int64_t);
    while (left > 0) {
      const ssize_t got = getrandom(out, left, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
      }
      out += got;
      left -= static_cast<size_t>(got);
    }
    // The top 53 bits as a double in [0, 1): every value equally likely.
    return bits.bitwise_right_shift(11).bitwise_and((int64_t{1} << 53) - 1).to(torch::kFloat64) *
           (1.0 / static_cast<double>(int64_t{1} << 53));
  }
};

class SeededRandom : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed)
      : generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}
  torch::Tensor Uniform(int64_t n) override {
    return torch::rand({n}, generator_, torch::kFloat64);
  }

 private:
  at::Generator generator_;
};

std::vector<torch::Tensor> VectorizedGradients(torch::jit::Module& module,
                                               const std::vector<torch::Tensor>& params,
                                               const torch::Tensor& x, const torch::Tensor& y,
                                               torch::Tensor* losses, torch::Tensor* logits) {
  const int64_t n = x.size(0);
  // A copy of every parameter per example: each example's loss reaches only
  // its own copy, so the copies' gradients are the per-example gradients.
  std::vector<torch::Tensor> copies;
  copies.reserve(params.size());
  for (const torch::Tensor& p : params) {
    std::vector<int64_t> shape = {n};
    shape.insert(shape.end(), p.sizes().begin(), p.sizes().end());
    copies.push_back(p.detach().unsqueeze(0).expand(shape).clone().requires_grad_(true));
  }
  torch::Tensor out =
      module.get_method(kPerExampleForwardMethod)({x, c10::List<torch::Tensor>(copies)}).toTensor();
  torch::Tensor loss = torch::cross_entropy_loss(out, y, {}, at::Reduction::None);
  std::vector<torch::Tensor> grads = torch::autograd::grad({loss.sum()}, copies);
  if (losses != nullptr) *losses = loss.detach();
  if (logits != nullptr) *logits = out.detach();
  return grads;
}

std::vector<torch::Tensor> MicrobatchGradients(torch::jit::Module& module,
                                               const std::vector<torch::Tensor>& params,
                                               const torch::Tensor& x, const torch::Tensor& y,
                                               torch::Tensor* losses, torch::Tensor* logits) {
  const int64_t n = x.size(0);
  std::vector<std::vector<torch::Tensor>> by_parameter(params.size());
  std::vector<torch::Tensor> example_losses, example_logits;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor out = module.forward({x.narrow(0, i, 1)}).toTensor();
    torch::Tensor loss = torch::cross_entropy_loss(out, y.narrow(0, i, 1));
    std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, params);
    for (size_t k = 0; k < params.size(); ++k) by_parameter[k].push_back(grads[k]);
    example_losses.push_back(loss.detach().reshape({1}));
    example_logits.push_back(out.detach());
  }
  std::vector<torch::Tensor> stacked;
  stacked.reserve(params.size());
  for (auto& grads : by_parameter) stacked.push_back(torch::stack(grads));
  if (losses != nullptr) *losses = torch::cat(example_losses);
  if (logits != nullptr) *logits = torch::cat(example_logits);
  return stacked;
}

bool HasLayerwiseMethods(const torch::jit::Module& module) {
  for (const char* name : {kForwardWithActivationsMethod, kPerExampleGradientsMethod,
                           kPerExampleSquaredNormsMethod, kWeightedGradientsMethod}) {
    if (!module.find_method(name)) return false;
  }
  return true;
}

// What each layer with parameters saw (activations) and the gradient of the
// summed loss with respect to what it produced: one forward and one backward
// pass. No example's output gradient depends on another example, so each
// row is that example's own.
struct LayerGradients {
  std::vector<torch::Tensor> activations;
  std::vector<torch::Tensor> output_grads;
};

LayerGradients BackwardToLayerOutputs(torch::jit::Module& module, const torch::Tensor& x,
                                      const torch::Tensor& y, torch::Tensor* losses,
                                      torch::Tensor* logits) {
  // From its third call on, the graph executor would run the forward pass
  // as differentiable subgraphs whose intermediate values (the listed layer
  // outputs) autograd no longer reaches.
  torch::jit::GraphOptimizerEnabledGuard unoptimized(false);
  const auto forward = module.get_method(kForwardWithActivationsMethod)({x}).toTuple();
  const torch::Tensor out = forward->elements()[0].toTensor();
  LayerGradients layers;
  layers.activations = forward->elements()[1].toTensorVector();
  const std::vector<torch::Tensor> outputs = forward->elements()[2].toTensorVector();
  const torch::Tensor loss = torch::cross_entropy_loss(out, y, {}, at::Reduction::None);
  layers.output_grads = torch::autograd::grad({loss.sum()}, outputs);
  for (torch::Tensor& a : layers.activations) a = a.detach();
  if (losses != nullptr) *losses = loss.detach();
  if (logits != nullptr) *logits = out.detach();
  return layers;
}

std::vector<torch::Tensor> LayerwiseGradients(torch::jit::Module& module, const torch::Tensor& x,
                                              const torch::Tensor& y, torch::Tensor* losses,
                                              torch::Tensor* logits) {
  const LayerGradients layers = BackwardToLayerOutputs(module, x, y, losses, logits);
  torch::NoGradGuard no_grad;
  return module.get_method(kPerExampleGradientsMethod)({layers.activations, layers.output_grads})
      .toTensorVector();
}

// AddClipped(LayerwiseGradients(...)) without forming every example's
// gradient: the module computes the norms and then the clipped sum.
torch::Tensor LayerwiseAddClipped(torch::jit::Module& module, const torch::Tensor& x,
                                  const torch::Tensor& y, double clip,
                                  std::vector<torch::Tensor>* sums, torch::Tensor* losses,
                                  torch::Tensor* logits) {
  LayerGradients layers = BackwardToLayerOutputs(module, x, y, losses, logits);
  torch::NoGradGuard no_grad;
  const torch::Tensor norms =
      module.get_method(kPerExampleSquaredNormsMethod)({layers.activations, layers.output_grads})
          .toTensor()
          .sqrt();
  // As in AddClipped: non-finite examples are left out, not scaled to zero.
  const torch::Tensor finite = torch::isfinite(norms).nonzero().flatten();
  if (finite.size(0) == 0) return norms;
  if (finite.size(0) != norms.size(0)) {
    for (torch::Tensor& a : layers.activations) a = a.index_select(0, finite);
    for (torch::Tensor& g : layers.output_grads) g = g.index_select(0, finite);
  }
  const torch::Tensor scale =
      (clip / norms.index_select(0, finite).clamp_min(kNormFloor)).clamp_max(1.0);
  const std::vector<torch::Tensor> weighted =
      module.get_method(kWeightedGradientsMethod)({layers.activations, layers.output_grads, scale})
          .toTensorVector();
  for (size_t k = 0; k < sums->size(); ++k) (*sums)[k] += weighted[k];
  return norms;
}

}  // namespace

torch::Tensor RandomSource::Normal(at::IntArrayRef sizes) {
  int64_t n = 1;
  for (int64_t size : sizes) n *= size;
  const int64_t pairs = (n + 1) / 2;
  // 1 - u lies in (0, 1]: the logarithm stays finite.
  const torch::Tensor radius = (-2.0 * torch::log1p(-Uniform(pairs))).sqrt();
  const torch::Tensor angle = Uniform(pairs) * (2.0 * M_PI);
  return torch::cat({radius * torch::cos(angle), radius * torch::sin(angle)})
      .narrow(0, 0, n)
      .reshape(sizes);
}

std::unique_ptr<RandomSource> MakeSecureRandomSource() { return std::make_unique<SecureRandom>(); }

std::unique_ptr<RandomSource> MakeSeededRandomSource(uint64_t seed) {
  return std::make_unique<SeededRandom>(seed);
}

std::vector<torch::Tensor> PerExampleGradients(torch::jit::Module& module,
                                               const std::vector<torch::Tensor>& params,
                                               const torch::Tensor& x, const torch::Tensor& y,
                                               PerExampleMethod method, torch::Tensor* losses,
                                               torch::Tensor* logits) {
  switch (method) {
    case PerExampleMethod::kLayerwise:
      if (HasLayerwiseMethods(module)) return LayerwiseGradients(module, x, y, losses, logits);
      // A module saved before these methods existed: same numbers, slower.
      return MicrobatchGradients(module, params, x, y, losses, logits);
    case PerExampleMethod::kVectorized:
      return VectorizedGradients(module, params, x, y, losses, logits);
    case PerExampleMethod::kMicrobatch:
      break;
  }
  return MicrobatchGradients(module, params, x, y, losses, logits);
}

torch::Tensor AddClipped(const std::vector<torch::Tensor>& per_example, double clip,
                         std::vector<torch::Tensor>* sums) {
  const int64_t n = per_example.front().size(0);
  torch::Tensor squared = torch::zeros({n}, per_example.front().options());
  for (const torch::Tensor& g : per_example) squared += g.reshape({n, -1}).pow(2).sum(1);
  const torch::Tensor norms = squared.sqrt();
  // 0 * NaN is NaN: non-finite examples are left out, not scaled to zero.
  const torch::Tensor finite = torch::isfinite(norms).nonzero().flatten();
  const bool all_finite = finite.size(0) == n;
  // min(1, C / ||g||): an example's whole gradient shrinks by one factor.
  const torch::Tensor scale =
      (clip / norms.index_select(0, finite).clamp_min(kNormFloor)).clamp_max(1.0);
  for (size_t k = 0; k < per_example.size(); ++k) {
    const torch::Tensor g = all_finite ? per_example[k] : per_example[k].index_select(0, finite);
    (*sums)[k] += torch::tensordot(scale, g, {0}, {0});
  }
  return norms;
}

torch::Tensor AddClippedGradients(torch::jit::Module& module,
                                  const std::vector<torch::Tensor>& params, const torch::Tensor& x,
                                  const torch::Tensor& y, PerExampleMethod method, double clip,
                                  std::vector<torch::Tensor>* sums, torch::Tensor* losses,
                                  torch::Tensor* logits) {
  if (method == PerExampleMethod::kLayerwise && HasLayerwiseMethods(module)) {
    return LayerwiseAddClipped(module, x, y, clip, sums, losses, logits);
  }
  return AddClipped(PerExampleGradients(module, params, x, y, method, losses, logits), clip, sums);
}

void AddGaussianNoise(double stddev, RandomSource& random, std::vector<torch::Tensor>* sums) {
  if (stddev == 0) return;
  for (torch::Tensor& sum : *sums) {
    sum += (random.Normal(sum.sizes()) * stddev).to(sum.options());
  }
}

absl::StatusOr<TrainSummary> TrainWithDpSgd(torch::jit::Module& module, torch::Device device,
                                            const ImageSet& data, const TrainOptions& options) {
  const DpSgdOptions& dp = *options.dp;
  // Buffers (BatchNorm's running statistics) would leave the site computed
  // from the sampled images without noise; architectures without them have
  // a per-example forward pass.
  if (!module.find_method(kPerExampleForwardMethod) ||
      module.named_buffers(/*recurse=*/false).size() > 0) {
    return absl::InvalidArgumentError(
        "this architecture normalises over the batch (BatchNorm), so DP-SGD cannot bound one "
        "example's influence; use a DP-compatible architecture such as cnn-gn");
  }
  std::vector<torch::Tensor> params;
  for (const torch::Tensor& p : module.parameters(/*recurse=*/false)) params.push_back(p);
  for (const torch::Tensor& p : params) {
    // Weights chosen to overflow on one image would turn its sampling into
    // a NaN in the update.
    if (!torch::isfinite(p).all().item<bool>()) {
      return absl::InvalidArgumentError("the global model has non-finite weights");
    }
  }
  module.train(true);
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(params, options);
  // Augmentation and dropout are reproducible from the run's seed; which
  // examples a step takes and the noise are not.
  at::Generator augmentation = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  torch::manual_seed(options.seed);
  std::unique_ptr<RandomSource> secret =
      dp.secret_seed == 0 ? MakeSecureRandomSource() : MakeSeededRandomSource(dp.secret_seed);

  const torch::Tensor pixels = PixelView(data);
  const torch::Tensor labels = LabelView(data);
  const int64_t n = data.size();
  const double expected_batch = dp.sample_rate * static_cast<double>(n);
  TrainSummary summary;
  summary.examples = n;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0, clipped = 0;
  for (int64_t step = 0; step < dp.steps; ++step) {
    const torch::Tensor taken = secret->Uniform(n).lt(dp.sample_rate).nonzero().flatten();
    std::vector<torch::Tensor> sums;
    sums.reserve(params.size());
    for (const torch::Tensor& p : params) sums.push_back(torch::zeros_like(p));
    // A Poisson batch can exceed what fits in memory at once: its clipped
    // gradients are summed over chunks of at most batch_size examples.
    for (int64_t start = 0; start < taken.size(0); start += options.batch_size) {
      const torch::Tensor index =
          taken.slice(0, start, std::min(taken.size(0), start + options.batch_size));
      torch::Tensor x = ToModelInput(pixels.index_select(0, index));
      x = Augment(x, options.augmentation, augmentation);
      const torch::Tensor y = labels.index_select(0, index).to(device);
      torch::Tensor losses, logits;
      const torch::Tensor norms = AddClippedGradients(module, params, x.to(device), y, dp.method,
                                                      dp.clip_norm, &sums, &losses, &logits);
      clipped +=
          norms.gt(dp.clip_norm).logical_or(norms.isfinite().logical_not()).sum().item<int64_t>();
      loss_sum += losses.sum().item<double>();
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      seen += index.size(0);
    }
    AddGaussianNoise(dp.noise_multiplier * dp.clip_norm, *secret, &sums);
    optimizer->zero_grad();
    for (size_t k = 0; k < params.size(); ++k) {
      params[k].mutable_grad() = sums[k].div_(expected_batch);
    }
    optimizer->step();
    if (options.progress) {
      options.progress(0, step + 1, dp.steps, seen > 0 ? loss_sum / static_cast<double>(seen) : 0);
    }
  }
  summary.dp_steps = dp.steps;
  if (seen > 0) {
    summary.loss = loss_sum / static_cast<double>(seen);
    summary.accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    summary.clipped_fraction = static_cast<double>(clipped) / static_cast<double>(seen);
  }
  return summary;
}

}  // namespace fedmi::ml
