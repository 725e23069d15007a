// Model files as `fedmi` writes them, and `fedmi model export`:
//  - ".safetensors": the weights in wire order, with "__metadata__"
//    {"arch", "num_classes", "run", "round", "fedmi_version"}; arch and
//    num_classes are what it takes to rebuild the model. Needs no LibTorch.
//  - ".pt": a TorchScript archive that torch.jit.load opens without fedmi
//    code; it carries its ModelConfig. Only a ModelRunner (model code)
//    writes one.
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
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/runspec/model_names.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

class AdminClient;
class ModelRunner;

enum class ModelFileKind { kTorchScript, kSafetensors };

// From the file name's extension; InvalidArgument naming the allowed
// extensions (".pt", ".safetensors") otherwise.
absl::StatusOr<ModelFileKind> ModelFileKindOf(const std::string& path);

// Where a set of weights came from, written into a model file.
struct ModelFileInfo {
  std::string arch = kDefaultModel;
  int64_t num_classes = 2;
  int64_t run_id = 0;
  int32_t round = 0;
  uint64_t seed = 0;                           // only seeds the throwaway initial weights of a .pt
  std::map<std::string, std::string> privacy;  // PrivacyMetadata; empty without DP
  // OperatingThresholdMetadata (common/evaluation/operating_threshold.h):
  // "operating_threshold" and "operating_threshold_method"; empty when no
  // threshold was chosen.
  std::map<std::string, std::string> operating_threshold;
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

// The safetensors "__metadata__" for `info`; also what a ".pt" carries as
// "fedmi_<key>" attributes beyond its ModelConfig.
std::map<std::string, std::string> SafetensorsMetadata(const ModelFileInfo& info);

// OK when WriteModelFile could write `path` with `runner`: InvalidArgument
// for an unknown extension, FailedPrecondition (TrainingUnavailableError)
// for a ".pt" without a runner.
absl::Status CheckModelFileWritable(const std::string& path, const ModelRunner* runner);

// Writes `weights` to `path` in the format its extension names; a ".pt"
// through `runner` (see ModelRunner::WriteTorchScript), which may be null
// only for ".safetensors" (else TrainingUnavailableError).
absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info, ModelRunner* runner);

// Downloads the global model of `round` (< 0: the latest) of run `run_id`
// and writes it to `out` (.pt or .safetensors) with WriteModelFile, taking
// arch and num_classes from the run's spec. On success `*summary` (if given)
// describes what was written: path, round, tensors, bytes, SHA-256 of the
// file and of the weights. InvalidArgument for an unknown extension, and
// FailedPrecondition for a ".pt" without a runner, before any download.
absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, ModelRunner* runner, std::string* summary);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_EXPORT_H_
