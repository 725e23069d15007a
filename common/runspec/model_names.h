// The models a run can name (RunSpec.model): the architectures sites train
// with LibTorch (client/ml builds them from these names) and "synthetic",
// the benchmark model that needs neither data nor LibTorch. The CLI
// validates `run start --model` against this list without linking LibTorch.
//
// Constants and pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_
#define FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fedmi {

inline constexpr char kCnnModel[] = "cnn";
// The CNN with GroupNorm in place of BatchNorm: each example is normalised on
// its own, so per-example gradients (DP-SGD) exist.
inline constexpr char kCnnGroupNormModel[] = "cnn-gn";
inline constexpr char kResNet18Model[] = "resnet18";
// torchvision's ImageNet networks, with torchvision's tensor names.
inline constexpr char kDenseNet121Model[] = "densenet121";
inline constexpr char kResNet50Model[] = "resnet50";
inline constexpr char kMobileNetV2Model[] = "mobilenet_v2";
// U-Net for binary segmentation (mask logits), named after torch.hub's
// mateuszbuda/brain-segmentation-pytorch.
inline constexpr char kUNetModel[] = "unet";
inline constexpr char kSyntheticModel[] = "synthetic";
// What a run trains when its spec names no model.
inline constexpr char kDefaultModel[] = "cnn";

// U-Net's shape when a run leaves it out (mateuszbuda/brain-segmentation-
// pytorch): 32 channels in the first block, 4 poolings.
inline constexpr int kUNetDefaultBaseWidth = 32;
inline constexpr int kUNetDefaultDepth = 4;
inline constexpr int kUNetMaxBaseWidth = 256;
inline constexpr int kUNetMaxDepth = 6;
// Channels of the deepest block, base width x 2^depth. The parameters grow
// with its square: 2048 is about 124 million (0.5 GB in float32; the hub's
// default is 512). Without it width 256 and depth 6, each in range, would
// ask every site for about 8 billion.
inline constexpr int kUNetMaxBottleneckWidth = 2048;

enum class ModelTask {
  kClassification,  // logits [N, num_classes]
  kSegmentation,    // mask logits [N, 1, H, W] (num_classes == 2)
};

// What a caller may know of an architecture without building it.
struct ModelInfo {
  const char* name;
  ModelTask task;
  int min_side;       // smallest image height/width the network accepts
  int default_side;   // the size it was designed for (ImageNet: 224)
  int side_multiple;  // sides must be multiples of this (U-Net: 2^depth at the default depth)
  bool dp_compatible;
  const char* description;
};

// The architectures client/ml can build, in its registry order.
const std::vector<ModelInfo>& TrainableModels();
// nullptr for a name that is not in TrainableModels().
const ModelInfo* FindModelInfo(absl::string_view name);
// "classification" or "segmentation".
const char* ModelTaskName(ModelTask task);

// TrainableModels()' names: "cnn", "cnn-gn", "resnet18", "densenet121",
// "resnet50", "mobilenet_v2", "unet".
std::vector<std::string> TrainableModelNames();

// Every model a run spec may name: TrainableModelNames() then "synthetic".
std::vector<std::string> RunModelNames();

// The architectures whose examples never interact in a forward pass (no
// BatchNorm), so sample-level DP-SGD can clip each example's gradient:
// "cnn-gn".
std::vector<std::string> DpCompatibleModelNames();

// Whether architecture `name` (one of TrainableModels()) can be built for
// `height` x `width` images with the given U-Net shape, where 0 means the
// default and any other value is refused for other architectures; a U-Net's
// bottleneck is at most kUNetMaxBottleneckWidth channels. Names the
// problem: "unet of depth 4 needs image sides divisible by 16, got 28x28".
// The coordinator checks a run with it, sites the model they build.
absl::Status CheckArchitectureShape(absl::string_view name, int64_t height, int64_t width,
                                    int64_t unet_base_width, int64_t unet_depth);

bool IsTrainableModel(absl::string_view name);
bool IsDpCompatibleModel(absl::string_view name);
bool IsRunModel(absl::string_view name);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_
