#include "common/data/partition.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

// NIID-Bench redraws until every site is large enough; with a hopeless
// alpha/min_per_site combination that loop would never end.
constexpr int kMaxDirichletAttempts = 1000;

using SiteIndices = std::vector<std::vector<int64_t>>;

std::vector<double> SampleDirichlet(int sites, double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  std::vector<double> proportions(sites);
  double sum = 0;
  for (double& p : proportions) {
    p = gamma(rng);
    sum += p;
  }
  if (sum > 0) {
    for (double& p : proportions) p /= sum;
  } else {
    // Every draw underflowed (tiny alpha): the limit of Dir(alpha -> 0) puts
    // all mass on one site chosen uniformly.
    std::uniform_int_distribution<int> pick(0, sites - 1);
    proportions[pick(rng)] = 1.0;
  }
  return proportions;
}

// Cut points of numpy's `(np.cumsum(p) * n).astype(int)[:-1]`, so that
// np.split(rows, cuts) gives piece j the rows [cuts[j-1], cuts[j]).
std::vector<int64_t> CumulativeCuts(const std::vector<double>& proportions, int64_t n) {
  std::vector<int64_t> cuts;
  double cumulative = 0;
  for (size_t j = 0; j + 1 < proportions.size(); ++j) {
    cumulative += proportions[j];
    cuts.push_back(
        std::clamp<int64_t>(static_cast<int64_t>(cumulative * static_cast<double>(n)), 0, n));
  }
  // Rounding can make cumsum decrease by an ulp; keep cuts monotone.
  for (size_t j = 1; j < cuts.size(); ++j) cuts[j] = std::max(cuts[j], cuts[j - 1]);
  return cuts;
}

// Appends rows[cut_{j-1} .. cut_j) to sites[j].
void SplitByCuts(const std::vector<int64_t>& rows, const std::vector<int64_t>& cuts,
                 SiteIndices& sites) {
  int64_t begin = 0;
  for (size_t j = 0; j < sites.size(); ++j) {
    const int64_t end = j < cuts.size() ? cuts[j] : static_cast<int64_t>(rows.size());
    sites[j].insert(sites[j].end(), rows.begin() + begin, rows.begin() + end);
    begin = end;
  }
}

size_t SmallestSite(const SiteIndices& sites) {
  size_t smallest = sites.empty() ? 0 : sites[0].size();
  for (const auto& site : sites) smallest = std::min(smallest, site.size());
  return smallest;
}

std::vector<int64_t> ShuffledRows(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

SiteIndices PartitionIid(int64_t n, int sites, std::mt19937_64& rng) {
  const std::vector<int64_t> rows = ShuffledRows(n, rng);
  // Like np.array_split: the first n % sites sites get one extra row.
  std::vector<int64_t> cuts;
  int64_t end = 0;
  for (int j = 0; j + 1 < sites; ++j) {
    end += n / sites + (j < n % sites ? 1 : 0);
    cuts.push_back(end);
  }
  SiteIndices result(sites);
  SplitByCuts(rows, cuts, result);
  return result;
}

absl::StatusOr<SiteIndices> PartitionDirichlet(const std::vector<int64_t>& labels,
                                               const PartitionOptions& options,
                                               std::mt19937_64& rng) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::map<int64_t, std::vector<int64_t>> rows_by_class;
  for (int64_t row = 0; row < n; ++row) rows_by_class[labels[row]].push_back(row);
  const double site_cap = static_cast<double>(n) / options.sites;

  for (int attempt = 0; attempt < kMaxDirichletAttempts; ++attempt) {
    SiteIndices result(options.sites);
    for (auto& [label, class_rows] : rows_by_class) {
      std::shuffle(class_rows.begin(), class_rows.end(), rng);
      std::vector<double> proportions = SampleDirichlet(options.sites, options.alpha, rng);
      // Sites that already hold their even share take no more, which keeps
      // one site from swallowing the data set.
      double sum = 0;
      for (int j = 0; j < options.sites; ++j) {
        if (static_cast<double>(result[j].size()) >= site_cap) proportions[j] = 0;
        sum += proportions[j];
      }
      if (sum > 0) {
        for (double& p : proportions) p /= sum;
      } else {
        // Only reachable through rounding: spread evenly instead of
        // dividing by zero.
        std::fill(proportions.begin(), proportions.end(), 1.0 / options.sites);
      }
      SplitByCuts(class_rows, CumulativeCuts(proportions, static_cast<int64_t>(class_rows.size())),
                  result);
    }
    if (static_cast<int64_t>(SmallestSite(result)) >= options.min_per_site) return result;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("dirichlet partition with alpha ", options.alpha, " could not give each of ",
                   options.sites, " sites at least ", options.min_per_site, " of ", n, " rows in ",
                   kMaxDirichletAttempts, " attempts; raise alpha or lower min_per_site"));
}

