// Transfer learning and bring-your-own models as a run spec states them
// (RunSpec.transfer, RunSpec.model_file_sha256): which tensors are frozen in
// which round, and whether the settings make sense. Sites and the
// coordinator both decide "is this tensor sent in round r" here, so that an
// update always carries exactly the tensors the coordinator expects.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_TRANSFER_H_
#define FEDMI_COMMON_RUNSPEC_TRANSFER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// RunSpec.model of a run that trains the uploaded model file.
inline constexpr char kCustomModel[] = "custom";

// Whether round `round` (1-based) of `spec` keeps `tensor` frozen: its name
// starts with one of transfer.freeze_prefixes and the round is at most
// transfer.unfreeze_after_round (or that is 0: frozen for the whole run).
bool IsFrozenInRound(const v1::RunSpec& spec, absl::string_view tensor, int32_t round);

// Whether any tensor can be frozen in `round`.
bool FreezesInRound(const v1::RunSpec& spec, int32_t round);

// The names of `names` that round `round` trains (and so sends), in order.
std::vector<std::string> TrainedTensorNames(const v1::RunSpec& spec,
                                            const std::vector<std::string>& names, int32_t round);

// Checks a model's tensor names against the spec's freezing once the model
// is known (the initial model): every prefix must name at least one tensor,
// and some tensor must stay trainable in round 1. InvalidArgument naming
// the prefix, or saying that everything is frozen.
absl::Status CheckFreezePrefixes(const v1::RunSpec& spec, const std::vector<std::string>& names);

// Checks the transfer and model-file fields of a spec on their own:
// hashes are 64 lower-case hex digits, prefixes are non-empty and
// distinct, unfreeze_after_round is in [0, rounds), a model file goes with
// model "custom" and "custom" with a model file. InvalidArgument naming
// the field.
absl::Status ValidateTransferSettings(const v1::RunSpec& spec);

// The SHA-256s of the artifacts `spec` names (initial weights, model file).
std::vector<std::string> ArtifactHashes(const v1::RunSpec& spec);

// "ab12cd34…" (the first 12 hex digits) for messages and logs.
std::string ShortHash(absl::string_view sha256_hex);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_TRANSFER_H_
