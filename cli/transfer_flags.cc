#include "cli/transfer_flags.h"

#include <ostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/runspec/transfer.h"
#include "common/tensor/bundle_transfer.h"
#include "common/tensor/safetensors.h"

namespace fedmi::cli {

namespace {

// The spec names the hash computed here, not the one the coordinator
// returns: a coordinator that stored other bytes is caught now, not by
// every site's refusal later.
absl::StatusOr<v1::ArtifactReceipt> UploadChecked(AdminClient& admin, const TensorBundle& bundle) {
  const std::string sha256 = BodySha256Hex(bundle);
  ASSIGN_OR_RETURN(v1::ArtifactReceipt receipt, admin.UploadArtifact(bundle));
  if (receipt.sha256() != sha256) {
    return absl::DataLossError(absl::StrCat("the coordinator stored the upload as ",
                                            receipt.sha256(), ", but its SHA-256 is ", sha256));
  }
  return receipt;
}

}  // namespace

void AddTransferOptions(CLI::App* command, TransferFlags* flags) {
  command->add_option("--model-file", flags->model_file,
                      "train your own TorchScript module (.pt) instead of a built-in "
                      "architecture: its forward maps images to logits (or mask logits); sites "
                      "run it only if their policy lists its SHA-256 (allowed_model_sha256)");
  command
      ->add_option("--task", flags->task,
                   "what --model-file predicts: classification (logits [N, classes]) or "
                   "segmentation (mask logits [N, 1, H, W])")
      ->check(CLI::IsMember({"classification", "segmentation"}))
      ->capture_default_str();
  command->add_option("--init-weights", flags->init_weights,
                      "start from these weights (.safetensors, or a .pt TorchScript file such "
                      "as an exported fedmi model), matched to the model by name and shape");
  command->add_flag("--init-allow-partial", flags->init_allow_partial,
                    "with --init-weights: tensors the file lacks or holds with another shape "
                    "(a different classifier head) keep their fresh initialisation");
  command
      ->add_option("--freeze", flags->freeze,
                   "freeze tensors whose names start with PREFIX (e.g. conv1 layer1 layer2): "
                   "sites neither train nor send them")
      ->expected(1, -1);
  command
      ->add_option("--unfreeze-after-round", flags->unfreeze_after_round,
                   "with --freeze: train the frozen tensors from round N+1 on; 0 keeps them "
                   "frozen for the whole run")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

absl::Status CheckTransferFlags(const TransferFlags& flags, const v1::RunSpec& spec) {
  if (flags.init_allow_partial && flags.init_weights.empty()) {
    return absl::InvalidArgumentError("--init-allow-partial needs --init-weights");
  }
  if (flags.unfreeze_after_round > 0 && flags.freeze.empty()) {
    return absl::InvalidArgumentError("--unfreeze-after-round needs --freeze");
  }
  if (flags.unfreeze_after_round >= spec.rounds() && flags.unfreeze_after_round > 0) {
    return absl::InvalidArgumentError(absl::StrCat("--unfreeze-after-round ",
                                                   flags.unfreeze_after_round,
                                                   " must be below --rounds ", spec.rounds()));
  }
  if (flags.task != "classification" && flags.model_file.empty()) {
    return absl::InvalidArgumentError("--task applies to --model-file");
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorBundle> ReadInitialWeights(const std::string& path, ModelRunner* runner) {
  if (absl::EndsWith(path, ".safetensors")) return ReadSafetensors(path);
  if (absl::EndsWith(path, ".pt")) {
    if (runner == nullptr) return TrainingUnavailableError("--init-weights with a .pt file");
    return runner->ReadWeights(path);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--init-weights ", path, ": expected a .safetensors or .pt file"));
}

absl::Status ApplyTransferFlags(const TransferFlags& flags, AdminClient& admin, ModelRunner* runner,
                                std::ostream& log, v1::RunSpec* spec) {
  v1::TransferSettings* transfer = spec->mutable_transfer();
  for (const std::string& prefix : flags.freeze) transfer->add_freeze_prefixes(prefix);
  transfer->set_unfreeze_after_round(flags.unfreeze_after_round);
  transfer->set_init_allow_partial(flags.init_allow_partial);
  if (!flags.init_weights.empty()) {
    ASSIGN_OR_RETURN(TensorBundle weights, ReadInitialWeights(flags.init_weights, runner));
    ASSIGN_OR_RETURN(v1::ArtifactReceipt receipt, UploadChecked(admin, weights));
    log << "initial weights " << flags.init_weights << ": " << receipt.tensors() << " tensors, "
        << receipt.bytes() << " bytes, sha256 " << receipt.sha256() << std::endl;
    transfer->set_init_weights_sha256(receipt.sha256());
  }
  if (!flags.model_file.empty()) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(flags.model_file));
    if (bytes.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model-file ", flags.model_file, " is empty"));
    }
    ASSIGN_OR_RETURN(v1::ArtifactReceipt receipt,
                     UploadChecked(admin, FileAsBundle(std::move(bytes))));
    log << "model file " << flags.model_file << ": " << receipt.bytes() << " bytes, sha256 "
        << receipt.sha256() << " (sites need it in their policy's allowed_model_sha256)"
        << std::endl;
    spec->set_model(kCustomModel);
    spec->set_model_file_sha256(receipt.sha256());
    spec->set_task(flags.task == "segmentation" ? v1::MODEL_TASK_SEGMENTATION
                                                : v1::MODEL_TASK_CLASSIFICATION);
  }
  if (transfer->ByteSizeLong() == 0) spec->clear_transfer();
  return absl::OkStatus();
}

}  // namespace fedmi::cli
