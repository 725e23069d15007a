#include "client/ml/segmentation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/ml/torch_support.h"
#include "client/ml/training_recipe.h"
#include "common/runspec/model_names.h"
#include "common/runspec/transfer.h"

namespace fedmi::ml {
namespace {

// Additive smoothing of the soft Dice.
constexpr double kDiceSmooth = 1.0;

}  // namespace

bool IsSegmentationModel(const std::string& arch, const std::string& task) {
  if (arch == kCustomModel) return task == kSegmentationTask;
  const ModelInfo* info = FindModelInfo(arch);
  return info != nullptr && info->task == ModelTask::kSegmentation;
}

absl::Status CheckMasks(const ImageSet& data) {
  const int64_t pixels = data.size() * data.height * data.width;
  if (!data.has_masks()) {
    return absl::InvalidArgumentError(
        "a segmentation model needs masks, and this data set has none");
  }
  if (static_cast<int64_t>(data.masks.size()) != pixels) {
    return absl::InvalidArgumentError(absl::StrCat("data set has ", data.masks.size(),
                                                   " mask bytes for ", data.size(), " images of ",
                                                   data.height, "x", data.width, " pixels"));
  }
  const auto bad =
      std::find_if(data.masks.begin(), data.masks.end(), [](uint8_t value) { return value > 1; });
  if (bad != data.masks.end()) {
    return absl::InvalidArgumentError(absl::StrCat("mask byte ", bad - data.masks.begin(), " is ",
                                                   static_cast<int>(*bad), ", not 0 or 1"));
  }
  return absl::OkStatus();
}

torch::Tensor MaskView(const ImageSet& data) {
  return torch::from_blob(const_cast<uint8_t*>(data.masks.data()),
                          {data.size(), 1, data.height, data.width}, torch::kUInt8);
}

torch::Tensor SegmentationLoss(const torch::Tensor& logits, const torch::Tensor& masks) {
  const torch::Tensor probabilities = torch::sigmoid(logits);
  const torch::Tensor dice = (2 * (probabilities * masks).sum() + kDiceSmooth) /
                             (probabilities.sum() + masks.sum() + kDiceSmooth);
  return (1 - dice) + torch::binary_cross_entropy_with_logits(logits, masks);
}

TrainSummary TrainSegmentationEpochs(torch::jit::Module& module, torch::Device device,
                                     const ImageSet& data, const TrainOptions& options,
                                     torch::optim::Optimizer& optimizer, at::Generator& generator,
                                     const GradientCorrection& correction) {
  const torch::Tensor images = PixelView(data);
  const torch::Tensor masks = MaskView(data);
  const int64_t n = data.size();
  const double pixel_count = static_cast<double>(n) * static_cast<double>(data.height * data.width);
  return RunShuffledEpochs(n, options, generator, pixel_count, [&](const torch::Tensor& index) {
    torch::Tensor x = ToModelInput(images.index_select(0, index));
    torch::Tensor y = masks.index_select(0, index).to(torch::kFloat32);
    x = AugmentWithMask(x, options.augmentation, generator, &y);
    x = x.to(device);
    y = y.to(device);

    optimizer.zero_grad();
    torch::Tensor logits = module.forward({x}).toTensor();
    torch::Tensor loss = SegmentationLoss(logits, y);
    loss.backward();
    correction.Apply();
    optimizer.step();
    return BatchStep{loss.item<double>(),
                     logits.detach().gt(0).eq(y.gt(0.5)).sum().item<int64_t>()};
  });
}

Predictions PredictSegmentation(const ImageSet& data, torch::Device device, int batch_size,
                                const std::function<torch::Tensor(const torch::Tensor&)>& forward) {
  torch::NoGradGuard no_grad;
  const torch::Tensor pixels = PixelView(data);
  const bool with_truth = data.has_masks();
  const torch::Tensor masks = with_truth ? MaskView(data) : torch::Tensor();
  const int64_t n = data.size();
  Predictions predictions;
  predictions.masks.reserve(n * data.height * data.width);
  double bce_sum = 0;
  double overlap = 0;
  double predicted = 0;
  double truth = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    torch::Tensor x = ToModelInput(pixels.slice(0, start, end)).to(device);
    torch::Tensor logits = forward(x);
    if (with_truth) {
      torch::Tensor y = masks.slice(0, start, end).to(device, torch::kFloat32);
      bce_sum += torch::binary_cross_entropy_with_logits(logits, y, /*weight=*/{},
                                                         /*pos_weight=*/{}, at::Reduction::Sum)
                     .item<double>();
      const torch::Tensor probabilities = torch::sigmoid(logits);
      overlap += (probabilities * y).sum().item<double>();
      predicted += probabilities.sum().item<double>();
      truth += y.sum().item<double>();
    }
    const torch::Tensor mask = logits.gt(0).to(torch::kCPU, torch::kUInt8).contiguous();
    predictions.masks.insert(predictions.masks.end(), mask.data_ptr<uint8_t>(),
                             mask.data_ptr<uint8_t>() + mask.numel());
  }
  if (!with_truth) {
    predictions.loss = std::nan("");
    return predictions;
  }
  const double total_pixels = static_cast<double>(data.masks.size());
  predictions.loss =
      bce_sum / total_pixels + 1 - (2 * overlap + kDiceSmooth) / (predicted + truth + kDiceSmooth);
  return predictions;
}

}  // namespace fedmi::ml
