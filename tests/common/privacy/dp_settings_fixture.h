// DP settings as the coordinator leaves them after CompleteDpSettings, for
// tests of whatever reads them.
#ifndef FEDMI_TESTS_COMMON_PRIVACY_DP_SETTINGS_FIXTURE_H_
#define FEDMI_TESTS_COMMON_PRIVACY_DP_SETTINGS_FIXTURE_H_

#include <cstdint>

#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Delta 1e-5, clip 1, target epsilon 8, and the given mechanism.
inline v1::DpSettings CompletedSampleDp(double noise_multiplier, double sample_rate,
                                        int32_t steps_per_round) {
  v1::DpSettings dp;
  dp.set_level(v1::DP_LEVEL_SAMPLE);
  dp.set_target_epsilon(8);
  dp.set_delta(1e-5);
  dp.set_clip_norm(1);
  dp.set_noise_multiplier(noise_multiplier);
  dp.set_sample_rate(sample_rate);
  dp.set_steps_per_round(steps_per_round);
  return dp;
}

// Site-level DP settings as completed for `expected_sites` sites: delta
// 1e-5, target epsilon 8, sample rate 1.
inline v1::DpSettings CompletedSiteDp(double clip, double noise_multiplier,
                                      v1::DpNoisePlacement placement, int32_t expected_sites) {
  v1::DpSettings dp;
  dp.set_level(v1::DP_LEVEL_SITE);
  dp.set_target_epsilon(8);
  dp.set_delta(1e-5);
  dp.set_clip_norm(clip);
  dp.set_noise_multiplier(noise_multiplier);
  dp.set_sample_rate(1);
  dp.set_noise_placement(placement);
  dp.set_expected_sites(expected_sites);
  return dp;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_PRIVACY_DP_SETTINGS_FIXTURE_H_
