// What a run's differential privacy costs, computed from its spec alone
// (RunSpec.dp), so that the coordinator, every site and an auditor reading
// the audit log get the same epsilon from the same numbers.
//
// Sample level: each round is steps_per_round DP-SGD steps at sample_rate
// with noise_multiplier. Site level: each round is one step of the Gaussian
// mechanism on the sites' clipped updates at sample_rate (1 unless the
// coordinator samples sites, which a site cannot check, so fedmi accounts
// q = 1).
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_PRIVACY_DP_PLAN_H_
#define FEDMI_COMMON_PRIVACY_DP_PLAN_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/privacy/rdp_accountant.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::privacy {

// One round's mechanism. InvalidArgument for a spec without DP or with
// settings the coordinator has not completed.
absl::StatusOr<SampledGaussian> RoundMechanism(const v1::DpSettings& dp);

// Epsilon at dp.delta after `rounds` rounds (0 rounds: epsilon 0), each with
// the full noise (every expected site's share in the sum).
absl::StatusOr<PrivacySpent> EpsilonAfterRounds(const v1::DpSettings& dp, int64_t rounds);

// What a round costs one patient, which a site's own ledger and its
// max_epsilon count. Sample level: the round's mechanism. Site level: the
// same at half the noise multiplier, since one patient's images can move
// their site's clipped change anywhere within the S-ball, by up to 2S (the
// guarantee per site is about adding or removing a whole site).
absl::StatusOr<SampledGaussian> PatientRoundMechanism(const v1::DpSettings& dp);
absl::StatusOr<PrivacySpent> PatientEpsilonAfterRounds(const v1::DpSettings& dp, int64_t rounds);

// Site level, distributed noise: the standard deviation each site adds to
// every element of its clipped update, sigma * S / sqrt(expected_sites), so
// that the sum of all expected sites' shares has sigma * S. 0 for central
// noise and for sample level.
double SiteNoiseShareStddev(const v1::DpSettings& dp);

// The noise multiplier a round really had, relative to the sensitivity S:
// with distributed noise only the `contributors` whose updates reached the
// sum added their shares, sigma * sqrt(contributors / expected_sites);
// otherwise dp.noise_multiplier.
double RoundNoiseMultiplier(const v1::DpSettings& dp, int contributors);

// Epsilon at dp.delta after the rounds whose contributor counts (sites whose
// updates reached each round's sum) are listed, one per round, each at its
// RoundNoiseMultiplier. A round with no contributor released nothing.
absl::StatusOr<PrivacySpent> EpsilonOfRounds(const v1::DpSettings& dp,
                                             const std::vector<int>& contributors);

// Site level: the noise multiplier on the sum of clipped updates. With
// adaptive clipping part of the round's budget goes to the noised count of
// sites within the clip (multiplier sigma_b on a count of sensitivity 1/2
// once centred), so the update gets (sigma^-2 - (2 sigma_b)^-2)^-1/2 and
// the two Gaussians together cost what sigma alone would (Andrew et al.
// 2021, Thm. 1); otherwise sigma.
double UpdateNoiseMultiplier(const v1::DpSettings& dp);

// Adaptive clipping: the share of sites within the clip, from the centred
// count (within - contributors / 2, whose sensitivity is 1/2 whether a site
// is added or removed) plus its noise `count_noise` (sigma_b * a standard
// normal draw), as TF Privacy's quantile estimator does:
// (within - contributors / 2 + count_noise) / expected_sites + 1/2.
double NoisedWithinFraction(const v1::DpSettings& dp, int within, int contributors,
                            double count_noise);
// The next round's clip: clip * exp(-clip_learning_rate * (fraction -
// target_quantile)). Fewer sites within the clip than the target makes it
// grow.
double NextClipNorm(const v1::DpSettings& dp, double clip, double fraction);

// Distributed noise under secure aggregation: the smallest per-element clip
// of the fixed-point encoding that never clamps a site's value, |clipped
// change| <= S plus the largest draw of the noise sampler (8.6 standard
// deviations of the share). 0 when the run has no distributed noise.
double MinSecAggClipForSiteNoise(const v1::DpSettings& dp);

// Fills what an admin may leave out of a run's DP settings, once, before
// the run is stored: the sample rate (batch_size over
// `typical_site_examples`, the mean training set of the connected sites, so
// that an epoch is batch-sized steps over the average site whatever the
// split; a median can be a handful of examples under label skew),
// the steps per round, and, when no noise multiplier is given, the smallest
// one that keeps all of spec->rounds() rounds within the target epsilon.
// Every site samples at the same rate, so one epsilon holds for all of them
// and each can recompute it from the spec; a site with more data takes
// larger batches, not more steps.
// FailedPrecondition when the sample rate is needed and no site is
// connected; OutOfRange when no noise multiplier up to 1e6 meets the target.
// Site level: expected_sites, when 0, becomes `round_sites` (the sites with
// data connected now, capped by max_sites); a run without max_sites then
// takes at most that many sites a round, so that the noise shares and the
// fixed denominator of DP-FedAvg match the rounds. With distributed noise
// and secure aggregation, an unset secagg clip becomes
// MinSecAggClipForSiteNoise. Adaptive clipping gets its defaults (target
// quantile 0.5, clip learning rate 0.2, count noise max(n / 20, sigma));
// InvalidArgument when the count noise leaves nothing for the update
// (2 sigma_b <= sigma).
absl::Status CompleteDpSettings(v1::RunSpec* spec, int64_t typical_site_examples,
                                int round_sites = 0);

// The most rounds of `dp` whose epsilon stays within dp.target_epsilon
// (at most `rounds`).
absl::StatusOr<int64_t> RoundsWithinBudget(const v1::DpSettings& dp, int64_t rounds);

}  // namespace fedmi::privacy

#endif  // FEDMI_COMMON_PRIVACY_DP_PLAN_H_
