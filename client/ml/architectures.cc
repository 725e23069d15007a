#include "client/ml/architectures.h"

#include <torch/script.h>

#include <cmath>
#include <functional>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/ml/architecture_builders.h"
#include "client/ml/local_model.h"
#include "client/ml/script_builder.h"
#include "common/base/status.h"
#include "common/runspec/model_file_format.h"
#include "common/runspec/model_names.h"

namespace fedmi::ml {
namespace {

constexpr char kArchAttr[] = "fedmi_arch";
constexpr char kNumClassesAttr[] = "fedmi_num_classes";
constexpr char kChannelsAttr[] = "fedmi_channels";
constexpr char kHeightAttr[] = "fedmi_height";
constexpr char kWidthAttr[] = "fedmi_width";
constexpr char kSeedAttr[] = "fedmi_seed";
// Added with the U-Net; older models lack them and read back as 0.
constexpr char kBaseWidthAttr[] = "fedmi_base_width";
constexpr char kDepthAttr[] = "fedmi_depth";
// 16, 32 and 64 channels split into groups of 2, 4 and 8 (Wu and He 2018
// found 32 groups best at ImageNet widths; 8 keeps groups at least 2 wide).
constexpr int64_t kGroupNormGroups = 8;

// Three conv blocks (16, 32, 64 channels; conv, max-pool, BatchNorm, ReLU)
// and two fully connected layers: about 98k parameters for 28x28 inputs.
// Pooling before BatchNorm and a small flattened size (64 x 3 x 3) keep a
// PneumoniaMNIST epoch near 1.4 CPU-seconds even with Debian's reference
// BLAS, under which the 3136-wide first layer of the usual two-block MNIST
// net costs more than all its convolutions. Measured with
// bench/centralized_baseline, it also beat that net on test AUC (0.96-0.97
// against 0.93-0.95, with or without BatchNorm).
enum class Normalization { kBatch, kGroup };

void BuildCnnWith(Normalization normalization, const ModelConfig& config, ScriptBuilder& b) {
  const int64_t widths[] = {16, 32, 64};
  int64_t in = config.channels;
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i + 1);
    b.Statement("x = " + b.Conv("conv" + n, "x", in, widths[i], 3, 1, 1, /*bias=*/false));
    const std::string pooled = "torch.max_pool2d(x, [2, 2])";
    b.Statement("x = torch.relu(" +
                (normalization == Normalization::kBatch
                     ? b.BatchNorm("bn" + n, pooled, widths[i])
                     : b.GroupNorm("gn" + n, pooled, kGroupNormGroups, widths[i])) +
                ")");
    in = widths[i];
    b.Feature("block" + n);
  }
  const int64_t flat = in * (config.height / 8) * (config.width / 8);
  b.Statement("x = torch.flatten(x, 1)");
  b.Statement("x = torch.relu(" + b.Linear("fc1", "x", flat, 128, true) + ")");
  b.Statement("x = torch.dropout(x, 0.25, self.training)");
  b.Statement("x = " + b.Linear("fc2", "x", 128, config.num_classes, false));
}

void BuildCnn(const ModelConfig& config, ScriptBuilder& b) {
  BuildCnnWith(Normalization::kBatch, config, b);
}

// The same CNN with GroupNorm (8 groups) where it has BatchNorm, for DP-SGD.
void BuildCnnGroupNorm(const ModelConfig& config, ScriptBuilder& b) {
  BuildCnnWith(Normalization::kGroup, config, b);
}

