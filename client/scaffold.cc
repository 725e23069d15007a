#include "client/scaffold.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/runspec/strategy_names.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {
namespace {

constexpr char kRoundFilePrefix[] = "round-";
constexpr char kRoundFileSuffix[] = ".bundle";
// Of the run spec's SHA-256 in a run's folder name: enough that two runs of
// one id never meet by chance.
constexpr size_t kSpecHashDigits = 16;

float FloatAt(const TensorBundle& bundle, size_t tensor, int64_t element) {
  float value;
  std::memcpy(&value, bundle.body.data() + bundle.OffsetOf(tensor) + element * sizeof(float),
              sizeof(float));
  return value;
}

void SetFloatAt(TensorBundle& bundle, size_t tensor, int64_t element, float value) {
  std::memcpy(bundle.body.data() + bundle.OffsetOf(tensor) + element * sizeof(float), &value,
              sizeof(float));
}

// The index in `bundle` of a float32 tensor called `name` with `like`'s
// shape; InvalidArgument naming `what` otherwise.
absl::StatusOr<size_t> MatchingTensor(const TensorBundle& bundle, const TensorSpec& like,
                                      const char* what) {
  const int index = bundle.IndexOf(like.name);
  if (index < 0 || bundle.specs[index].dtype != DType::kFloat32 ||
      bundle.specs[index].shape != like.shape) {
    return absl::InvalidArgumentError(absl::StrCat("SCAFFOLD: ", what, " has no float32 tensor '",
                                                   like.name, "' of the control's shape"));
  }
  return static_cast<size_t>(index);
}

TensorBundle ZerosLike(const TensorBundle& bundle) {
  TensorBundle zeros;
  zeros.specs = bundle.specs;
  zeros.body.assign(bundle.ExpectedBodyBytes(), 0);
  return zeros;
}

}  // namespace

absl::StatusOr<ScaffoldGlobal> SplitScaffoldGlobal(const TensorBundle& global) {
  size_t weights = 0;
  while (weights < global.specs.size() && !IsScaffoldControl(global.specs[weights].name)) {
    ++weights;
  }
  if (weights == global.specs.size()) {
    return absl::InvalidArgumentError(
        "SCAFFOLD: the global model holds no control variate (scaffold.control/...)");
  }
  ScaffoldGlobal split;
  split.weights.specs.assign(global.specs.begin(), global.specs.begin() + weights);
  const uint64_t weight_bytes = split.weights.ExpectedBodyBytes();
  split.weights.body.assign(global.body.begin(), global.body.begin() + weight_bytes);
  for (size_t i = weights; i < global.specs.size(); ++i) {
    TensorSpec spec = global.specs[i];
    if (!IsScaffoldControl(spec.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SCAFFOLD: tensor '", spec.name, "' follows the control variates; they come last"));
    }
    spec.name = spec.name.substr(sizeof(kScaffoldControlPrefix) - 1);
    RETURN_IF_ERROR(MatchingTensor(split.weights, spec, "the global model").status());
    split.server_control.specs.push_back(std::move(spec));
  }
  split.server_control.body.assign(global.body.begin() + weight_bytes, global.body.end());
  return split;
}

TensorBundle WithScaffoldControls(const TensorBundle& weights, const TensorBundle& control) {
  TensorBundle bundle = weights;
  for (const TensorSpec& spec : control.specs) {
    bundle.specs.push_back(
        {absl::StrCat(kScaffoldControlPrefix, spec.name), spec.dtype, spec.shape});
  }
  bundle.body.insert(bundle.body.end(), control.body.begin(), control.body.end());
  return bundle;
}

absl::StatusOr<TensorBundle> ZeroControls(const TensorBundle& weights,
                                          const std::vector<std::string>& parameters) {
  TensorBundle zeros;
  for (const std::string& name : parameters) {
    const int index = weights.IndexOf(name);
    if (index < 0 || weights.specs[index].dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("SCAFFOLD: parameter '", name, "' is no float32 tensor of the model"));
    }
    zeros.specs.push_back(weights.specs[index]);
  }
  zeros.body.assign(zeros.ExpectedBodyBytes(), 0);
  return zeros;
}

TensorBundle ScaledControls(const TensorBundle& bundle, double factor) {
  TensorBundle scaled = bundle;
  for (size_t t = 0; t < bundle.specs.size(); ++t) {
    for (int64_t e = 0; e < bundle.specs[t].NumElements(); ++e) {
      SetFloatAt(scaled, t, e, static_cast<float>(FloatAt(bundle, t, e) * factor));
    }
  }
  return scaled;
}

absl::StatusOr<TensorBundle> ControlOffset(const TensorBundle& server, const TensorBundle& client) {
  RETURN_IF_ERROR(CheckSpecsMatch(client.specs, server.specs, "SCAFFOLD client control"));
  TensorBundle offset = ZerosLike(server);
  for (size_t t = 0; t < server.specs.size(); ++t) {
    for (int64_t e = 0; e < server.specs[t].NumElements(); ++e) {
      SetFloatAt(offset, t, e, FloatAt(server, t, e) - FloatAt(client, t, e));
    }
  }
  return offset;
}

