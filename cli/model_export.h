// Model files as `fedmi` writes them, and `fedmi model export`:
//  - ".safetensors": the weights in wire order, with "__metadata__"
//    {"arch", "num_classes", "run", "round", "fedmi_version"}; arch and
//    num_classes are what it takes to rebuild the model. Needs no LibTorch.
//  - ".pt": a TorchScript archive that torch.jit.load opens without fedmi
//    code; it carries its ModelConfig. Only a ModelRunner (model code)
//    writes one.
//  - ".ptl": a mobile model for PyTorch's lite interpreter (Android, iOS,
//    torch.jit.mobile), frozen for inference, optionally with int8 linear
//    layers; fedmi's metadata in its extra file "fedmi_metadata.json"
//    (client/ml/mobile_model.h). Only a ModelRunner writes one.
// A model of a differentially private run carries its guarantee in both:
// the "dp_*" keys of PrivacyMetadata, as metadata entries and as string
// attributes "fedmi_dp_*" of the TorchScript module. A model with a chosen
// operating threshold carries it the same way ("operating_threshold",
// "operating_threshold_method").
//
// Free functions; each call owns its files, so they are safe to call from
// different threads on different files.
#ifndef FEDMI_CLI_MODEL_EXPORT_H_
#define FEDMI_CLI_MODEL_EXPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/runspec/model_names.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

class AdminClient;
class ModelRunner;

enum class ModelFileKind { kTorchScript, kSafetensors, kMobile };

// From the file name's extension; InvalidArgument naming the allowed
// extensions (".pt", ".safetensors", ".ptl") otherwise.
absl::StatusOr<ModelFileKind> ModelFileKindOf(const std::string& path);

// What `fedmi model export` writes.
struct ExportFormat {
  ModelFileKind kind = ModelFileKind::kTorchScript;
  bool quantize_int8 = false;  // mobile files only: int8 linear layers
  // A run that trained a model file (`run start --model-file`): that file,
  // which .pt and .ptl exports are rebuilt from. It must hash to the run's
  // model_file_sha256. Not needed for .safetensors.
  std::string model_file;
  // The model card's class names, in index order (the run's spec has none);
  // empty: the card leaves the classes unnamed.
  std::vector<std::string> class_names;
};

// The format of `--out out [--format format] [--quantize quantize]`:
// `format` is "" (from the extension), "pt", "safetensors" or "mobile";
// `quantize` is "" or "none", or "int8" (mobile only). InvalidArgument,
// saying what to change, for an unknown value, a --format that disagrees
// with the extension (each format has its own, so that `model evaluate`
// can tell the files apart), or int8 for a format that keeps float weights.
absl::StatusOr<ExportFormat> ResolveExportFormat(const std::string& out, const std::string& format,
                                                 const std::string& quantize);

// Where a set of weights came from, written into a model file.
struct ModelFileInfo {
  std::string arch = kDefaultModel;
  int64_t num_classes = 2;
  int64_t run_id = 0;
  int32_t round = 0;
  int64_t image_size = 28;  // the run's input (RunSpec image_size, channels)
  int64_t channels = 1;
  uint64_t seed = 0;  // only seeds the throwaway initial weights of a .pt
  // The U-Net's shape (RunSpec unet); 0: the default. Other models: 0.
  int64_t unet_base_width = 0;
  int64_t unet_depth = 0;
  // PrivacyMetadata (empty without DP) and OperatingThresholdMetadata.
  std::map<std::string, std::string> metadata;
  // arch "custom" (a run that trained a model file): the file's bytes, which
  // a .pt or .ptl is rebuilt from, and whether it segments.
  std::string model_file_bytes;
  bool segmentation = false;
  // What the model card (cli/model_card.h) says beyond the above, filled in
  // by WriteRunModelFile from the run's status; empty for weights of no run.
  std::string spec_sha256;  // hex
  std::string strategy;
  int64_t sites = 0;  // sites whose updates reached the aggregates up to `round`
  bool secure_aggregation = false;
  std::optional<v1::Metrics> validation;  // the round's stored validation metrics
  double created_unix = 0;                // when the round finished; 0: unknown
  std::vector<std::string> class_names;   // index order; empty: not named
};

