// Mobile model files (".ptl"): a model for PyTorch's lite interpreter
// (PyTorch Mobile on Android and iOS, torch.jit.mobile in Python), written
// by LocalModel::SaveForMobile and read back by MobileModel.
//
// The file holds only what inference needs: the model frozen in eval mode
// (weights folded into forward; training and DP methods dropped), saved
// with torch::jit::Module::_save_for_mobile. fedmi's metadata travels in the
// archive's extra file kMobileMetadataFile, a JSON object of strings: the
// same keys LocalModel::Metadata() gives for a ".pt" (arch, dp_*,
// operating_threshold...) plus num_classes, channels, height, width and
// "quantization" (see MobileQuantizationName). A user's segmentation
// module's "task" attribute travels as the key "task", so its file, like a
// U-Net's, predicts masks.
//
// With MobileQuantization::kDynamicInt8 every linear layer whose weight is
// a constant of the frozen forward becomes quantized::linear_dynamic: its
// weight is stored as int8 (symmetric, one scale per output channel) and
// the layer's input is quantized to 8 bits per batch at run time (dynamic
// quantization, as torch.ao.quantization.quantize_dynamic does for
// nn.Linear). Convolutions stay float: LibTorch has no dynamic quantized
// convolution, and static quantization would need calibration data.
//
// This header includes no LibTorch header (torch::jit::Module is only
// forward-declared). Not thread-safe: one MobileModel per thread. LibTorch
// exceptions are caught and returned as Status.
#ifndef FEDMI_CLIENT_ML_MOBILE_MODEL_H_
#define FEDMI_CLIENT_ML_MOBILE_MODEL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace fedmi::ml {

// The extra file of a ".ptl" that holds fedmi's metadata (JSON). In Python:
// torch.jit.mobile._load_for_lite_interpreter does not return extra files,
// but the .ptl is a zip archive: zipfile.ZipFile(path) has it under
// "<archive>/extra/fedmi_metadata.json".
inline constexpr char kMobileMetadataFile[] = "fedmi_metadata.json";

// "none" and "dynamic_int8": the value of the "quantization" metadata key.
std::string MobileQuantizationName(MobileQuantization quantization);

// The LibTorch quantized engines this build supports ("fbgemm", "qnnpack");
// empty when it can run no int8 layers.
std::vector<std::string> SupportedQuantizedEngines();

// A model loaded from a ".ptl" file for inference.
class MobileModel {
 public:
  // NotFound when `path` does not exist; InvalidArgument when it is not a
  // mobile model archive (e.g. a ".pt" or a corrupt file) or lacks fedmi's
  // metadata.
  static absl::StatusOr<std::unique_ptr<MobileModel>> Load(const std::string& path);
  ~MobileModel();

  // Architecture and input geometry, from the file's metadata (seed 0).
  const ModelConfig& config() const;
  // Every key of the file's metadata (see above).
  const std::map<std::string, std::string>& metadata() const;
  // As LocalModel::is_segmentation: a U-Net, or a user's module whose
  // metadata has "task" = "segmentation".
  bool is_segmentation() const;

  // As LocalModel::Predict (a segmentation model predicts masks, and `data`
  // may have masks or not): InvalidArgument for images of another geometry,
  // labels outside [0, num_classes) or malformed masks.
  absl::StatusOr<Predictions> Predict(const ImageSet& data, int batch_size = 256);

 private:
  struct Impl;
  explicit MobileModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Internal to fedmi_ml (LocalModel::SaveForMobile): writes `module` (which
// is not changed) as a ".ptl" to a temp file renamed to `path`.
// `metadata` is written as described above, with `config`'s keys added.
// FailedPrecondition for kDynamicInt8 when LibTorch has no quantized engine.
absl::Status SaveModuleForMobile(const torch::jit::Module& module, const ModelConfig& config,
                                 const std::string& path,
                                 const std::map<std::string, std::string>& metadata,
                                 MobileQuantization quantization);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_MOBILE_MODEL_H_
