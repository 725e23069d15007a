// Class-activation maps for a TorchScript model file: which parts of an
// image a convolutional layer's evidence for one class comes from.
//
//   Grad-CAM (Selvaraju et al. 2017): the layer's activations A_k (k over
//   channels) weighted by the spatial mean of d(logit_c)/dA_k, summed over
//   k, ReLU.
//   Grad-CAM++ (Chattopadhay et al. 2018): the same sum with each channel
//   weighted by sum_ij alpha_ij * ReLU(dS/dA_ij), alpha from the closed form
//   for S = exp(logit_c): alpha = g^2 / (2 g^2 + sum_ab A_ab * g^3), g the
//   gradient of the logit.
//
// Either map is upsampled bilinearly to the input's height and width and
// scaled to [0, 1] per image. A map with no peak (0 everywhere, as when
// every channel's weighted sum is negative, or constant) stays 0 and has no
// peak; so does one that is not finite (a model giving NaN), which is
// flagged: a first maximum of such a map would be pixel (0, 0) and mean
// nothing.
//
// Which layer: built-in architectures define forward_with_feature and name
// their explainable layers (architectures.h, kExplainLayersAttr). The
// default is the last of them whose map is at least 7 x 7 at the input's
// size (the last one, kExplainLayerAttr, at 224 x 224; an earlier one at
// 28 x 28, where the last is too coarse to point with), else the one with
// the largest map. Any other TorchScript module needs a layer: a
// submodule path such as "layer4" or "features.7", whose output must be
// computed in `forward` (or a method it calls) outside control flow; the
// last call counts when the submodule is called more than once.
//
// Inputs are scaled as for training (uint8 to [-1, 1], see
// torch_support.h's ToModelInput), on the CPU, with the model in eval mode.
//
// This header includes no LibTorch header. Functions are thread-compatible:
// each call loads its own copy of the model. LibTorch's exceptions are
// caught inside and returned as Status.
#ifndef FEDMI_CLIENT_ML_EXPLAIN_H_
#define FEDMI_CLIENT_ML_EXPLAIN_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/dataset.h"

namespace fedmi::ml {

enum class CamMethod { kGradCam, kGradCamPlusPlus };

// "gradcam" | "gradcam++".
const char* CamMethodName(CamMethod method);
// InvalidArgument for any other name, listing the known ones.
absl::StatusOr<CamMethod> ParseCamMethod(const std::string& name);

struct ExplainOptions {
  CamMethod method = CamMethod::kGradCam;
  // Empty: the model's default explainable layer; required for modules
  // without forward_with_feature.
  std::string layer;
  // The class whose logit is explained. Unset: class 1 for two-class
  // models (the positive finding), each image's predicted class otherwise.
  std::optional<int64_t> target_class;
  int batch_size = 32;
  // Called after each batch with images done and images in all; may be empty.
  std::function<void(int64_t, int64_t)> progress;
};

// The first maximum of a heat-map, in input-pixel coordinates.
struct CamPeak {
  int64_t row = 0;
  int64_t col = 0;
  float value = 0;
};

struct ImageCam {
  int64_t target_class = 0;
  float probability = 0;  // softmax probability of target_class
  // data.height x data.width, row-major, in [0, 1]; 0 everywhere without a
  // peak.
  std::vector<float> heatmap;
  // Unset when no pixel stands out: the map is 0 everywhere (no evidence
  // for the class at this layer) or constant, or not finite.
  std::optional<CamPeak> peak;
  // False when the layer's map had a NaN or an infinity (heatmap is then 0).
  bool finite = true;
};

struct CamResult {
  std::string layer;           // the layer used
  int64_t feature_height = 0;  // the layer's spatial size
  int64_t feature_width = 0;
  std::vector<ImageCam> images;  // one per image of the data, in order
};

// What a model file offers explanations: its named layers (empty for a
// module without forward_with_feature), default layer, and its input
// geometry when it stores fedmi's config attributes.
struct ExplainableModelInfo {
  std::vector<std::string> layers;
  // The layer used when none is given, at the stored input size (empty
  // without one).
  std::string default_layer;
  std::optional<int64_t> height, width, channels;
  // Every submodule path (named_modules(), the root left out).
  std::vector<std::string> submodules;
};

// NotFound for a missing file; InvalidArgument for one that is not a
// TorchScript archive.
absl::StatusOr<ExplainableModelInfo> DescribeExplainableModel(const std::string& model_path);

// One map per image of `data`, which must match the model's input geometry.
// InvalidArgument for: an unknown method, a layer that is not among the
// built-in model's names or (other modules) not a submodule called in
// forward (each listing the valid ones), no layer for a module without
// forward_with_feature, a target class outside the model's classes, a layer
// whose output is not N x C x H x W, or empty data. NotFound for a missing
// file.
absl::StatusOr<CamResult> ExplainModelFile(const std::string& model_path, const ImageSet& data,
                                           const ExplainOptions& options);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_EXPLAIN_H_
