// Implements secagg.h: the fixed-point codec that turns float updates into
// words of the ring Z/2^32 and back.
#include <openssl/crypto.h>

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_internal.h"

namespace fedmi {
namespace secagg {

// ---------------------------------------------------------------------------
// Fixed point.

absl::StatusOr<FixedPointCodec> FixedPointCodec::Create(const QuantizationOptions &options) {
  if (!(options.clip > 0) || !std::isfinite(options.clip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization clip must be positive and finite, got ", options.clip));
  }
  if (options.max_sites < 1 || options.max_sites > (1 << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization max_sites must be 1..16777216, got ", options.max_sites));
  }
  int site_bits = 0;  // ceil(log2(max_sites))
  while ((int64_t{1} << site_bits) < options.max_sites) ++site_bits;
  const int bits = 32 - site_bits;
  const int64_t levels = (int64_t{1} << (bits - 1)) - 1;
  return FixedPointCodec(options, bits, levels, options.clip / static_cast<double>(levels));
}

double FixedPointCodec::ErrorBound(int num_sites) const { return num_sites * step_ / 2; }

absl::Status FixedPointCodec::Encode(const float *in, size_t count, double weight,
                                     uint32_t *out) const {
  if (!(weight >= 0 && weight <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization weight must be in [0, 1], got ", weight));
  }
  const double clip = options_.clip;
  const double limit = static_cast<double>(levels_);
  for (size_t i = 0; i < count; ++i) {
    const double x = in[i];
    if (std::isnan(x)) {
      return absl::InvalidArgumentError(absl::StrCat("update element ", i, " is NaN"));
    }
    const double scaled = weight * std::clamp(x, -clip, clip) / step_;
    // Rounding cannot leave [-L, L] in exact arithmetic; clamp against the
    // last-bit error of the division.
    const int64_t q = static_cast<int64_t>(std::clamp(std::nearbyint(scaled), -limit, limit));
    out[i] = static_cast<uint32_t>(q);
  }
  return absl::OkStatus();
}

absl::Status FixedPointCodec::Decode(const uint32_t *sum, size_t count, int num_sites,
                                     double *out) const {
  if (num_sites < 1 || num_sites > options_.max_sites) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode a sum over ", num_sites,
                                                   " sites; max_sites is ", options_.max_sites));
  }
  const int64_t limit = levels_ * num_sites;
  for (size_t i = 0; i < count; ++i) {
    const int64_t q = static_cast<int32_t>(sum[i]);
    if (q > limit || q < -limit) {
      return absl::DataLossError(absl::StrCat("aggregate element ", i, " (", q,
                                              ") is outside what ", num_sites,
                                              " sites can produce; were all masks removed?"));
    }
    out[i] = static_cast<double>(q) * step_;
  }
  return absl::OkStatus();
}

}  // namespace secagg
}  // namespace fedmi
