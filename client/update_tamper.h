// A hook through which a simulated site rewrites the update it is about to
// send: how `fedmi sim --attack` plays a malicious or faulty site against the
// real coordinator and its aggregation strategies.
//
// Simulation only. The production daemon (fedmi-client) never sets one; only
// fedmi-sim-site (client/sim_site_main.cc), which `fedmi sim` starts for the
// sites told to attack, links an implementation (client/sim_attack.h).
#ifndef FEDMI_CLIENT_UPDATE_TAMPER_H_
#define FEDMI_CLIENT_UPDATE_TAMPER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// Where in a run the update being rewritten belongs; an implementation
// seeds whatever randomness it uses from it, so simulations reproduce.
struct TamperContext {
  int64_t run_id = 0;
  int32_t round = 0;
  uint64_t run_seed = 0;  // RunSpec.seed
};

class UpdateTamper {
 public:
  virtual ~UpdateTamper() = default;
  // Rewrites `weights`, the tensors the site sends this round (after any
  // site-level DP clipping and noise), given `global`, the round's global
  // values of the same tensors in the same order. An error fails the task as
  // any training error does.
  virtual absl::Status Tamper(const TamperContext& context, const TensorBundle& global,
                              TensorBundle* weights) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_UPDATE_TAMPER_H_
