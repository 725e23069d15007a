#include "common/runspec/model_names.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

const std::vector<ModelInfo>& TrainableModels() {
  using T = ModelTask;
  static const auto* const kModels = new std::vector<ModelInfo>{
      {kCnnModel, T::kClassification, 8, 28, 1, false,
       "three conv blocks with BatchNorm and two dense layers (about 100k parameters at 28x28)"},
      {kCnnGroupNormModel, T::kClassification, 8, 28, 1, true,
       "the cnn with GroupNorm in place of BatchNorm, for DP-SGD"},
      {kResNet18Model, T::kClassification, 1, 28, 1, false,
       "ResNet-18 for small images (3x3 stride-1 stem, no max-pool)"},
      {kDenseNet121Model, T::kClassification, 32, 224, 1, false,
       "torchvision's DenseNet-121 (CheXNet's network)"},
      {kResNet50Model, T::kClassification, 32, 224, 1, false,
       "torchvision's ResNet-50 (Bottleneck blocks, 7x7 stride-2 stem and max-pool)"},
      {kMobileNetV2Model, T::kClassification, 16, 224, 1, false,
       "torchvision's MobileNetV2 (depthwise convolutions, ReLU6, dropout 0.2)"},
      {kUNetModel, T::kSegmentation, 16, 256, 16, false,
       "U-Net for binary segmentation (torch.hub mateuszbuda/brain-segmentation-pytorch); "
       "base width 32 and depth 4 by default, sides a multiple of 2^depth"},
  };
  return *kModels;
}

const ModelInfo* FindModelInfo(absl::string_view name) {
  for (const ModelInfo& info : TrainableModels()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

absl::Status CheckArchitectureShape(absl::string_view name, int64_t height, int64_t width,
                                    int64_t unet_base_width, int64_t unet_depth) {
  const ModelInfo* info = FindModelInfo(name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown architecture '", name, "'"));
  }
  if (height < info->min_side || width < info->min_side) {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", name, "' needs images of at least ", info->min_side, "x",
                     info->min_side, ", got ", height, "x", width));
  }
  if (name != kUNetModel) {
    if (unet_base_width != 0 || unet_depth != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("architecture '", name, "' has no U-Net base width or depth to set (got ",
                       unet_base_width, " and ", unet_depth, ")"));
    }
    return absl::OkStatus();
  }
  const int64_t base_width = unet_base_width == 0 ? kUNetDefaultBaseWidth : unet_base_width;
  const int64_t depth = unet_depth == 0 ? kUNetDefaultDepth : unet_depth;
  if (base_width < 1 || base_width > kUNetMaxBaseWidth || depth < 1 || depth > kUNetMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("unet needs a base width in [1, ", kUNetMaxBaseWidth, "] and a depth in [1, ",
                     kUNetMaxDepth, "]; got ", base_width, " and ", depth));
  }
  const int64_t bottleneck = base_width << depth;
  if (bottleneck > kUNetMaxBottleneckWidth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unet of base width ", base_width, " and depth ", depth, " has a bottleneck of ",
        base_width, " x 2^", depth, " = ", bottleneck, " channels; at most ",
        kUNetMaxBottleneckWidth, " (the parameters grow with its square)"));
  }
  const int64_t multiple = int64_t{1} << depth;
  if (height % multiple != 0 || width % multiple != 0) {
    return absl::InvalidArgumentError(absl::StrCat("unet of depth ", depth,
                                                   " needs image sides divisible by ", multiple,
                                                   ", got ", height, "x", width));
  }
  return absl::OkStatus();
}

const char* ModelTaskName(ModelTask task) {
  return task == ModelTask::kSegmentation ? "segmentation" : "classification";
}

std::vector<std::string> TrainableModelNames() {
  std::vector<std::string> names;
  for (const ModelInfo& info : TrainableModels()) names.emplace_back(info.name);
  return names;
}

std::vector<std::string> DpCompatibleModelNames() {
  std::vector<std::string> names;
  for (const ModelInfo& info : TrainableModels()) {
    if (info.dp_compatible) names.emplace_back(info.name);
  }
  return names;
}

std::vector<std::string> RunModelNames() {
  std::vector<std::string> names = TrainableModelNames();
  names.push_back(kSyntheticModel);
  return names;
}

bool IsTrainableModel(absl::string_view name) { return Contains(TrainableModelNames(), name); }

bool IsDpCompatibleModel(absl::string_view name) {
  return Contains(DpCompatibleModelNames(), name);
}

bool IsRunModel(absl::string_view name) { return Contains(RunModelNames(), name); }

}  // namespace fedmi