// The guarantee of the global model of `round` of a run with spec `spec`:
// dp_level, dp_mechanism, dp_epsilon (after `round` rounds, by the same
// accountant sites use), dp_delta, dp_target_epsilon, dp_noise_multiplier,
// dp_clip_norm, dp_sample_rate, dp_steps_per_round, dp_rounds. Empty for a
// run without differential privacy.
std::map<std::string, std::string> PrivacyMetadata(const v1::RunSpec& spec, int32_t round);
// The same for round `round` of `run`, whose rounds say which sites' updates
// reached each sum: with distributed site-level noise, a round that lost
// sites' shares costs more than planned (privacy::EpsilonOfRounds).
std::map<std::string, std::string> PrivacyMetadata(const v1::RunStatus& run, int32_t round);

// The operating threshold chosen on the pooled validation data of round
// `round` of `run`: operating_threshold, operating_threshold_method
// ("youden", "sensitivity>=0.95"), operating_sensitivity and
// operating_specificity (on that validation data). Empty when that round
// chose none.
std::map<std::string, std::string> RoundThresholdMetadata(const v1::RunStatus& run, int32_t round);

// The safetensors "__metadata__" for `info`, with its model card as the
// kModelCardMetadataKey entry (JSON text); also what a ".ptl" carries.
std::map<std::string, std::string> SafetensorsMetadata(const ModelFileInfo& info);
// What a ".pt" carries beyond the ModelConfig its module holds: info.metadata
// (string attributes "fedmi_<key>") and the card (kModelCardMetadataKey,
// which LocalModel::SaveTorchScript writes as the extra file kModelCardFile).
std::map<std::string, std::string> TorchScriptMetadata(const ModelFileInfo& info);

// "normal, pneumonia" -> {"normal", "pneumonia"}: split at commas, each
// name trimmed; "" -> {}.
std::vector<std::string> SplitClassNames(const std::string& text);
// InvalidArgument unless `names` is empty or names each of `num_classes`
// classes once, none empty.
absl::Status CheckClassNames(const std::vector<std::string>& names, int64_t num_classes);

// OK when WriteModelFile could write `path` with `runner`: InvalidArgument
// for an unknown extension, FailedPrecondition (TrainingUnavailableError)
// for a ".pt" or ".ptl" without a runner.
absl::Status CheckModelFileWritable(const std::string& path, const ModelRunner* runner);

// Writes `weights` to `path` in the format its extension names; a ".pt"
// through `runner` (see ModelRunner::WriteTorchScript), which may be null
// only for ".safetensors" (else TrainingUnavailableError).
absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info, ModelRunner* runner);
// The same in `format` (see ResolveExportFormat); a ".ptl" through
// ModelRunner::WriteMobileModel.
absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info, const ExportFormat& format,
                            ModelRunner* runner);

// Downloads the global model of `round` (< 0: the latest) of run `run_id`
// and writes it to `out` (.pt or .safetensors) with WriteModelFile, taking
// arch and num_classes from the run's spec. On success `*summary` (if given)
// describes what was written: path, round, tensors, bytes, SHA-256 of the
// file and of the weights. InvalidArgument for an unknown extension, and
// FailedPrecondition for a ".pt" without a runner, before any download.
absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, ModelRunner* runner, std::string* summary);
// The same in `format` (ResolveExportFormat).
absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, const ExportFormat& format,
                               ModelRunner* runner, std::string* summary);

// ExportModelToFile's second half, once the run's status and the weights
// of its round `exported_round` are downloaded: writes `out` with the
// run's ModelFileInfo and metadata, and the summary.
absl::Status WriteRunModelFile(const v1::RunStatus& run, int32_t exported_round,
                               const TensorBundle& weights, const std::string& out,
                               const ExportFormat& format, ModelRunner* runner,
                               std::string* summary);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_EXPORT_H_
