// Model files with model code (LibTorch, fedmi_cli_training): loading and
// scoring `.pt` and `.safetensors` files, writing `.pt` files, and the
// TorchModelRunner that gives `fedmi` these powers. The formats are
// described in cli/model_export.h.
//
// Used by `fedmi model export|evaluate|predict` (through ModelRunner) and by
// `fedmi sim` to score the final global model. Free functions; each call
// owns its model, so they are safe to call from different threads on
// different files.
#ifndef FEDMI_CLI_MODEL_FILES_H_
#define FEDMI_CLI_MODEL_FILES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

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

// Loads either kind of model file. NotFound "model file <path> does not
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

// LoadModelFileWithMetadata(model_path), LoadDataSplit(npz_path, split) at
// the model's input geometry (npz_path may be any data source),
// EvaluateModel; the result carries the file's metadata.
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
  absl::StatusOr<ModelEvaluation> EvaluateOnSplit(const std::string& model_path,
                                                  const std::string& npz_path,
                                                  const std::string& split,
                                                  double threshold) override;
  absl::StatusOr<SplitPredictions> PredictSplit(const std::string& model_path,
                                                const std::string& npz_path,
                                                const std::string& split) override;
  absl::StatusOr<int64_t> ParameterCount(const std::string& arch, int64_t channels,
                                         int64_t num_classes, int64_t side) override;
};

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_FILES_H_
