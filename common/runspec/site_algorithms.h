// The site-side algorithms of a run, FedProx (recipe.proximal_mu) and
// SCAFFOLD (scaffold), and the settings they cannot run with
// (docs/strategies.md). The coordinator checks them at run start and each
// site again before it trains, so a coordinator that skips the check still
// cannot make a site train a combination whose result means nothing.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_SITE_ALGORITHMS_H_
#define FEDMI_COMMON_RUNSPEC_SITE_ALGORITHMS_H_

#include "absl/status/status.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// InvalidArgument naming the conflict: SCAFFOLD with an optimizer other than
// sgd, differential privacy, frozen tensors, the synthetic model, a strategy
// other than fedavg, max_update_norm or FedProx; FedProx with sample-level DP
// or the synthetic model.
absl::Status CheckSiteAlgorithms(const v1::RunSpec& spec);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_SITE_ALGORITHMS_H_
