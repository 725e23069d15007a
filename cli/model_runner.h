// ModelRunner: what `fedmi` does with model code (LibTorch): score and apply
// model files, write TorchScript `.pt` and mobile `.ptl` files. The torch-free commands in
// fedmi_cli reach model code only through this interface, so `fedmi` builds
// without LibTorch.
//
// MakeModelRunner() is defined twice and `fedmi` links exactly one:
// cli/with_training.cc (fedmi_cli_training, LibTorch) returns a runner;
// cli/without_training.cc (fedmi_cli_without_training, a build with
// -DFEDMI_WITH_TRAINING=OFF) returns nullptr, and callers then refuse with
// TrainingUnavailableError().
//
// A runner is not thread-safe; each call loads its own model.
#ifndef FEDMI_CLI_MODEL_RUNNER_H_
#define FEDMI_CLI_MODEL_RUNNER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/model_export.h"
#include "common/data/dataset.h"
#include "common/data/metrics.h"
#include "common/evaluation/operating_threshold.h"
#include "common/evaluation/segmentation_metrics.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi::cli {

// A model's P(class 1) for every image of a split, with the images' labels
// and the model file's metadata: a .safetensors file's "__metadata__", or
// the "fedmi_<key>" string attributes of a .pt file, as key -> value (e.g.
// "arch", "dp_epsilon", "operating_threshold").
// A segmentation model gives `masks` instead of prob_positive: one
// height x width plane per image (1 = foreground), for the split's images as
// the model read them (`images`, at its input geometry).
struct SplitPredictions {
  std::vector<int64_t> labels;
  std::vector<float> prob_positive;
  std::map<std::string, std::string> metadata;
  std::vector<uint8_t> masks;
  ImageSet images;
};

struct ModelEvaluation {
  BinaryMetrics metrics;  // NaN where undefined (see common/data/metrics.h)
  double loss = 0;        // mean cross-entropy
  // What the metrics were computed from, so that callers can compute more
  // (calibration, metrics at another threshold) without running the model
  // again.
  SplitPredictions predictions;
  // Set for a segmentation model, scored on the split's masks: Dice, IoU
  // and HD95 per image, summed (`loss` is then the segmentation loss, and
  // `metrics` and the probabilities are empty; only `predictions.metadata`
  // is filled).
  std::optional<SegmentationCounts> segmentation;
};

// The model file's operating threshold (metadata "operating_threshold") as
// `predictions` carry it, if it has one; InvalidArgument naming `model_path`
// when it is malformed.
absl::StatusOr<std::optional<StoredThreshold>> StoredThresholdOfFile(
    const std::string& model_path, const SplitPredictions& predictions);

// A model's metrics at the operating threshold its file stores.
struct StoredThresholdMetrics {
  StoredThreshold stored;
  BinaryMetrics metrics;
};

// `predictions` scored at their model file's stored threshold; nullopt when
// it stores none. StoredThresholdOfFile's and ComputeBinaryMetrics' errors.
absl::StatusOr<std::optional<StoredThresholdMetrics>> MetricsAtStoredThreshold(
    const std::string& model_path, const SplitPredictions& predictions);

// {threshold, method, accuracy, sensitivity, specificity, f1}: the
// "operating_threshold" object of `model evaluate --json` and `sim --json`.
nlohmann::json StoredThresholdMetricsJson(const StoredThresholdMetrics& result);

// What `fedmi explain` asks for: class-activation maps of a model file on
// some images of a split (client/ml/explain.h).
struct ExplainRequest {
  std::string model_path;  // .pt (any TorchScript module) or .safetensors
  std::string data_path;   // any source LoadDataSplit reads
  std::string split = "test";
  // Rows of the split to explain, in this order; empty: the first `limit`.
  std::vector<int64_t> indices;
  int64_t limit = 16;
  std::string method = "gradcam";       // "gradcam" | "gradcam++"
  std::string layer;                    // empty: the model's default layer
  std::optional<int64_t> target_class;  // unset: class 1 of a binary model
  // The input geometry of a module that does not store fedmi's config (a
  // user's TorchScript file); fedmi's own files use theirs.
  int64_t image_size = 28;
  int64_t channels = 1;
  // Images done and in all, after each batch; may be empty.
  std::function<void(int64_t, int64_t)> progress;
};

// The first maximum of a heat-map, in input pixels.
struct ExplainedPeak {
  int64_t row = 0;
  int64_t col = 0;
  float value = 0;
};

struct ExplainedImage {
  int64_t index = 0;  // row of the split
  int64_t label = 0;
  int64_t target_class = 0;
  float probability = 0;       // of target_class
  std::vector<float> heatmap;  // images.height x images.width, in [0, 1]
  // Unset for a map with no peak: 0 everywhere (no evidence for the class
  // at this layer), constant, or not finite (then `finite` is false).
  std::optional<ExplainedPeak> peak;
  bool finite = true;
};

