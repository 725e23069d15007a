// RoundManager's frozen tensors (round_manager.h, RunSpec.transfer): a
// round whose spec freezes tensors collects and aggregates only the others,
// and the new global model takes the frozen ones unchanged from the last.
// Both halves stream bundle files tensor by tensor: no model is held in
// memory whole.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/runspec/transfer.h"
#include "coordinator/round_manager.h"

namespace fedmi {
namespace {

// Copies the next `bytes` of `from` into `to` (null: skips them).
absl::Status CopyBytes(BundleFileReader& from, BundleFileWriter* to, uint64_t bytes) {
  std::vector<char> buffer(std::min<uint64_t>(bytes, uint64_t{1} << 20));
  while (bytes > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes, buffer.size()));
    ASSIGN_OR_RETURN(size_t got, from.Read(buffer.data(), want));
    if (got != want) return absl::DataLossError("a model file ended early");
    if (to != nullptr) RETURN_IF_ERROR(to->Write(buffer.data(), got));
    bytes -= got;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RoundManager::PrepareRoundTensors() {
  round_global_sha256_ = global_model_sha256_;
  if (!FreezesInRound(run_.spec, round_)) {
    round_specs_ = model_specs_;
    return absl::OkStatus();
  }
  round_specs_.clear();
  for (const TensorSpec& spec : model_specs_) {
    if (!IsFrozenInRound(run_.spec, spec.name, round_)) round_specs_.push_back(spec);
  }
  if (round_specs_.empty()) {
    return absl::InvalidArgumentError("the run's freeze prefixes freeze every tensor");
  }
  ASSIGN_OR_RETURN(std::string global_path, deps_.models->PathFor(global_model_sha256_));
  ASSIGN_OR_RETURN(auto global, BundleFileReader::Open(global_path));
  ASSIGN_OR_RETURN(auto writer, deps_.models->NewWriter(round_specs_));
  for (const TensorSpec& spec : model_specs_) {
    const bool trained = !IsFrozenInRound(run_.spec, spec.name, round_);
    RETURN_IF_ERROR(CopyBytes(*global, trained ? writer.get() : nullptr, spec.ByteSize()));
  }
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  round_global_sha256_ = HexEncode(digest);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RoundManager::CompleteRoundModel(const std::string& trained_sha256) {
  if (round_specs_.size() == model_specs_.size()) return trained_sha256;
  ASSIGN_OR_RETURN(std::string global_path, deps_.models->PathFor(global_model_sha256_));
  ASSIGN_OR_RETURN(auto global, BundleFileReader::Open(global_path));
  ASSIGN_OR_RETURN(std::string trained_path, deps_.models->PathFor(trained_sha256));
  ASSIGN_OR_RETURN(auto trained, BundleFileReader::Open(trained_path));
  RETURN_IF_ERROR(CheckSpecsMatch(trained->specs(), round_specs_, "aggregate"));
  ASSIGN_OR_RETURN(auto writer, deps_.models->NewWriter(model_specs_));
  for (const TensorSpec& spec : model_specs_) {
    const bool frozen = IsFrozenInRound(run_.spec, spec.name, round_);
    if (frozen) {
      RETURN_IF_ERROR(CopyBytes(*global, writer.get(), spec.ByteSize()));
    } else {
      RETURN_IF_ERROR(CopyBytes(*global, nullptr, spec.ByteSize()));
      RETURN_IF_ERROR(CopyBytes(*trained, writer.get(), spec.ByteSize()));
    }
  }
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  return HexEncode(digest);
}

}  // namespace fedmi
