// Aggregation strategies. An Aggregator takes complete, validated updates one
// at a time. FedAvg and norm-bounded FedAvg fold each into a running sum, so
// their memory stays O(model size) however many sites take part; the robust
// strategies (median, trimmed mean, Krum) need every update at once and spool
// them to disk (memory O(sites x chunk), Krum O(sites^2) more; see
// docs/strategies.md).
//
// Not thread-safe: the RoundManager serialises calls per run.
#ifndef FEDMI_COORDINATOR_AGGREGATOR_H_
#define FEDMI_COORDINATOR_AGGREGATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/tensor_bundle.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"

namespace fedmi {

// What a strategy decided about individual sites in its last Finish, for
// the round's audit entry: an auditor can see whose update was left out or
// cut down, and by how much.
struct SiteDecisions {
  // Sites whose updates the aggregate does not use (Krum, Multi-Krum).
  std::vector<std::string> left_out;
  // norm_bounded: each accepted site's change norm, in acceptance order, the
  // bound, and the sites whose change was scaled down to it.
  std::vector<std::pair<std::string, double>> change_norms;
  double norm_bound = 0;
  std::vector<std::string> scaled_down;
};

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
  // After a successful Finish. Empty for the strategies that use every
  // update as it came (FedAvg, median, trimmed mean: these drop values per
  // coordinate, not sites).
  virtual SiteDecisions decisions() const { return {}; }
};

// Where the strategies that need every update at once keep them until Finish
// (coordinator/spooled_aggregator.h).
struct SpoolOptions {
  // Where Begin creates each round's spool directory. Empty: the system temp
  // dir (std::filesystem::temp_directory_path(), i.e. $TMPDIR or /tmp). The
  // model store's directory would be the natural place, but the store reaches
  // the aggregator only in Finish.
  std::string spool_parent;
  // Parameters Finish reads from each spool file at a time (> 0).
  size_t parameters_per_chunk = size_t{64} * 1024;
};

// The robust strategies' settings; each strategy reads only its own.
struct AggregatorOptions {
  // "trimmed_mean": the fraction of sites trimmed at each end of every
  // coordinate, in [0, 0.5). The default trims one of 5 sites at each end.
  double trim_fraction = 0.2;
  // "krum", "multikrum": f, the Byzantine sites tolerated (>= 0); a round
  // needs at least 2f + 3 updates.
  int32_t byzantine_sites = 1;
  // "multikrum": m, the best-scored updates averaged (>= 1; 0: n - f for n
  // updates). "krum" always selects one.
  int32_t multikrum_selected = 0;
  // "norm_bounded": B, the L2 norm each site's change to the global model is
  // scaled down to (finite, > 0). No default: 0 is refused.
  double norm_bound = 0;
  // "norm_bounded": the round's global model, the one the sites trained
  // from and against which their changes are measured (a ModelStore path;
  // the RoundManager sets it for each round). Ignored by the others.
  std::string global_model_path;
  SpoolOptions spool;
};

// "fedavg": example-weighted mean of the sites' weights, accumulated in
// double precision.
// "median": unweighted coordinate-wise median (coordinator/median_aggregator.h).
// "trimmed_mean": unweighted coordinate-wise trimmed mean
// (coordinator/trimmed_mean_aggregator.h).
// "krum", "multikrum": the update(s) closest to their neighbours, Blanchard
// et al. 2017 (coordinator/krum_aggregator.h).
// "norm_bounded": fedavg of the sites' changes to options.global_model_path,
// each scaled down to L2 norm options.norm_bound
// (coordinator/norm_bounded_aggregator.h).
// All but fedavg and norm_bounded spool every update under options.spool
// until Finish. InvalidArgument naming the known strategies for any other
// name (CheckStrategyName), for options out of range
// (ValidateAggregatorOptions), and for norm_bounded without a global model.
absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy,
                                                           const AggregatorOptions& options);
// The same with default AggregatorOptions (which norm_bounded refuses: it
// has no default bound).
absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy);

// InvalidArgument naming the known strategies unless `strategy` is one.
absl::Status CheckStrategyName(const std::string& strategy);

// InvalidArgument naming the option of `strategy` that is out of range, e.g.
// "trimmed_mean: trim_fraction must be in [0, 0.5), got 0.5". Options the
// strategy does not read are not checked. OK for unknown strategies (their
// name is MakeAggregator's to refuse).
absl::Status ValidateAggregatorOptions(const std::string& strategy,
                                       const AggregatorOptions& options);

// The fewest updates a round of `strategy` can aggregate with `options`:
// max(2f + 3, m + f) for Krum and Multi-Krum, 1 otherwise. A run whose
// min_sites is below it may reach Finish with too few updates, which fails
// the round; at or above it, the RoundManager's quorum check fails the round
// first.
int32_t MinUpdatesFor(const std::string& strategy, const AggregatorOptions& options);

// Whether `strategy` needs each site's individual update (median,
// trimmed_mean, krum, multikrum): such strategies cannot run under secure
// aggregation, where the coordinator only ever learns the sum. False for
// "fedavg", for "norm_bounded" (whose sites then clip their own change) and
// for unknown names.
bool StrategyNeedsIndividualUpdates(const std::string& strategy);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_AGGREGATOR_H_