absl::StatusOr<TensorBundle> NextClientControl(const TensorBundle& client,
                                               const TensorBundle& server,
                                               const TensorBundle& global_weights,
                                               const TensorBundle& trained_weights, int64_t steps,
                                               double lr) {
  if (steps < 1 || !(lr > 0) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SCAFFOLD needs at least one step at a positive learning rate; got ", steps, " at ", lr));
  }
  RETURN_IF_ERROR(CheckSpecsMatch(client.specs, server.specs, "SCAFFOLD client control"));
  const double scale = 1.0 / (static_cast<double>(steps) * lr);
  TensorBundle next = ZerosLike(client);
  for (size_t t = 0; t < client.specs.size(); ++t) {
    const TensorSpec& spec = client.specs[t];
    ASSIGN_OR_RETURN(const size_t x, MatchingTensor(global_weights, spec, "the global model"));
    ASSIGN_OR_RETURN(const size_t y, MatchingTensor(trained_weights, spec, "the trained model"));
    for (int64_t e = 0; e < spec.NumElements(); ++e) {
      const double value =
          static_cast<double>(FloatAt(client, t, e)) - FloatAt(server, t, e) +
          (static_cast<double>(FloatAt(global_weights, x, e)) - FloatAt(trained_weights, y, e)) *
              scale;
      const float rounded = static_cast<float>(value);
      if (!std::isfinite(rounded)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SCAFFOLD: the new control variate of '", spec.name, "' is not finite at element ", e));
      }
      SetFloatAt(next, t, e, rounded);
    }
  }
  return next;
}

std::string ScaffoldControlStore::RunDir(int64_t run_id, const std::string& spec_sha256) const {
  return absl::StrCat(dir_, "/run-", run_id, "-", spec_sha256.substr(0, kSpecHashDigits));
}

absl::StatusOr<std::vector<int32_t>> ScaffoldControlStore::SavedRounds(const std::string& run_dir) {
  std::vector<int32_t> rounds;
  if (!env_.FileExists(run_dir)) return rounds;
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(run_dir));
  for (const std::string& name : names) {
    absl::string_view rest = name;
    int32_t round = 0;
    if (absl::ConsumePrefix(&rest, kRoundFilePrefix) &&
        absl::ConsumeSuffix(&rest, kRoundFileSuffix) && absl::SimpleAtoi(rest, &round)) {
      rounds.push_back(round);
    }
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds;
}

absl::StatusOr<std::optional<TensorBundle>> ScaffoldControlStore::Before(
    int64_t run_id, const std::string& spec_sha256, int32_t round) {
  const std::string run_dir = RunDir(run_id, spec_sha256);
  ASSIGN_OR_RETURN(std::vector<int32_t> rounds, SavedRounds(run_dir));
  // A round only opens once the one before it committed, so a repeat of
  // `round` never finds a later round's variate of its own run.
  if (!rounds.empty() && rounds.back() > round) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SCAFFOLD: ", run_dir, " holds the control variate of round ", rounds.back(), " while run ",
        run_id, " trains round ", round,
        "; another run used this folder: remove it or give the site its own --state-dir"));
  }
  const auto later = std::lower_bound(rounds.begin(), rounds.end(), round);
  if (later == rounds.begin()) return std::nullopt;
  const std::string path =
      absl::StrCat(run_dir, "/", kRoundFilePrefix, *(later - 1), kRoundFileSuffix);
  absl::StatusOr<TensorBundle> control = ReadBundleFile(path);
  if (!control.ok() || control->body.size() != control->ExpectedBodyBytes()) {
    return absl::DataLossError(
        absl::StrCat("SCAFFOLD control variate ", path, " cannot be read: ",
                     control.ok() ? "its body is short" : std::string(control.status().message())));
  }
  return std::optional<TensorBundle>(*std::move(control));
}

absl::Status ScaffoldControlStore::Save(int64_t run_id, const std::string& spec_sha256,
                                        int32_t round, const TensorBundle& control) {
  const std::string dir = RunDir(run_id, spec_sha256);
  RETURN_IF_ERROR(env_.CreateDirs(dir, 0700));
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, env_.NewAtomicFile(dir, 0600));
  RETURN_IF_ERROR(file->Append(BundleFilePrefix(control.specs)));
  RETURN_IF_ERROR(file->Append(absl::string_view(control.body.data(), control.body.size())));
  RETURN_IF_ERROR(file->Commit(absl::StrCat(dir, "/", kRoundFilePrefix, round, kRoundFileSuffix)));
  // What no round reads any more only costs disk: a failure to remove it
  // must not fail the round.
  absl::StatusOr<std::vector<int32_t>> rounds = SavedRounds(dir);
  if (!rounds.ok()) {
    FEDMI_LOG(WARNING) << "SCAFFOLD: cannot list " << dir << ": " << rounds.status().message();
    return absl::OkStatus();
  }
  // Keep this round's and the one a repeat of this round reads.
  const auto kept = std::lower_bound(rounds->begin(), rounds->end(), round);
  const auto first_kept = kept == rounds->begin() ? kept : kept - 1;
  for (auto it = rounds->begin(); it != first_kept; ++it) {
    const std::string old = absl::StrCat(dir, "/", kRoundFilePrefix, *it, kRoundFileSuffix);
    if (absl::Status removed = env_.RemoveFile(old); !removed.ok()) {
      FEDMI_LOG(WARNING) << "SCAFFOLD: cannot remove " << old << ": " << removed.message();
    }
  }
  return absl::OkStatus();
}

absl::Status ScaffoldControlStore::Forget(int64_t run_id) {
  if (!env_.FileExists(dir_)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(dir_));
  const std::string prefix = absl::StrCat("run-", run_id, "-");
  for (const std::string& name : names) {
    if (absl::StartsWith(name, prefix)) RETURN_IF_ERROR(env_.RemoveTree(dir_ + "/" + name));
  }
  return absl::OkStatus();
}

}  // namespace fedmi
