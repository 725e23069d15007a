// Site-level DP-FedAvg at the coordinator (McMahan et al. 2018): the next
// model is
//   global + (sum over contributing sites of their clipped change + Z) / n
// where n is the run's expected_sites, fixed whoever returns (so that the
// denominator reveals nothing about which sites took part), and Z is the
// Gaussian noise: N(0, (sigma S)^2) per element drawn here (central noise),
// or already inside the sum when each site added its share (distributed,
// under secure aggregation). Every site weighs the same: weighting by
// example counts would let a large site's data move the model by more than S.
//
// SiteDpAggregator is the plaintext path. Each update's change must already
// be within S: RoundManager::CheckValues refuses a larger one before any of
// it is folded in, so that a site that did not clip cannot spend the other
// sites' privacy. SecAggAggregator applies the same SiteDpSum to the
// unmasked sum (coordinator/secagg_aggregator.h).
#ifndef FEDMI_COORDINATOR_SITE_DP_AGGREGATOR_H_
#define FEDMI_COORDINATOR_SITE_DP_AGGREGATOR_H_

#include <memory>
#include <string>

#include "common/privacy/gaussian_noise.h"
#include "coordinator/aggregator.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// How a sum of clipped site updates becomes the change to the global model.
struct SiteDpSum {
  double denominator = 1;                 // the run's expected_sites
  double noise_stddev = 0;                // central noise per element of the sum; 0: none here
  privacy::NoiseSource* noise = nullptr;  // not owned; needed when noise_stddev > 0

  // A round's with clip `clip`: central noise
  // privacy::UpdateNoiseMultiplier(dp) * clip, or none when the sites add it.
  static SiteDpSum ForRound(const v1::DpSettings& dp, double clip, privacy::NoiseSource* noise);
  // sum[i] = (sum[i] + noise) / denominator for `count` elements.
  void Apply(double* sum, size_t count) const;
};

// The update norm a plaintext site-level round with clip S accepts: S, plus
// the slack of summing in another order (sites clip after rounding to
// float32).
double SiteDpUpdateNormBound(double clip);

// Begin reads `global_model_path` (the model the sites trained from); the
// weight given to Accept is ignored (each site counts once).
std::unique_ptr<Aggregator> MakeSiteDpAggregator(SiteDpSum sum, std::string global_model_path);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SITE_DP_AGGREGATOR_H_
