// Internal to fedmi_ml's architecture files: the build functions that
// architectures.cc's registry lists but that live in other files. Each
// writes its layers with ScriptBuilder (script_builder.h, which includes
// LibTorch); this header does not.
#ifndef FEDMI_CLIENT_ML_ARCHITECTURE_BUILDERS_H_
#define FEDMI_CLIENT_ML_ARCHITECTURE_BUILDERS_H_

#include <cstdint>

namespace fedmi::ml {

struct ModelConfig;
class ScriptBuilder;

// architectures_imagenet.cc: torchvision's ImageNet networks, with
// torchvision's parameter and buffer names and shapes (less the int64
// num_batches_tracked buffers), and the U-Net. The config is the effective
// one (U-Net's base_width and depth resolved and checked).
void BuildDenseNet121(const ModelConfig& config, ScriptBuilder& b);
void BuildResNet50(const ModelConfig& config, ScriptBuilder& b);
void BuildMobileNetV2(const ModelConfig& config, ScriptBuilder& b);
void BuildUNet(const ModelConfig& config, ScriptBuilder& b);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_ARCHITECTURE_BUILDERS_H_
