#include "common/privacy/site_update.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi::privacy {
namespace {

// A change this close to zero is sent as it is: nothing to scale.
constexpr double kNormFloor = 1e-30;
// Rounding to float32 can lengthen a scaled change by a few ulps; each retry
// shrinks the scale a little more. Two are enough in practice.
constexpr int kMaxScaleTries = 8;

absl::Status CheckSameFloatTensors(const TensorBundle& global, const TensorBundle& local) {
  RETURN_IF_ERROR(CheckSpecsMatch(local.specs, global.specs, "local model"));
  for (const TensorSpec& spec : global.specs) {
    if (spec.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "site-level DP clips float32 weights; tensor '", spec.name, "' has another dtype"));
    }
  }
  if (global.body.size() != local.body.size() || global.body.size() % sizeof(float) != 0) {
    return absl::InvalidArgumentError("local and global model bodies differ in length");
  }
  return absl::OkStatus();
}

std::vector<float> Floats(const TensorBundle& bundle) {
  std::vector<float> values(bundle.body.size() / sizeof(float));
  std::memcpy(values.data(), bundle.body.data(), bundle.body.size());
  return values;
}

double NormOfChange(const std::vector<float>& global, const std::vector<float>& sent) {
  double squared = 0;
  for (size_t i = 0; i < global.size(); ++i) {
    const double d = static_cast<double>(sent[i]) - static_cast<double>(global[i]);
    squared += d * d;
  }
  return std::sqrt(squared);
}

}  // namespace

absl::StatusOr<double> UpdateNorm(const TensorBundle& global, const TensorBundle& update) {
  RETURN_IF_ERROR(CheckSameFloatTensors(global, update));
  return NormOfChange(Floats(global), Floats(update));
}

absl::StatusOr<ClippedSiteUpdate> ClipSiteUpdate(const TensorBundle& global, double clip,
                                                 double noise_stddev, NoiseSource* noise,
                                                 TensorBundle* local) {
  if (!(clip > 0) || !std::isfinite(clip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("site-level DP clip must be positive, got ", clip));
  }
  if (!(noise_stddev >= 0) || !std::isfinite(noise_stddev)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "site-level DP noise must be a finite standard deviation, got ", noise_stddev));
  }
  if (noise_stddev > 0 && noise == nullptr) {
    return absl::InvalidArgumentError("site-level DP noise needs a noise source");
  }
  RETURN_IF_ERROR(CheckSameFloatTensors(global, *local));
  const std::vector<float> base = Floats(global);
  std::vector<float> values = Floats(*local);
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("the locally trained model has a non-finite weight (element ", i,
                       "); a diverged model is not sent"));
    }
  }
  ClippedSiteUpdate result;
  result.norm = NormOfChange(base, values);
  result.clipped = result.norm > clip;
  if (result.clipped) {
    const std::vector<float> trained = values;
    double scale = clip / std::max(result.norm, kNormFloor);
    for (int attempt = 0;; ++attempt) {
      for (size_t i = 0; i < values.size(); ++i) {
        const double d = static_cast<double>(trained[i]) - static_cast<double>(base[i]);
        values[i] = static_cast<float>(static_cast<double>(base[i]) + scale * d);
      }
      const double sent = NormOfChange(base, values);
      if (sent <= clip) break;
      if (attempt == kMaxScaleTries) {
        return absl::InternalError(absl::StrCat("cannot round a change of norm ", result.norm,
                                                " to float32 within the clip ", clip));
      }
      scale *= clip / sent * (1 - 1e-7);
    }
  }
  result.sent_norm = NormOfChange(base, values);
  if (noise_stddev > 0) {
    for (float& value : values) {
      value = static_cast<float>(static_cast<double>(value) + noise_stddev * noise->Normal());
    }
  }
  std::memcpy(local->body.data(), values.data(), local->body.size());
  return result;
}

}  // namespace fedmi::privacy
