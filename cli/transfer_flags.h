// The bring-your-own-model and transfer-learning flags of `fedmi run start`
// (--model-file, --task, --init-weights, --init-allow-partial, --freeze,
// --unfreeze-after-round): files are read here, uploaded to the coordinator
// as artifacts (Admin.UploadArtifact) and named in the spec by SHA-256.
// The coordinator and every site check the result like any spec.
#ifndef FEDMI_CLI_TRANSFER_FLAGS_H_
#define FEDMI_CLI_TRANSFER_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/admin_client.h"
#include "cli/model_runner.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct TransferFlags {
  std::string model_file;  // a TorchScript .pt: the run's model is "custom"
  std::string task = "classification";
  std::string init_weights;  // .safetensors or .pt
  bool init_allow_partial = false;
  std::vector<std::string> freeze;
  int unfreeze_after_round = 0;
};

void AddTransferOptions(CLI::App* command, TransferFlags* flags);

// Checks the flags against each other and `spec`'s model: InvalidArgument
// naming the flag (a usage error).
absl::Status CheckTransferFlags(const TransferFlags& flags, const v1::RunSpec& spec);

// Reads the files the flags name, uploads them and fills spec.transfer,
// spec.model_file_sha256, spec.model ("custom") and spec.task. `.pt`
// initial weights need model code (`runner`); a null runner refuses them
// (TrainingUnavailableError). Progress lines go to `log`.
absl::Status ApplyTransferFlags(const TransferFlags& flags, AdminClient& admin, ModelRunner* runner,
                                std::ostream& log, v1::RunSpec* spec);

// The weights of a file for --init-weights: a .safetensors file as it is,
// a .pt through `runner` (ModelRunner::ReadWeights).
absl::StatusOr<TensorBundle> ReadInitialWeights(const std::string& path, ModelRunner* runner);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_TRANSFER_FLAGS_H_
