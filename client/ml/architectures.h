// Internal to fedmi_ml: the registry of model architectures, each built as a
// TorchScript module with functional ops, so that a saved model runs in C++
// and Python without fedmi code.
//
// This header names torch::jit::Module only by a forward declaration, so it
// can be included without LibTorch's headers; only architectures.cc and
// local_model.cc include those.
#ifndef FEDMI_CLIENT_ML_ARCHITECTURES_H_
#define FEDMI_CLIENT_ML_ARCHITECTURES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace fedmi::ml {

struct ModelConfig;

// Replaces `*module` with a freshly initialised module of `config.arch` (one
// of TrainableModelNames() in common/runspec/model_names.h), in
// training mode, on the CPU. Weights are a pure function of the config: they
// are drawn from a generator seeded with config.seed (Kaiming init), not
// from LibTorch's global generator. The config is stored as module
// attributes (see ReadConfigAttributes).
//
// InvalidArgument for an unknown architecture (listing the known ones) or a
// config the architecture cannot serve (e.g. fewer than two classes).
// Throws c10::Error only on LibTorch failures; callers convert it.
absl::Status BuildArchitecture(const ModelConfig& config, torch::jit::Module* module);

// Stores `config` as the module's attributes (fedmi_arch, fedmi_num_classes,
// ...), as BuildArchitecture does; also for a user's module, so that a
// saved custom model says what it was trained for.
void WriteConfigAttributes(const ModelConfig& config, torch::jit::Module* module);

// Gives `module` the methods every .pt fedmi writes has beside forward
// (common/runspec/model_file_format.h), for the input its fedmi_channels,
// fedmi_height and fedmi_width attributes name when called (written from
// `config` if the module lacks them):
//   preprocess(pixels) takes raw pixel values (uint8 or float, 0-255),
//     N x H x W or N x C x H x W (one channel is repeated for a colour
//     model), and returns forward's input, normalized as training does;
//   predict_proba(pixels) = softmax(forward(preprocess(pixels))) over the
//     classes, or for a segmentation model each pixel's sigmoid.
// A method the module already has (a loaded fedmi file, a user's module
// with its own) is kept as it is. Throws c10::Error on LibTorch failures.
void DefineInferenceMethods(const ModelConfig& config, bool segmentation,
                            torch::jit::Module* module);

// Recovers the config stored by BuildArchitecture(); InvalidArgument when
// the module lacks an attribute or holds one of the wrong type.
absl::Status ReadConfigAttributes(const torch::jit::Module& module, ModelConfig* config);

// Tensor attributes are named like `layer1__0__conv1__weight`, because
// TorchScript attribute names cannot contain dots. On the wire and in
// bundles they are PyTorch-style dotted names: `layer1.0.conv1.weight`.
std::string WireName(const std::string& attribute_name);

// The method of DP-compatible architectures (IsDpCompatibleModel) that takes
// the input and one copy of every parameter per example, in wire order, each
// with a leading batch dimension: per_example_forward(x, p: List[Tensor]).
inline constexpr char kPerExampleForwardMethod[] = "per_example_forward";

// The methods of DP-compatible architectures that give per-example gradients
// from one batched backward pass:
//   forward_with_activations(x) -> (logits, a: List[Tensor], z: List[Tensor])
// lists what each layer with parameters saw (a) and produced (z), and
//   per_example_gradients(a, g: List[Tensor]) -> List[Tensor]
// turns g, the gradients of the summed loss with respect to each z, into
// each example's gradient of every parameter, in wire order, each of shape
// [n, parameter shape...]. Two more take the same lists and give what
// clipping needs without forming every per-example gradient:
//   per_example_squared_norms(a, g) -> Tensor
// each example's squared gradient norm, all parameters together ([n]), and
//   weighted_gradients(a, g, weights: Tensor) -> List[Tensor]
// sum_i weights[i] * (example i's gradient), one tensor per parameter in
// wire order. Modules saved before these methods existed lack them.
inline constexpr char kForwardWithActivationsMethod[] = "forward_with_activations";
inline constexpr char kPerExampleGradientsMethod[] = "per_example_gradients";
inline constexpr char kPerExampleSquaredNormsMethod[] = "per_example_squared_norms";
inline constexpr char kWeightedGradientsMethod[] = "weighted_gradients";

// Built-in architectures name the layers an explanation may look at
// (ScriptBuilder::Feature) and define
//   forward_with_feature(x, layer: str) -> (logits, that layer's output)
// with the names, comma-separated, in the string attribute
// kExplainLayersAttr and the default one (the last convolutional block) in
// kExplainLayerAttr. Modules saved before these existed lack them.
inline constexpr char kForwardWithFeatureMethod[] = "forward_with_feature";
inline constexpr char kExplainLayersAttr[] = "fedmi_explain_layers";
inline constexpr char kExplainLayerAttr[] = "fedmi_explain_layer";

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_ARCHITECTURES_H_
