// Splitting one labelled data set across federated sites, to simulate the
// data heterogeneity of real hospitals. The schemes follow NIID-Bench (Li et
// al., "Federated Learning on Non-IID Data Silos: An Experimental Study",
// ICDE 2022):
//  - kIid:       shuffle and deal rows evenly (sizes differ by at most one);
//  - kDirichlet: label skew ("noniid-labeldir"): each class is spread over
//                the sites by proportions drawn from Dir(alpha); small alpha
//                gives sites dominated by a few classes;
//  - kQuantity:  quantity skew ("iid-diff-quantity"): a shuffled list is cut
//                into site sizes drawn from Dir(alpha).
//
// Deterministic for a given seed on a given standard library (std::mt19937_64
// and std::gamma_distribution). Pure functions; thread-safe.
#ifndef FEDMI_COMMON_DATA_PARTITION_H_
#define FEDMI_COMMON_DATA_PARTITION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

enum class PartitionKind { kIid, kDirichlet, kQuantity };

// "iid" | "dirichlet" | "quantity"; InvalidArgument listing these otherwise.
absl::StatusOr<PartitionKind> ParsePartitionKind(const std::string& name);
const char* PartitionKindName(PartitionKind kind);

struct PartitionOptions {
  PartitionKind kind = PartitionKind::kIid;
  int sites = 2;
  // Dirichlet concentration for kDirichlet and kQuantity; ignored by kIid.
  double alpha = 0.5;
  uint64_t seed = 0;
  // Every site gets at least this many rows.
  int64_t min_per_site = 10;
};

// Returns, per site, the row indices (into `labels`) it gets, each list in
// ascending order; every row is assigned to exactly one site. Labels may be
// any integers; kDirichlet treats each distinct value as a class.
// InvalidArgument for sites < 1, min_per_site < 0, or alpha <= 0 (or not
// finite) with kDirichlet/kQuantity; FailedPrecondition when
// sites * min_per_site exceeds the number of rows, or when 1000 Dirichlet
// draws in a row leave some site below min_per_site (raise alpha or lower
// min_per_site).
absl::StatusOr<std::vector<std::vector<int64_t>>> PartitionIndices(
    const std::vector<int64_t>& labels, const PartitionOptions& options);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_PARTITION_H_