absl::StatusOr<SiteIndices> PartitionQuantity(int64_t n, const PartitionOptions& options,
                                              std::mt19937_64& rng) {
  const std::vector<int64_t> rows = ShuffledRows(n, rng);
  for (int attempt = 0; attempt < kMaxDirichletAttempts; ++attempt) {
    const std::vector<double> proportions = SampleDirichlet(options.sites, options.alpha, rng);
    const std::vector<int64_t> cuts = CumulativeCuts(proportions, n);
    // Check the sizes after truncation, not the proportions as NIID-Bench
    // does, so min_per_site holds exactly.
    int64_t begin = 0;
    int64_t smallest = n;
    for (int j = 0; j < options.sites; ++j) {
      const int64_t end = j < static_cast<int>(cuts.size()) ? cuts[j] : n;
      smallest = std::min(smallest, end - begin);
      begin = end;
    }
    if (smallest >= options.min_per_site) {
      SiteIndices result(options.sites);
      SplitByCuts(rows, cuts, result);
      return result;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("quantity partition with alpha ", options.alpha, " could not give each of ",
                   options.sites, " sites at least ", options.min_per_site, " of ", n, " rows in ",
                   kMaxDirichletAttempts, " attempts; raise alpha or lower min_per_site"));
}

}  // namespace

absl::StatusOr<PartitionKind> ParsePartitionKind(const std::string& name) {
  if (name == "iid") return PartitionKind::kIid;
  if (name == "dirichlet") return PartitionKind::kDirichlet;
  if (name == "quantity") return PartitionKind::kQuantity;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown partition '", name, "'; valid partitions are iid, dirichlet, quantity"));
}

const char* PartitionKindName(PartitionKind kind) {
  switch (kind) {
    case PartitionKind::kIid:
      return "iid";
    case PartitionKind::kDirichlet:
      return "dirichlet";
    case PartitionKind::kQuantity:
      return "quantity";
  }
  return "unknown";
}

absl::StatusOr<std::vector<std::vector<int64_t>>> PartitionIndices(
    const std::vector<int64_t>& labels, const PartitionOptions& options) {
  if (options.sites < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition needs at least 1 site, got ", options.sites));
  }
  if (options.min_per_site < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_per_site must be >= 0, got ", options.min_per_site));
  }
  const bool uses_alpha = options.kind != PartitionKind::kIid;
  if (uses_alpha && !(options.alpha > 0 && std::isfinite(options.alpha))) {
    return absl::InvalidArgumentError(absl::StrCat(
        PartitionKindName(options.kind), " partition needs alpha > 0, got ", options.alpha));
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  if (static_cast<int64_t>(options.sites) * options.min_per_site > n) {
    return absl::FailedPreconditionError(absl::StrCat("cannot give each of ", options.sites,
                                                      " sites at least ", options.min_per_site,
                                                      " rows: there are only ", n, " rows"));
  }

  std::mt19937_64 rng(options.seed);
  SiteIndices result;
  switch (options.kind) {
    case PartitionKind::kIid:
      result = PartitionIid(n, options.sites, rng);
      break;
    case PartitionKind::kDirichlet: {
      absl::StatusOr<SiteIndices> dirichlet = PartitionDirichlet(labels, options, rng);
      if (!dirichlet.ok()) return dirichlet.status();
      result = std::move(*dirichlet);
      break;
    }
    case PartitionKind::kQuantity: {
      absl::StatusOr<SiteIndices> quantity = PartitionQuantity(n, options, rng);
      if (!quantity.ok()) return quantity.status();
      result = std::move(*quantity);
      break;
    }
  }
  for (auto& site : result) std::sort(site.begin(), site.end());
  return result;
}

}  // namespace fedmi
