#include "common/runspec/transfer.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool StartsWithAny(absl::string_view name,
                   const google::protobuf::RepeatedPtrField<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return false;
}

}  // namespace

bool FreezesInRound(const v1::RunSpec& spec, int32_t round) {
  const v1::TransferSettings& transfer = spec.transfer();
  if (transfer.freeze_prefixes().empty()) return false;
  return transfer.unfreeze_after_round() == 0 || round <= transfer.unfreeze_after_round();
}

bool IsFrozenInRound(const v1::RunSpec& spec, absl::string_view tensor, int32_t round) {
  return FreezesInRound(spec, round) && StartsWithAny(tensor, spec.transfer().freeze_prefixes());
}

std::vector<std::string> TrainedTensorNames(const v1::RunSpec& spec,
                                            const std::vector<std::string>& names, int32_t round) {
  std::vector<std::string> trained;
  trained.reserve(names.size());
  for (const std::string& name : names) {
    if (!IsFrozenInRound(spec, name, round)) trained.push_back(name);
  }
  return trained;
}

absl::Status CheckFreezePrefixes(const v1::RunSpec& spec, const std::vector<std::string>& names) {
  for (const std::string& prefix : spec.transfer().freeze_prefixes()) {
    bool used = false;
    for (const std::string& name : names) used = used || absl::StartsWith(name, prefix);
    if (!used) {
      return absl::InvalidArgumentError(
          absl::StrCat("freeze prefix '", prefix, "' names no tensor of the model (its tensors ",
                       "start with '", names.empty() ? "" : names.front(), "', ...)"));
    }
  }
  if (!spec.transfer().freeze_prefixes().empty() && TrainedTensorNames(spec, names, 1).empty()) {
    return absl::InvalidArgumentError(
        "the freeze prefixes freeze every tensor of the model: nothing would train");
  }
  return absl::OkStatus();
}

absl::Status ValidateTransferSettings(const v1::RunSpec& spec) {
  const v1::TransferSettings& transfer = spec.transfer();
  if (!transfer.init_weights_sha256().empty() && !IsSha256Hex(transfer.init_weights_sha256())) {
    return absl::InvalidArgumentError(
        absl::StrCat("transfer.init_weights_sha256 '", transfer.init_weights_sha256(),
                     "' is not a SHA-256 (64 lower-case hex digits)"));
  }
  if (transfer.init_allow_partial() && transfer.init_weights_sha256().empty()) {
    return absl::InvalidArgumentError("init_allow_partial needs initial weights");
  }
  std::set<std::string> seen;
  for (const std::string& prefix : transfer.freeze_prefixes()) {
    if (prefix.empty()) return absl::InvalidArgumentError("a freeze prefix is empty");
    if (!seen.insert(prefix).second) {
      return absl::InvalidArgumentError(absl::StrCat("freeze prefix '", prefix, "' is repeated"));
    }
  }
  if (transfer.unfreeze_after_round() < 0 ||
      (spec.rounds() > 0 && transfer.unfreeze_after_round() >= spec.rounds())) {
    return absl::InvalidArgumentError(
        absl::StrCat("unfreeze_after_round is ", transfer.unfreeze_after_round(),
                     "; it must be in [0, rounds) = [0, ", spec.rounds(), ")"));
  }
  if (transfer.unfreeze_after_round() > 0 && transfer.freeze_prefixes().empty()) {
    return absl::InvalidArgumentError("unfreeze_after_round needs freeze prefixes");
  }
  if (!transfer.freeze_prefixes().empty() && spec.dp().level() == v1::DP_LEVEL_SAMPLE) {
    return absl::InvalidArgumentError(
        "freezing tensors is not supported with sample-level DP (DP-SGD clips the gradient of "
        "every parameter)");
  }
  const bool custom = spec.model() == kCustomModel;
  if (!spec.model_file_sha256().empty() && !IsSha256Hex(spec.model_file_sha256())) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_file_sha256 '", spec.model_file_sha256(),
                     "' is not a SHA-256 (64 lower-case hex digits)"));
  }
  if (custom != !spec.model_file_sha256().empty()) {
    return absl::InvalidArgumentError(
        custom ? "model 'custom' needs a model file (model_file_sha256)"
               : absl::StrCat("a model file goes with model 'custom', not '", spec.model(), "'"));
  }
  return absl::OkStatus();
}

std::vector<std::string> ArtifactHashes(const v1::RunSpec& spec) {
  std::vector<std::string> hashes;
  if (!spec.transfer().init_weights_sha256().empty()) {
    hashes.push_back(spec.transfer().init_weights_sha256());
  }
  if (!spec.model_file_sha256().empty()) hashes.push_back(spec.model_file_sha256());
  return hashes;
}

std::string ShortHash(absl::string_view sha256_hex) {
  return absl::StrCat(sha256_hex.substr(0, 12), sha256_hex.size() > 12 ? "…" : "");
}

}  // namespace fedmi
