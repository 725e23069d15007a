// The differential-privacy flags shared by `fedmi run start` and `fedmi sim`,
// and how they become RunSpec.dp. The coordinator completes what is left
// out (sample rate, steps, noise calibrated to the target epsilon) before
// the run starts.
#ifndef FEDMI_CLI_DP_FLAGS_H_
#define FEDMI_CLI_DP_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct DpFlags {
  std::string level = "none";  // none | sample | site
  double target_epsilon = 0;
  double delta = 0;             // 0: the coordinator's default (1e-5)
  double clip = 0;              // 0: 1.0
  double noise_multiplier = 0;  // 0: calibrated to --target-epsilon
  double sample_rate = 0;       // 0: batch size / the sites' mean training set
  std::string noise = "auto";   // --dp site: auto | central | distributed
  int expected_sites = 0;       // --dp site: 0: the connected sites
  bool adaptive_clip = false;   // --dp site: Andrew et al. 2021
  double target_quantile = 0;   // 0: 0.5
  double clip_lr = 0;           // 0: 0.2
  double clip_count_noise = 0;  // 0: max(expected sites / 20, sigma)
};

// Adds --dp, --target-epsilon, --delta, --clip, --noise-multiplier,
// --dp-sample-rate, --dp-noise, --expected-sites and the adaptive clipping
// flags (--adaptive-clip, --target-quantile, --clip-lr, --clip-count-noise)
// to `command`.
void AddDpOptions(CLI::App* command, DpFlags* flags);

// Sets spec->dp; call it after secure aggregation is set, which "auto" noise
// placement follows. InvalidArgument naming the flag when settings are given
// without --dp (or site-level ones with --dp sample), or --dp without
// --target-epsilon.
absl::Status ApplyDpFlags(const DpFlags& flags, v1::RunSpec* spec);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_DP_FLAGS_H_
