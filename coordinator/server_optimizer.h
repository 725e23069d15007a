// Server optimizers (Reddi et al. 2021, "Adaptive Federated Optimization",
// Algorithm 2; FedAvgM after Hsu et al. 2019). They treat the round's
// aggregate as a pseudo-gradient: Delta = aggregate - global, and move the
// global model by a server-side update of Delta instead of replacing it with
// the aggregate. Because they need only the aggregate, they compose with
// secure aggregation and site-level DP.
//
// Per float32 parameter, with d = Delta (all arithmetic in double, state
// stored as float32):
//   fedavg     x <- aggregate (plain replacement; no state)
//   fedavgm    u <- momentum * u + d;                  x <- x + eta * u
//   fedadagrad m <- b1 m + (1 - b1) d;  v <- v + d^2
//   fedadam    m <- b1 m + (1 - b1) d;  v <- b2 v + (1 - b2) d^2
//   fedyogi    m <- b1 m + (1 - b1) d;  v <- v - (1 - b2) d^2 sign(v - d^2)
//              (the three adaptive ones) x <- x + eta * m / (sqrt(v) + tau)
// Initial state: u = 0, m = 0, v = tau^2 (rounded to float32; the least v
// the paper allows, where Flower starts from 0); no bias correction, as in
// the paper.
//
// Streaming and stateless in memory: the optimizer state lives in a bundle
// file (normally in the ModelStore, next to the models), and a step reads
// the global model, the aggregate and the previous state chunk by chunk while
// it writes the new model and the new state. Memory is 4 MiB of chunk
// buffers (1 MiB each of global and aggregate, 2 MiB of state) whatever the
// model size; disk holds one state file per step (8 bytes per parameter for
// the adaptive kinds, 4 for fedavgm). Because a step never changes its
// inputs, a failed or repeated step leaves the last committed state valid,
// and resuming from a stored state file continues bit for bit as if
// uninterrupted.
//
// State file layout (deterministic: equal inputs give equal bytes):
//   "server_optimizer" uint8 [n]   the kind's name ("fedadam", ...)
//   "step"             int64 [1]   steps taken so far
//   then per float32 tensor T of the model, in the model's order:
//     fedavgm:        "momentum/T" float32, T's shape: u
//     adaptive kinds: "moments/T"  float32, T's shape + [2]: (m, v) pairs,
//                     interleaved so one sequential read serves both.
// A tensor the caller names as not stepped (frozen in the round, a
// BatchNorm running statistic, a SCAFFOLD control variate) takes the
// aggregate's values and keeps its state, so a tensor frozen for a while
// starts from the initial state when it is first trained.
//
// Thread-safe: a ServerOptimizer holds only its options.
#ifndef FEDMI_COORDINATOR_SERVER_OPTIMIZER_H_
#define FEDMI_COORDINATOR_SERVER_OPTIMIZER_H_

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"

namespace fedmi {

enum class ServerOptimizerKind { kFedAvg, kFedAvgM, kFedAdam, kFedYogi, kFedAdagrad };

// fedadam, fedyogi and fedadagrad: the kinds with moments m and v.
bool IsAdaptive(ServerOptimizerKind kind);

// "fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad".
const char* ServerOptimizerName(ServerOptimizerKind kind);
// InvalidArgument naming the known kinds for any other name.
absl::StatusOr<ServerOptimizerKind> ParseServerOptimizerKind(absl::string_view name);

// Defaults: beta1 = 0.9 and beta2 = 0.99 as Reddi et al. fix them, tau =
// 1e-3 (inside the range they tune; Flower's FedYogi default), momentum 0.9
// (Hsu et al.), server_lr 1 (FedAvg's step). The adaptive kinds want a
// smaller server_lr: Reddi et al. tune it to about 1e-2..1e-1.
struct ServerOptimizerOptions {
  ServerOptimizerKind kind = ServerOptimizerKind::kFedAvg;
  double server_lr = 1.0;  // eta
  double momentum = 0.9;   // fedavgm only
  double beta1 = 0.9;      // adaptive kinds
  double beta2 = 0.99;     // fedadam and fedyogi
  double tau = 1e-3;       // adaptive kinds: the denominator's floor

