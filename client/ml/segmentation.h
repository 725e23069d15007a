// Internal to fedmi_ml: training and prediction of segmentation models,
// whose forward maps N,C,H,W images to mask logits N,1,H,W, against the
// data set's masks (ImageSet::masks). LocalModel calls these for a U-Net
// or a user's segmentation module. Includes LibTorch; only fedmi_ml's own
// translation units and its tests include it.
//
// Loss: soft Dice plus binary cross-entropy, summed with equal weight.
// Soft Dice is 1 - (2 sum(p m) + 1) / (sum(p) + sum(m) + 1) over the whole
// batch (every pixel of every image pooled, as the pooled Dice the
// federation reports), p = sigmoid(logit), m the 0/1 mask; the +1 keeps an
// all-background batch finite. BCE is the mean over pixels, computed from
// the logits. Dice alone trains poorly from an untrained net (its gradient
// is flat while predictions are near 0.5 everywhere); BCE alone
// under-weights small structures; the sum is the usual remedy (e.g.
// nnU-Net).
#ifndef FEDMI_CLIENT_ML_SEGMENTATION_H_
#define FEDMI_CLIENT_ML_SEGMENTATION_H_

#include <torch/optim.h>
#include <torch/script.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "client/ml/local_model.h"
#include "client/ml/torch_support.h"
#include "common/data/dataset.h"

namespace fedmi::ml {

// InvalidArgument unless `data` has one mask byte per pixel of each image
// (0 or 1).
absl::Status CheckMasks(const ImageSet& data);

// View (no copy) of a data set's masks as float-convertible uint8 N,1,H,W;
// aliases `data`.
torch::Tensor MaskView(const ImageSet& data);

// Soft Dice + BCE as above, of logits and 0/1 float masks, both N,1,H,W.
torch::Tensor SegmentationLoss(const torch::Tensor& logits, const torch::Tensor& masks);

// The epochs of LocalModel::Train for a segmentation module: batches in
// the order drawn from `generator`, AugmentWithMask, the loss above. The
// summary's accuracy is the share of pixels predicted right (logit > 0 is
// foreground) in the last epoch. `data` must have passed CheckImages and
// CheckMasks.
TrainSummary TrainSegmentationEpochs(torch::jit::Module& module, torch::Device device,
                                     const ImageSet& data, const TrainOptions& options,
                                     torch::optim::Optimizer& optimizer, at::Generator& generator,
                                     const GradientCorrection& correction);

// Predicted masks (sigmoid > 1/2, i.e. logit > 0) of every image, in
// Predictions::masks, and in Predictions::loss the loss above with the
// soft Dice pooled over the whole set rather than per batch (so it does
// not depend on batch_size): mean BCE + 1 - soft Dice; NaN when `data`
// has no masks. Masks, when present, must have passed CheckMasks.
// `forward` maps a float N,C,H,W batch on `device` to mask logits N,1,H,W
// (a TorchScript module in eval mode, or a mobile one), as for
// PredictInBatches (torch_support.h).
Predictions PredictSegmentation(const ImageSet& data, torch::Device device, int batch_size,
                                const std::function<torch::Tensor(const torch::Tensor&)>& forward);

// The string attribute that marks a user's module as a segmentation model
// (built-in ones are known by their ModelInfo). A .ptl's metadata keeps it
// as "task" (mobile_model.h).
inline constexpr char kTaskAttribute[] = "fedmi_task";
inline constexpr char kSegmentationTask[] = "segmentation";

// Whether a model of `arch` segments: a built-in architecture when its
// ModelInfo says ModelTask::kSegmentation, a user's module (kCustomModel)
// when its task attribute `task` is kSegmentationTask.
bool IsSegmentationModel(const std::string& arch, const std::string& task);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_SEGMENTATION_H_
