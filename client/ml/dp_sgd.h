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

#include <vector>

#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"

namespace fedmi::ml {

// Each example's gradient of its own (unweighted) cross-entropy: one tensor
// per parameter in `params` (the module's parameters, wire order), of shape
// [n, parameter shape...]. `losses` (optional) receives each example's loss,
// `logits` (optional) the batch's logits. kVectorized needs the module's
// per_example_forward (DP-compatible architectures); kMicrobatch works on
// any module whose examples do not interact.
std::vector<torch::Tensor> PerExampleGradients(torch::jit::Module& module,
                                               const std::vector<torch::Tensor>& params,
                                               const torch::Tensor& x, const torch::Tensor& y,
                                               PerExampleMethod method,
                                               torch::Tensor* losses = nullptr,
                                               torch::Tensor* logits = nullptr);

// Scales each example's gradient (all parameters together) to L2 norm at
// most `clip` and adds it into `sums` (one tensor per parameter, without the
// batch dimension). Returns each example's norm before clipping.
torch::Tensor AddClipped(const std::vector<torch::Tensor>& per_example, double clip,
                         std::vector<torch::Tensor>* sums);

// Adds independent N(0, stddev^2) to every coordinate of `sums`.
void AddGaussianNoise(double stddev, at::Generator& generator, std::vector<torch::Tensor>* sums);

// Trains `module` (in place) with DP-SGD as TrainOptions::dp describes.
// The caller has validated `data` and `options`.
absl::StatusOr<TrainSummary> TrainWithDpSgd(torch::jit::Module& module, torch::Device device,
                                            const ImageSet& data, const TrainOptions& options);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_DP_SGD_H_
