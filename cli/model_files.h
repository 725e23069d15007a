// Model files with model code (LibTorch, fedmi_cli_training): loading and
// scoring `.pt` and `.safetensors` files, writing `.pt` files, and the
// TorchModelRunner that gives `fedmi` these powers. The formats are
// described in cli/model_export.h.
//
// Used by `fedmi model export|evaluate|predict` and `fedmi explain` (through
// ModelRunner) and by `fedmi sim` to score the final global model. Free
// functions; each call owns its model, so they are safe to call from
// different threads on different files.
#ifndef FEDMI_CLI_MODEL_FILES_H_
#define FEDMI_CLI_MODEL_FILES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/model_export.h"
#include "cli/model_runner.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi::cli {

// Writes `weights` to `path` in the format its extension names. For ".pt"
// the architecture is rebuilt from `info` (InvalidArgument for an
// architecture LocalModel does not know, e.g. "synthetic") and must accept
// the weights' names and shapes.
absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info);

// Loads a .pt or .safetensors model file (a .ptl is inference-only: see
// PredictModelFile). NotFound "model file <path> does not
// exist"; InvalidArgument for an unknown extension, a safetensors file
// without "arch"/"num_classes" metadata, or weights that do not fit the
// architecture; the loaders' errors otherwise.
absl::StatusOr<std::unique_ptr<ml::LocalModel>> LoadModelFile(const std::string& path);

// A loaded model file and its metadata (see SplitPredictions::metadata).
struct LoadedModelFile {
  std::unique_ptr<ml::LocalModel> model;
  std::map<std::string, std::string> metadata;
};

// LoadModelFile, keeping the file's metadata; the same errors.
absl::StatusOr<LoadedModelFile> LoadModelFileWithMetadata(const std::string& path);

// Scores `model` on `data` (binary labels), predicting class 1 when
// P(class 1) >= threshold; the result keeps the labels and probabilities
// (no metadata). InvalidArgument for empty data or labels outside {0, 1}.
absl::StatusOr<ModelEvaluation> EvaluateModel(ml::LocalModel& model, const ImageSet& data,
                                              double threshold = 0.5);

// A model file's predictions on a split, read at the model's input
// geometry (npz_path may be any data source), with the labels and the
// file's metadata. Any kind of model file: .pt, .safetensors or .ptl
// (ml::MobileModel). Internal when the model gives a different number of
// predictions than there are images.
// A segmentation model (any kind of file) predicts masks
// (predictions.masks); `images` then holds the split as the model read it,
// with its masks when `with_masks` (the loader refuses a split without).
struct ModelFilePredictions {
  std::vector<int64_t> labels;
  ml::Predictions predictions;
  std::map<std::string, std::string> metadata;
  ImageSet images;  // segmentation models only
};
absl::StatusOr<ModelFilePredictions> PredictModelFile(const std::string& model_path,
                                                      const std::string& npz_path,
                                                      const std::string& split,
                                                      bool with_masks = true);

// PredictModelFile scored as EvaluateModel scores; the result carries the
// file's metadata. A segmentation model is scored on the split's masks
// instead (ModelEvaluation::segmentation, with HD95); InvalidArgument when
// the split has none.
absl::StatusOr<ModelEvaluation> EvaluateModelOnSplit(const std::string& model_path,
                                                     const std::string& npz_path,
                                                     const std::string& split = "test",
                                                     double threshold = 0.5);

// ExportModelToFile of cli/model_export.h, writing ".pt" with model code.
absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, std::string* summary);

// The ModelRunner backed by ml::LocalModel.
class TorchModelRunner : public ModelRunner {
 public:
  void SetThreads(int threads) override;
  absl::Status WriteTorchScript(const std::string& path, const TensorBundle& weights,
                                const ModelFileInfo& info) override;
  absl::StatusOr<TensorBundle> ReadWeights(const std::string& path) override;
  absl::Status WriteMobileModel(const std::string& path, const TensorBundle& weights,
                                const ModelFileInfo& info, bool quantize_int8) override;
  absl::Status ConvertToMobile(const std::string& model_path, const std::string& out,
                               bool quantize_int8) override;
  absl::StatusOr<std::map<std::string, std::string>> ReadModelMetadata(
      const std::string& path) override;
  absl::StatusOr<ModelEvaluation> EvaluateOnSplit(const std::string& model_path,
                                                  const std::string& npz_path,
                                                  const std::string& split,
                                                  double threshold) override;
  absl::StatusOr<SplitPredictions> PredictSplit(const std::string& model_path,
                                                const std::string& npz_path,
                                                const std::string& split) override;
  absl::StatusOr<SplitExplanations> ExplainSplit(const ExplainRequest& request) override;
  absl::StatusOr<int64_t> ParameterCount(const std::string& arch, int64_t channels,
                                         int64_t num_classes, int64_t side) override;
  absl::StatusOr<ImageEmbeddings> EmbedImages(const std::string& model_path,
                                              const ImageSet& images) override;
};

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_FILES_H_