// ResNet-18 for small images: 3x3 stride-1 stem and no max-pool, as is usual
// for 28x28 and 32x32 inputs, then 4 stages of 2 BasicBlocks.
void BuildResNet18(const ModelConfig& config, ScriptBuilder& b) {
  b.Statement("x = " + b.Conv("conv1", "x", config.channels, 64, 3, 1, 1, false));
  b.Statement("x = torch.relu(" + b.BatchNorm("bn1", "x", 64) + ")");
  int64_t in = 64;
  const int64_t widths[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t out = widths[stage];
    for (int block = 0; block < 2; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      const std::string p = absl::StrCat("layer", stage + 1, ".", block, ".");
      b.Statement("out = " + b.Conv(p + "conv1", "x", in, out, 3, stride, 1, false));
      b.Statement("out = torch.relu(" + b.BatchNorm(p + "bn1", "out", out) + ")");
      b.Statement("out = " + b.Conv(p + "conv2", "out", out, out, 3, 1, 1, false));
      b.Statement("out = " + b.BatchNorm(p + "bn2", "out", out));
      if (stride != 1 || in != out) {
        b.Statement("shortcut = " + b.Conv(p + "downsample.0", "x", in, out, 1, stride, 0, false));
        b.Statement("shortcut = " + b.BatchNorm(p + "downsample.1", "shortcut", out));
        b.Statement("x = torch.relu(out + shortcut)");
      } else {
        b.Statement("x = torch.relu(out + x)");
      }
      in = out;
    }
    b.Feature(absl::StrCat("layer", stage + 1));
  }
  b.Statement("x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)");
  b.Statement("x = " + b.Linear("fc", "x", 512, config.num_classes, false));
}

struct Architecture {
  const char* name;  // its ModelInfo (common/runspec/model_names.h) has the sizes
  void (*build)(const ModelConfig&, ScriptBuilder&);
  const char* class_name;
};

constexpr Architecture kArchitectures[] = {
    {kCnnModel, BuildCnn, "__torch__.fedmi.Cnn"},
    {kCnnGroupNormModel, BuildCnnGroupNorm, "__torch__.fedmi.CnnGroupNorm"},
    {kResNet18Model, BuildResNet18, "__torch__.fedmi.ResNet18"},
    {kDenseNet121Model, BuildDenseNet121, "__torch__.fedmi.DenseNet121"},
    {kResNet50Model, BuildResNet50, "__torch__.fedmi.ResNet50"},
    {kMobileNetV2Model, BuildMobileNetV2, "__torch__.fedmi.MobileNetV2"},
    {kUNetModel, BuildUNet, "__torch__.fedmi.UNet"},
};

// Fills in the U-Net's defaults and checks the config; the result is what
// the module stores.
absl::StatusOr<ModelConfig> EffectiveConfig(const ModelConfig& config, const ModelInfo& info) {
  ModelConfig effective = config;
  if (effective.num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes is ", effective.num_classes, "; need at least 2"));
  }
  if (effective.channels < 1) {
    return absl::InvalidArgumentError(absl::StrCat("channels is ", effective.channels));
  }
  RETURN_IF_ERROR(CheckArchitectureShape(info.name, effective.height, effective.width,
                                         effective.base_width, effective.depth));
  if (config.arch == kUNetModel) {
    if (effective.base_width == 0) effective.base_width = kUNetDefaultBaseWidth;
    if (effective.depth == 0) effective.depth = kUNetDefaultDepth;
  }
  return effective;
}

}  // namespace

std::string WireName(const std::string& attribute_name) {
  return absl::StrReplaceAll(attribute_name, {{"__", "."}});
}

void WriteConfigAttributes(const ModelConfig& config, torch::jit::Module* module) {
  module->register_attribute(kArchAttr, c10::StringType::get(), config.arch);
  module->register_attribute(kNumClassesAttr, c10::IntType::get(), config.num_classes);
  module->register_attribute(kChannelsAttr, c10::IntType::get(), config.channels);
  module->register_attribute(kHeightAttr, c10::IntType::get(), config.height);
  module->register_attribute(kWidthAttr, c10::IntType::get(), config.width);
  // TorchScript has no unsigned integers; the seed round-trips bit for bit.
  module->register_attribute(kSeedAttr, c10::IntType::get(), static_cast<int64_t>(config.seed));
}

absl::Status BuildArchitecture(const ModelConfig& config, torch::jit::Module* module) {
  const Architecture* arch = nullptr;
  for (const Architecture& candidate : kArchitectures) {
    if (config.arch == candidate.name) arch = &candidate;
  }
  if (arch == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown architecture '", config.arch,
                     "'; known: ", absl::StrJoin(TrainableModelNames(), ", ")));
  }
  const ModelInfo* info = FindModelInfo(config.arch);
  if (info == nullptr) return absl::InternalError("architecture without ModelInfo");
  absl::StatusOr<ModelConfig> effective = EffectiveConfig(config, *info);
  if (!effective.ok()) return effective.status();

  torch::NoGradGuard no_grad;
  torch::jit::Module built{c10::QualifiedName(arch->class_name)};
  built.register_attribute("training", c10::BoolType::get(), true);
  WriteConfigAttributes(config, &built);
  built.register_attribute(kBaseWidthAttr, c10::IntType::get(), effective->base_width);
  built.register_attribute(kDepthAttr, c10::IntType::get(), effective->depth);
  ScriptBuilder builder(&built, config.seed);
  arch->build(*effective, builder);
  builder.DefineForward();
  *module = built;  // Module is a handle: copying it shares the object
  return absl::OkStatus();
}

