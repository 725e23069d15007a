#include "cli/out_of_distribution.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/evaluation/mahalanobis.h"

namespace fedmi::cli {
namespace {

// Each row's distance under a fit on the other half of the rows: within
// each class, alternate rows go to alternate halves, so both halves hold
// every class whatever order the rows come in.
absl::StatusOr<std::vector<double>> CrossFittedDistances(const std::vector<float>& embeddings,
                                                         const std::vector<int64_t>& labels,
                                                         int64_t dim) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  std::vector<int> half_of(rows);
  std::map<int64_t, int64_t> seen;
  for (int64_t row = 0; row < rows; ++row) half_of[row] = static_cast<int>(seen[labels[row]]++ % 2);
  std::vector<double> distances(rows);
  for (int half = 0; half < 2; ++half) {
    std::vector<float> fit_rows, scored_rows;
    std::vector<int64_t> fit_labels, scored_at;
    for (int64_t row = 0; row < rows; ++row) {
      const auto begin = embeddings.begin() + row * dim;
      if (half_of[row] == half) {
        scored_rows.insert(scored_rows.end(), begin, begin + dim);
        scored_at.push_back(row);
      } else {
        fit_rows.insert(fit_rows.end(), begin, begin + dim);
        fit_labels.push_back(labels[row]);
      }
    }
    ASSIGN_OR_RETURN(ClassGaussians fitted, FitClassGaussians(fit_rows, fit_labels, dim));
    ASSIGN_OR_RETURN(std::vector<double> scored, MahalanobisDistances(fitted, scored_rows));
    for (size_t i = 0; i < scored.size(); ++i) distances[scored_at[i]] = scored[i];
  }
  return distances;
}

}  // namespace

absl::StatusOr<OutOfDistributionCheck> FlagOutOfDistribution(
    ModelRunner& runner, const std::string& model_path, const ImageSet& checked,
    const std::vector<bool>& training, double quantile, QualityReport& report) {
  if (!(quantile > 0 && quantile <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ood-quantile ", quantile, " is outside (0, 1]"));
  }
  OutOfDistributionCheck check;
  check.model = model_path;
  check.quantile = quantile;
  std::vector<float> train_embeddings;
  std::vector<int64_t> train_labels;
  ASSIGN_OR_RETURN(ImageEmbeddings all, runner.EmbedImages(model_path, checked));
  const int64_t dim = all.dim;
  for (int64_t row = 0; row < checked.size(); ++row) {
    if (!training[row]) continue;
    train_embeddings.insert(train_embeddings.end(), all.values.begin() + row * dim,
                            all.values.begin() + (row + 1) * dim);
    train_labels.push_back(checked.labels[row]);
  }
  check.fitted_on = static_cast<int64_t>(train_labels.size());
  if (check.fitted_on < 4) {
    return absl::InvalidArgumentError(
        "the out-of-distribution check needs at least 4 labelled training images to fit on");
  }
  ASSIGN_OR_RETURN(ClassGaussians fitted, FitClassGaussians(train_embeddings, train_labels, dim));
  ASSIGN_OR_RETURN(std::vector<double> distances, MahalanobisDistances(fitted, all.values));
  // A training image's own distance is measured by a fit without it (two
  // halves, each scored by the other's fit): in-sample distances are
  // smaller, and a threshold from them would flag typical new images.
  ASSIGN_OR_RETURN(std::vector<double> held_out,
                   CrossFittedDistances(train_embeddings, train_labels, dim));
  check.threshold = Quantile(held_out, quantile);
  for (int64_t row = 0, t = 0; row < checked.size(); ++row) {
    if (training[row]) distances[row] = held_out[t++];
  }
  for (int64_t row = 0; row < checked.size(); ++row) {
    if (distances[row] <= check.threshold) continue;
    QualityFinding finding;
    finding.index = row;
    finding.flag = QualityFlag::kOutOfDistribution;
    finding.statistic = QualityStatistic::kMahalanobis;
    finding.value = distances[row];
    report.findings.push_back(finding);
    ++check.flagged;
  }
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const QualityFinding& a, const QualityFinding& b) {
                     return a.index != b.index ? a.index < b.index : a.flag < b.flag;
                   });
  return check;
}

}  // namespace fedmi::cli
