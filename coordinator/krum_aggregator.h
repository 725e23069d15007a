// Krum and Multi-Krum (Blanchard et al., "Machine Learning with Adversaries:
// Byzantine Tolerant Gradient Descent", NeurIPS 2017). With n updates of
// which up to f may come from Byzantine sites (n >= 2f + 3), each update i is
// scored by the sum of the squared Euclidean distances to its n - f - 2
// nearest other updates. Krum returns the best-scored update as it is;
// Multi-Krum returns the unweighted mean of the m best-scored (m <= n - f,
// n - f when not given). An update far from the honest majority, such as one
// scaled x10 or sign-flipped, has a large score and is never chosen, so the
// round's model is one (or the mean of several) of the updates that agree.
//
// Determinism: scores are sums in double of squared float differences,
// taken in parameter order and, per update, over its nearest neighbours in
// ascending order; equal scores are ranked by site name (byte order), then by
// acceptance order (only for a site that sent twice). Multi-Krum sums the
// chosen updates in that rank order. So the model does not depend on the order
// updates arrived in, and a tie never picks at random.
//
// Memory, for N updates, P parameters and a chunk of C parameters (64 Ki by
// default): the N x N matrix of squared distances (8 N^2 bytes), N x C floats
// while it is computed, then m x C floats and C floats to average the chosen
// updates; nothing grows with P. Disk: 4 x N x P bytes of spool. Finish reads
// every spool file once to score and the chosen ones once more, and does
// N (N - 1) / 2 x P multiply-adds.
//
// Spooling, refusals (non-float32 tensors, NaN, infinity, shape mismatch) and
// thread-safety are SpooledAggregator's (coordinator/spooled_aggregator.h).
// `weight` is ignored, as by the median.
#ifndef FEDMI_COORDINATOR_KRUM_AGGREGATOR_H_
#define FEDMI_COORDINATOR_KRUM_AGGREGATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/aggregator.h"
#include "coordinator/spooled_aggregator.h"

namespace fedmi {

struct KrumOptions {
  // f, the Byzantine sites tolerated (>= 0).
  int32_t byzantine_sites = 1;
  // m, the best-scored updates averaged: 1 is Krum; 0 means n - f.
  int32_t selected = 1;
  SpoolOptions spool;
};

class KrumAggregator : public SpooledAggregator {
 public:
  // `strategy` ("krum" or "multikrum") names it in errors and in its spool
  // directory.
  KrumAggregator(std::string strategy, KrumOptions options);

  // InvalidArgument naming the option: byzantine_sites < 0, selected < 0.
  static absl::Status CheckOptions(const std::string& strategy, const KrumOptions& options);
  // max(2f + 3, m + f): fewer updates are refused at Finish.
  static int32_t MinUpdates(const KrumOptions& options);

  struct RankedUpdate {
    std::string site;
    double score = 0;  // sum of squared distances to its n - f - 2 nearest
    bool selected = false;
  };
  // The ranking made by the last Finish that got as far as scoring, best
  // first; empty before. For tests and for telling which sites were left out.
  const std::vector<RankedUpdate>& last_ranking() const { return last_ranking_; }
  // The sites the last ranking did not select.
  SiteDecisions decisions() const override;

 protected:
  absl::Status CheckOptions() const override { return CheckOptions(strategy(), options_); }
  // FailedPrecondition: fewer than 2f + 3 updates, or fewer than m + f.
  absl::Status CheckUpdateCount(size_t updates) const override;
  absl::Status WriteAggregate(BundleFileWriter& writer) override;

 private:
  // Squared distances between every pair of updates, row-major N x N.
  absl::Status PairwiseSquaredDistances(std::vector<double>& distances) const;
  // Acceptance indices of the chosen updates, best first; fills last_ranking_.
  std::vector<size_t> Select(const std::vector<double>& distances);
  absl::Status WriteMeanOf(const std::vector<size_t>& chosen, BundleFileWriter& writer) const;

  const KrumOptions options_;
  std::vector<RankedUpdate> last_ranking_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_KRUM_AGGREGATOR_H_
