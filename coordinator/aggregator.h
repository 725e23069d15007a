// Aggregation strategies. An Aggregator takes complete, validated updates one
// at a time. FedAvg folds each into a running sum, so its memory stays
// O(model size) however many sites take part; median needs every update at
// once and spools them to disk (memory O(sites x chunk)).
//
// Not thread-safe: the RoundManager serialises calls per run.
#ifndef FEDMI_COORDINATOR_AGGREGATOR_H_
#define FEDMI_COORDINATOR_AGGREGATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/tensor_bundle.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"

namespace fedmi {

class Aggregator {
 public:
  virtual ~Aggregator() = default;

  // Starts a round whose updates must match `model_specs` exactly.
  // InvalidArgument when the strategy cannot handle a tensor (e.g. a dtype).
  virtual absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) = 0;
  // Folds in one site's full model update with its weight (example count).
  // `update` is positioned at the start of its body; its specs were already
  // checked. On error the aggregate is unusable and the caller fails the round.
  virtual absl::Status Accept(const std::string& site, double weight, BundleFileReader& update) = 0;
  virtual int accepted() const = 0;
  // Writes the aggregate as a new model into `store`; returns its SHA-256
  // (hex). FailedPrecondition when no update was accepted.
  virtual absl::StatusOr<std::string> Finish(const ModelStore& store) = 0;
};

// "fedavg": example-weighted mean of the sites' weights, accumulated in
// double precision.
// "median": unweighted coordinate-wise median (coordinator/median_aggregator.h);
// it spools every update to a directory under the system temp dir until
// Finish.
// InvalidArgument naming the known strategies for any other name.
absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy);

// Whether `strategy` needs each site's individual update (median, Krum,
// ...): such strategies cannot run under secure aggregation, where the
// coordinator only ever learns the sum. False for "fedavg" and for unknown names.
bool StrategyNeedsIndividualUpdates(const std::string& strategy);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_AGGREGATOR_H_
