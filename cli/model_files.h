// Model files as `fedmi` writes and reads them:
//  - ".pt": a TorchScript archive (LocalModel::SaveTorchScript) that
//    torch.jit.load opens without fedmi code; it carries its ModelConfig.
//  - ".safetensors": the weights in wire order, with "__metadata__"
//    {"arch", "num_classes", "run", "round", "fedmi_version"}; arch and
//    num_classes are what it takes to rebuild the model.
//
// Used by `fedmi model export|evaluate|predict` and by `fedmi sim` to score
// the final global model. Free functions; each call owns its model, so they
// are safe to call from different threads on different files.
#ifndef FEDMI_CLI_MODEL_FILES_H_
#define FEDMI_CLI_MODEL_FILES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/data/metrics.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi::cli {

class AdminClient;

enum class ModelFileKind { kTorchScript, kSafetensors };

// From the file name's extension; InvalidArgument naming the allowed
// extensions (".pt", ".safetensors") otherwise.
absl::StatusOr<ModelFileKind> ModelFileKindOf(const std::string& path);

// Where a set of weights came from, written into a model file.
struct ModelFileInfo {
  std::string arch = "cnn";
  int64_t num_classes = 2;
  int64_t run_id = 0;
  int32_t round = 0;
  uint64_t seed = 0;  // only seeds the throwaway initial weights of a .pt
};

// The safetensors "__metadata__" for `info`.
std::map<std::string, std::string> SafetensorsMetadata(const ModelFileInfo& info);

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

struct ModelEvaluation {
  BinaryMetrics metrics;  // NaN where undefined (see common/metrics.h)
  double loss = 0;        // mean cross-entropy
};

// Scores `model` on `data` (binary labels), predicting class 1 when
// P(class 1) >= threshold. InvalidArgument for empty data or labels outside
// {0, 1}.
absl::StatusOr<ModelEvaluation> EvaluateModel(ml::LocalModel& model, const ImageSet& data,
                                              double threshold = 0.5);

// LoadModelFile(model_path), LoadNpzSplit(npz_path, split), EvaluateModel.
absl::StatusOr<ModelEvaluation> EvaluateModelOnSplit(const std::string& model_path,
                                                     const std::string& npz_path,
                                                     const std::string& split = "test",
                                                     double threshold = 0.5);

// Downloads the global model of `round` (< 0: the latest) of run `run_id`
// and writes it to `out` (.pt or .safetensors), taking arch and num_classes
// from the run's spec. On success `*summary` (if given) describes what was
// written: path, round, tensors, bytes, SHA-256 of the file and of the
// weights. InvalidArgument for an unknown extension, before any download.
absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, std::string* summary);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_FILES_H_