void DefineInferenceMethods(const ModelConfig& config, bool segmentation,
                            torch::jit::Module* module) {
  // The input's shape is read from the module's config attributes when
  // called, not baked in, so a module saved again for another input stays
  // right. define() resolves `torch` to ATen builtins only: a dtype is its
  // ScalarType number, and exceptions are assertions.
  if (!module->find_method(kPreprocessMethod).has_value()) {
    if (!module->hasattr(kChannelsAttr) || !module->hasattr(kHeightAttr) ||
        !module->hasattr(kWidthAttr)) {
      WriteConfigAttributes(config, module);
    }
    module->define(absl::StrFormat(
        R"(def %s(self, pixels: Tensor) -> Tensor:
    x = pixels.to(%d)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    assert x.dim() == 4, "preprocess takes raw pixel values (0-255), N x H x W or N x C x H x W"
    channels = self.%s
    if x.size(1) == 1 and channels > 1:
        x = x.expand(-1, channels, -1, -1)
    assert x.size(1) == channels and x.size(2) == self.%s and x.size(3) == self.%s, "this model takes {} x {} x {} images (C x H x W), not {} x {} x {}; resize them first".format(channels, self.%s, self.%s, x.size(1), x.size(2), x.size(3))
    return (x / %.17g - %.17g) / %.17g
)",
        kPreprocessMethod, static_cast<int>(c10::ScalarType::Float), kChannelsAttr, kHeightAttr,
        kWidthAttr, kHeightAttr, kWidthAttr, kPixelScale, kInputMean, kInputStd));
  }
  if (!module->find_method(kPredictProbaMethod).has_value()) {
    module->define(absl::StrFormat(
        R"(def %s(self, pixels: Tensor) -> Tensor:
    return %s(self.forward(self.%s(pixels))%s)
)",
        kPredictProbaMethod, segmentation ? "torch.sigmoid" : "torch.softmax", kPreprocessMethod,
        segmentation ? "" : ", 1"));
  }
}

absl::Status ReadConfigAttributes(const torch::jit::Module& module, ModelConfig* config) {
  auto get = [&](const char* name, bool is_string, c10::IValue* value) -> absl::Status {
    if (!module.hasattr(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model has no attribute '", name, "'; was it written by fedmi?"));
    }
    *value = module.attr(name);
    if (is_string ? !value->isString() : !value->isInt()) {
      return absl::InvalidArgumentError(absl::StrCat("model attribute '", name, "' has type ",
                                                     value->tagKind(), ", expected ",
                                                     is_string ? "str" : "int"));
    }
    return absl::OkStatus();
  };
  c10::IValue value;
  if (auto s = get(kArchAttr, true, &value); !s.ok()) return s;
  config->arch = value.toStringRef();
  const std::pair<const char*, int64_t*> ints[] = {{kNumClassesAttr, &config->num_classes},
                                                   {kChannelsAttr, &config->channels},
                                                   {kHeightAttr, &config->height},
                                                   {kWidthAttr, &config->width}};
  for (const auto& [name, field] : ints) {
    if (auto s = get(name, false, &value); !s.ok()) return s;
    *field = value.toInt();
  }
  if (auto s = get(kSeedAttr, false, &value); !s.ok()) return s;
  config->seed = static_cast<uint64_t>(value.toInt());
  // Optional: models saved before the U-Net lack them.
  config->base_width = 0;
  config->depth = 0;
  for (const auto& [name, field] :
       {std::pair<const char*, int64_t*>{kBaseWidthAttr, &config->base_width},
        std::pair<const char*, int64_t*>{kDepthAttr, &config->depth}}) {
    if (!module.hasattr(name)) continue;
    if (auto s = get(name, false, &value); !s.ok()) return s;
    *field = value.toInt();
  }
  return absl::OkStatus();
}

}  // namespace fedmi::ml
