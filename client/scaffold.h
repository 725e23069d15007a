// SCAFFOLD at a site (Karimireddy et al. 2020, "SCAFFOLD: Stochastic
// Controlled Averaging for Federated Learning", option II of Algorithm 1).
//
// The run's global bundle carries the server control variate c after the
// model's weights, one kScaffoldControlPrefix + T per trained parameter T
// (common/runspec/strategy_names.h). The site trains with every gradient
// corrected by c - c_i, then sends its weights y followed by its new control
// variate
//   c_i+ = c_i - c + (x - y) / (K * lr)
// (x the global weights, K the SGD steps taken, lr the round's learning
// rate) under the same names, so that the coordinator's example-weighted
// mean of the updates is also the next c. With every site in every round
// this is the paper's c = mean of the c_i; with site sampling it averages
// the round's participants only.
//
// In bundles the variates travel in weight units: times the run's base
// learning rate (RunSpec.lr), a step's size rather than a gradient's, so that
// secure aggregation's clip, which bounds each value's change from the global
// model, bounds them as it bounds a weight. The store keeps them unscaled.
//
// Torch-free: pure functions over float32 bundles and a file store.
#ifndef FEDMI_CLIENT_SCAFFOLD_H_
#define FEDMI_CLIENT_SCAFFOLD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// A SCAFFOLD run's global bundle, split.
struct ScaffoldGlobal {
  TensorBundle weights;         // the model's tensors
  TensorBundle server_control;  // c, named as the parameters (no prefix)
};

// InvalidArgument when the bundle holds no control variate, or a control
// variate before a weight, of a type other than float32, or of no weight.
absl::StatusOr<ScaffoldGlobal> SplitScaffoldGlobal(const TensorBundle& global);

// `weights` followed by `control`'s tensors under kScaffoldControlPrefix.
TensorBundle WithScaffoldControls(const TensorBundle& weights, const TensorBundle& control);

// Zeros shaped as the tensors `parameters` names in `weights` (every one
// must be a float32 tensor there; InvalidArgument naming it otherwise).
absl::StatusOr<TensorBundle> ZeroControls(const TensorBundle& weights,
                                          const std::vector<std::string>& parameters);

// Every float of `bundle` times `factor` (all tensors must be float32).
TensorBundle ScaledControls(const TensorBundle& bundle, double factor);

// c - c_i, tensor by tensor; InvalidArgument unless both hold the same
// tensors.
absl::StatusOr<TensorBundle> ControlOffset(const TensorBundle& server, const TensorBundle& client);

// c_i+ = c_i - c + (x - y) / (steps * lr) for every tensor of `client`, with
// x and y the tensors of the same names in `global_weights` and
// `trained_weights`, computed in double and rounded once. InvalidArgument
// for steps < 1, lr not positive, a missing tensor or a result that is not
// finite.
absl::StatusOr<TensorBundle> NextClientControl(const TensorBundle& client,
                                               const TensorBundle& server,
                                               const TensorBundle& global_weights,
                                               const TensorBundle& trained_weights, int64_t steps,
                                               double lr);

// Where a site keeps its control variate c_i of each run, across rounds and
// restarts: `dir`/run-<id>-<spec>/round-<r>.bundle, written atomically,
// where <spec> is the start of the run spec's SHA-256, so that another
// coordinator's run of the same id never reads this one's. A round's
// training reads the variate saved by the site's latest earlier round, so
// that a round that is repeated (a coordinator crash, a retry) starts from
// the same c_i and sends the same update.
class ScaffoldControlStore {
 public:
  ScaffoldControlStore(std::string dir, Env& env) : dir_(std::move(dir)), env_(env) {}

  // The variate this site held before `round` of run `run_id` with spec
  // SHA-256 `spec_sha256` (hex); nullopt when it has none (its first round
  // of the run: c_i = 0). DataLoss for a damaged file; FailedPrecondition
  // when the run's folder holds a later round's variate, which no run that
  // wrote it could have (another run used the folder).
  absl::StatusOr<std::optional<TensorBundle>> Before(int64_t run_id, const std::string& spec_sha256,
                                                     int32_t round);
  // Saves the variate after `round`, then removes, as far as it can, those
  // that no later round can read (all but this one and the latest before it).
  absl::Status Save(int64_t run_id, const std::string& spec_sha256, int32_t round,
                    const TensorBundle& control);
  // Removes every variate of run `run_id` (its last round is trained).
  absl::Status Forget(int64_t run_id);

 private:
  std::string RunDir(int64_t run_id, const std::string& spec_sha256) const;
  // Rounds with a saved variate in `run_dir`, ascending.
  absl::StatusOr<std::vector<int32_t>> SavedRounds(const std::string& run_dir);

  std::string dir_;
  Env& env_;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SCAFFOLD_H_