  ServerOptimizerOptions& set_kind(ServerOptimizerKind value) {
    kind = value;
    return *this;
  }
  ServerOptimizerOptions& set_server_lr(double value) {
    server_lr = value;
    return *this;
  }
  ServerOptimizerOptions& set_momentum(double value) {
    momentum = value;
    return *this;
  }
  ServerOptimizerOptions& set_beta1(double value) {
    beta1 = value;
    return *this;
  }
  ServerOptimizerOptions& set_beta2(double value) {
    beta2 = value;
    return *this;
  }
  ServerOptimizerOptions& set_tau(double value) {
    tau = value;
    return *this;
  }
};

// The defaults of `kind`: the struct's, with server_lr 0.1 for fedadam and
// fedadagrad and 0.01 for fedyogi (Flower's defaults, inside the range Reddi
// et al. tune). For a run spec whose optional fields are left out.
ServerOptimizerOptions DefaultServerOptimizerOptions(ServerOptimizerKind kind);

// Checks the settings the kind uses (the others are ignored), naming the
// first bad one: InvalidArgument for server_lr not finite and > 0 (fedavg:
// not exactly 1, since plain replacement has no step size), momentum, beta1
// or beta2 outside [0, 1) or NaN, tau not finite and > 0 or with tau^2 past
// the largest float32.
absl::Status ValidateServerOptimizerOptions(const ServerOptimizerOptions& options);

// Where a step wrote its results in a ModelStore (hex SHA-256s).
struct ServerStep {
  std::string model_sha256;  // the new global model, with the aggregate's tensors
  std::string state_sha256;  // the state after the step; empty for fedavg
};

class ServerOptimizer {
 public:
  // InvalidArgument as ValidateServerOptimizerOptions.
  static absl::StatusOr<ServerOptimizer> Create(const ServerOptimizerOptions& options);

  const ServerOptimizerOptions& options() const { return options_; }
  // fedavg: the new global model is the aggregate itself, so a caller can
  // skip Step and keep the aggregate's file (and its hash).
  bool replaces_model() const { return options_.kind == ServerOptimizerKind::kFedAvg; }

  // One server step. Reads the models `global_sha256` and
  // `aggregate_sha256` of `store`, which must hold the same tensors in the
  // same order, and the state `state_sha256` (empty: none yet), and commits
  // the new model (the aggregate's tensors) and the new state into `store`,
  // durably, as every ModelStore file. Only float32 tensors not named in
  // `not_stepped` are moved; every other tensor is taken from the aggregate. fedavg
  // writes no state and returns the aggregate's hash: the new model is the
  // aggregate.
  // Give it whole models, frozen tensors included (the aggregate after
  // RoundManager::CompleteRoundModel), and name the frozen ones in
  // `not_stepped` (with any others taken as aggregated): the state
  // covers every float32 tensor, so a step over a round's slice would not
  // fit the state of a round that trains other tensors.
  //   InvalidArgument: the specs of global and aggregate differ; a NaN or
  //     infinity in either; a new weight or state value overflows float32
  //     (naming tensor and element).
  //   FailedPrecondition: the state is of another kind, or its tensors do
  //     not fit the model (naming the tensor).
  //   NotFound: a file is missing. DataLoss: a body ends early.
  // The inputs are never changed, so after an error the last committed state
  // is still valid; a model file committed before the error is simply
  // unreferenced (ModelStore::CollectGarbage removes it).
  absl::StatusOr<ServerStep> Step(const ModelStore& store, const std::string& global_sha256,
                                  const std::string& aggregate_sha256,
                                  const std::string& state_sha256,
                                  const std::set<std::string>& not_stepped = {}) const;

  // The number of steps behind the state `state_sha256` of `store` (0 for
  // an empty hash). FailedPrecondition when it is not a state of this kind.
  absl::StatusOr<int64_t> StepsTaken(const ModelStore& store,
                                     const std::string& state_sha256) const;

 private:
  explicit ServerOptimizer(const ServerOptimizerOptions& options) : options_(options) {}
  ServerOptimizerOptions options_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SERVER_OPTIMIZER_H_
