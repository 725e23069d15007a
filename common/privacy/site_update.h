// Site-level DP-FedAvg (McMahan et al. 2018) at the site: the change a site
// sends, local - global over every tensor, scaled to L2 norm at most S, plus
// the site's share of the noise when the run places noise at the sites.
// Works on plain tensor bundles (no LibTorch), so the coordinator's tests and
// the site use the same code.
#ifndef FEDMI_COMMON_PRIVACY_SITE_UPDATE_H_
#define FEDMI_COMMON_PRIVACY_SITE_UPDATE_H_

#include "absl/status/statusor.h"
#include "common/privacy/gaussian_noise.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi::privacy {

struct ClippedSiteUpdate {
  double norm = 0;       // ||local - global|| before clipping
  bool clipped = false;  // norm was above the clip
  double sent_norm = 0;  // ||sent - global|| of the float32 values sent, before noise
};

// Rewrites `local` (weights trained from `global`, same tensors, all
// float32) into global + min(1, clip / ||d||) * d, d = local - global, then
// adds N(0, noise_stddev^2) to every element when noise_stddev > 0 (from
// `noise`, which may be null otherwise). The clipped change is checked after
// rounding to float32, so what the site sends never moves the model by more
// than `clip` before noise: that bound is the mechanism's sensitivity.
// InvalidArgument naming the problem: tensors that differ from the global
// model's or are not float32, a non-finite value, a clip that is not
// positive, noise without a source.
absl::StatusOr<ClippedSiteUpdate> ClipSiteUpdate(const TensorBundle& global, double clip,
                                                 double noise_stddev, NoiseSource* noise,
                                                 TensorBundle* local);

// ||update - global||_2 over every float32 element, in double precision.
// InvalidArgument when the tensors differ or are not float32.
absl::StatusOr<double> UpdateNorm(const TensorBundle& global, const TensorBundle& update);

}  // namespace fedmi::privacy

#endif  // FEDMI_COMMON_PRIVACY_SITE_UPDATE_H_
