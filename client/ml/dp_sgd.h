// Internal to fedmi_ml: DP-SGD (sample-level differential privacy) on a
// TorchScript model built by architectures.cc. Includes LibTorch; only
// fedmi_ml's own translation units and its tests include it. LocalModel
// reaches it through TrainOptions::dp.
//
// The pieces are separate functions so that tests can check each against
// hand-made gradients: per-example gradients, clipping into a sum, noise.
#ifndef FEDMI_CLIENT_ML_DP_SGD_H_
#define FEDMI_CLIENT_ML_DP_SGD_H_

#include <torch/script.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"

namespace fedmi::ml {

// Each example's gradient of its own (unweighted) cross-entropy: one tensor
// per parameter in `params` (the module's parameters, wire order), of shape
// [n, parameter shape...]. `losses` (optional) receives each example's loss,
// `logits` (optional) the batch's logits. kVectorized needs the module's
// per_example_forward (DP-compatible architectures); kLayerwise uses its
// forward_with_activations and per_example_gradients where it has them and
// microbatches otherwise; kMicrobatch works on any module whose examples do
// not interact.
std::vector<torch::Tensor> PerExampleGradients(torch::jit::Module& module,
                                               const std::vector<torch::Tensor>& params,
                                               const torch::Tensor& x, const torch::Tensor& y,
                                               PerExampleMethod method,
                                               torch::Tensor* losses = nullptr,
                                               torch::Tensor* logits = nullptr);

// Scales each example's gradient (all parameters together) to L2 norm at
// most `clip` and adds it into `sums` (one tensor per parameter, without the
// batch dimension). Returns each example's norm before clipping. An example
// whose gradient is not finite (NaN, inf) contributes nothing: scaling
// cannot bound it, and letting it through would make the whole sum reveal
// whether that example was sampled.
torch::Tensor AddClipped(const std::vector<torch::Tensor>& per_example, double clip,
                         std::vector<torch::Tensor>* sums);

// AddClipped(PerExampleGradients(module, params, x, y, method, losses,
// logits), clip, sums), the step DP-SGD takes for each chunk of its batch.
// kLayerwise on a module with the methods it needs computes the norms and
// the clipped sum without forming every example's gradient.
torch::Tensor AddClippedGradients(torch::jit::Module& module,
                                  const std::vector<torch::Tensor>& params, const torch::Tensor& x,
                                  const torch::Tensor& y, PerExampleMethod method, double clip,
                                  std::vector<torch::Tensor>* sums, torch::Tensor* losses = nullptr,
                                  torch::Tensor* logits = nullptr);

// Where DP-SGD draws which examples a step takes and its noise. Privacy
// rests on neither being predictable by whoever sees the update, so sites
// use SecureRandomSource; SeededRandomSource exists for reproducible tests
// and gives no privacy at all.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // `n` independent draws, uniform on [0, 1), float64, on the CPU.
  virtual torch::Tensor Uniform(int64_t n) = 0;
  // Independent standard normal draws of shape `sizes`, float64, on the CPU
  // (Box-Muller on 53-bit uniforms: tails reach about 8.6 standard
  // deviations, unlike float32 samplers that stop near 5.8).
  torch::Tensor Normal(at::IntArrayRef sizes);
};

// The kernel's CSPRNG (getrandom(2)): unpredictable without the site's state.
std::unique_ptr<RandomSource> MakeSecureRandomSource();
// ATen's mt19937 seeded with `seed`: reproducible, for tests only.
std::unique_ptr<RandomSource> MakeSeededRandomSource(uint64_t seed);

// Adds independent N(0, stddev^2) to every coordinate of `sums`, drawn from
// `random` and moved to each sum's device and dtype.
void AddGaussianNoise(double stddev, RandomSource& random, std::vector<torch::Tensor>* sums);

// Trains `module` (in place) with DP-SGD as TrainOptions::dp describes.
// The caller has validated `data` and `options`.
absl::StatusOr<TrainSummary> TrainWithDpSgd(torch::jit::Module& module, torch::Device device,
                                            const ImageSet& data, const TrainOptions& options);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_DP_SGD_H_