struct SplitExplanations {
  ImageSet images;  // the explained images at the model's input geometry, in order
  std::string layer;
  std::string method;
  std::vector<ExplainedImage> explained;  // one per image of `images`
};

// Each image's embedding (the input of the model's last linear layer), rows
// x dim, row-major.
struct ImageEmbeddings {
  int64_t dim = 0;
  std::vector<float> values;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  // Threads model code may use; <= 0 uses every CPU this process may use
  // (affinity, cgroup quota), or OMP_NUM_THREADS where set.
  virtual void SetThreads(int threads) = 0;

  // Rebuilds `info.arch` with `weights` and saves it as TorchScript at
  // `path`. InvalidArgument for an architecture model code does not know
  // (e.g. "synthetic") or weights that do not fit it.
  virtual absl::Status WriteTorchScript(const std::string& path, const TensorBundle& weights,
                                        const ModelFileInfo& info) = 0;

  // The float parameters and buffers of a TorchScript file, by dotted name
  // (initial weights for `run start --init-weights`).
  virtual absl::StatusOr<TensorBundle> ReadWeights(const std::string& path) = 0;

  // Rebuilds `info.arch` with `weights` and saves it for PyTorch's lite
  // interpreter at `path` (.ptl, see cli/model_export.h), with the linear
  // layers in int8 when `quantize_int8`; the file's metadata is
  // SafetensorsMetadata(info). WriteTorchScript's errors, and
  // FailedPrecondition for int8 when LibTorch has no quantized engine.
  virtual absl::Status WriteMobileModel(const std::string& path, const TensorBundle& weights,
                                        const ModelFileInfo& info, bool quantize_int8) = 0;

  // Writes the model of a .pt or .safetensors file as a .ptl at `out`,
  // keeping its metadata (for models on disk, e.g. `fedmi sim`'s final
  // model, with no coordinator to export from). The loaders' errors and
  // WriteMobileModel's.
  virtual absl::Status ConvertToMobile(const std::string& model_path, const std::string& out,
                                       bool quantize_int8) = 0;

  // The metadata of a .pt or .ptl file, the model card among it
  // (kModelCardMetadataKey), with its ModelConfig as "arch",
  // "num_classes", "image_size" and "channels" (`fedmi model info`).
  // NotFound for a missing file; InvalidArgument for one that is not a
  // TorchScript archive (truncated, corrupted; the error names the file) or
  // not a fedmi model (it may not: callers add the path).
  virtual absl::StatusOr<std::map<std::string, std::string>> ReadModelMetadata(
      const std::string& path) = 0;

  // Scores the model file (.pt, .safetensors or .ptl) on a split of a labelled
  // .npz, predicting class 1 when P(class 1) >= threshold.
  virtual absl::StatusOr<ModelEvaluation> EvaluateOnSplit(const std::string& model_path,
                                                          const std::string& npz_path,
                                                          const std::string& split,
                                                          double threshold) = 0;

  // P(class 1) of the model file for every image of a split (a
  // segmentation model: its masks; the split needs no masks); Internal when
  // the model gives a different number of predictions than there are images.
  virtual absl::StatusOr<SplitPredictions> PredictSplit(const std::string& model_path,
                                                        const std::string& npz_path,
                                                        const std::string& split) = 0;

  // Heat-maps of `request.model_path` for the chosen images. InvalidArgument
  // for an index outside the split, no images, or what
  // ml::ExplainModelFile refuses (an unknown layer, listing the valid ones).
  virtual absl::StatusOr<SplitExplanations> ExplainSplit(const ExplainRequest& request) = 0;

  // Trainable parameter elements of `arch` built for side x side images of
  // `channels` channels and `num_classes` classes (`fedmi model list`);
  // the architecture's errors (unknown name, image too small).
  virtual absl::StatusOr<int64_t> ParameterCount(const std::string& arch, int64_t channels,
                                                 int64_t num_classes, int64_t side) = 0;

  // The embedding of every image of `images`, which must be at the model
  // file's input geometry (.pt or .safetensors). LoadModelFile's errors;
  // InvalidArgument for another geometry or a model without a last linear
  // layer (LocalModel::Score).
  virtual absl::StatusOr<ImageEmbeddings> EmbedImages(const std::string& model_path,
                                                      const ImageSet& images) = 0;
};

// nullptr when this fedmi was built without training (see above).
std::unique_ptr<ModelRunner> MakeModelRunner();

// FailedPrecondition: "`<what>` runs models, and this fedmi was built
// without training (cmake -DFEDMI_WITH_TRAINING=ON)". `what` names the
// refused command, e.g. "fedmi model evaluate".
absl::Status TrainingUnavailableError(absl::string_view what);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_RUNNER_H_
