#include "common/evaluation/mahalanobis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"

namespace fedmi {

absl::StatusOr<ClassGaussians> FitClassGaussians(const std::vector<float>& embeddings,
                                                 const std::vector<int64_t>& labels, int64_t dim) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  if (dim < 1 || rows < 2 || static_cast<int64_t>(embeddings.size()) != rows * dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("fitting class Gaussians needs at least 2 rows of a dim >= 1 embedding; got ",
                     rows, " labels, dim ", dim, " and ", embeddings.size(), " values"));
  }
  ClassGaussians fitted;
  fitted.dim = dim;
  std::map<int64_t, std::pair<std::vector<double>, int64_t>> sums;  // label -> (sum, count)
  for (int64_t row = 0; row < rows; ++row) {
    auto& [sum, count] = sums[labels[row]];
    sum.resize(dim, 0.0);
    for (int64_t d = 0; d < dim; ++d) sum[d] += embeddings[row * dim + d];
    ++count;
  }
  std::map<int64_t, size_t> index_of;
  for (auto& [label, sum_count] : sums) {
    index_of[label] = fitted.classes.size();
    fitted.classes.push_back(label);
    for (double s : sum_count.first) fitted.means.push_back(s / sum_count.second);
  }
  // The shared (within-class) covariance.
  std::vector<double> cov(dim * dim, 0.0), centred(dim);
  for (int64_t row = 0; row < rows; ++row) {
    const double* mean = fitted.means.data() + index_of[labels[row]] * dim;
    for (int64_t d = 0; d < dim; ++d) centred[d] = embeddings[row * dim + d] - mean[d];
    for (int64_t i = 0; i < dim; ++i) {
      for (int64_t j = 0; j <= i; ++j) cov[i * dim + j] += centred[i] * centred[j];
    }
  }
  double trace = 0;
  for (int64_t i = 0; i < dim; ++i) trace += cov[i * dim + i] / rows;
  // Shrinkage towards the mean variance, stronger when the rows are few
  // for the dimensions (a site of 100 images in a 128-wide embedding has a
  // singular covariance): dim / rows of it, at least 1e-6 and at most all.
  const double shrinkage = std::clamp(static_cast<double>(dim) / rows, 1e-6, 1.0);
  const double ridge = shrinkage * trace / dim + 1e-12;
  // Cholesky of cov / rows + ridge I, lower triangle in place.
  std::vector<double>& l = fitted.cholesky;
  l.assign(dim * dim, 0.0);
  for (int64_t i = 0; i < dim; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      double value = cov[i * dim + j] / rows + (i == j ? ridge : 0.0);
      for (int64_t k = 0; k < j; ++k) value -= l[i * dim + k] * l[j * dim + k];
      if (i == j) {
        l[i * dim + i] = std::sqrt(std::max(value, ridge));
      } else {
        l[i * dim + j] = value / l[j * dim + j];
      }
    }
  }
  return fitted;
}

absl::StatusOr<std::vector<double>> MahalanobisDistances(const ClassGaussians& fitted,
                                                         const std::vector<float>& embeddings) {
  const int64_t dim = fitted.dim;
  if (dim < 1 || embeddings.size() % dim != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(embeddings.size(), " values are not rows of dim ", dim));
  }
  const int64_t rows = static_cast<int64_t>(embeddings.size()) / dim;
  std::vector<double> distances(rows, std::numeric_limits<double>::infinity());
  std::vector<double> y(dim);
  for (int64_t row = 0; row < rows; ++row) {
    for (size_t c = 0; c < fitted.classes.size(); ++c) {
      // Solve L y = x - mean; the squared distance is |y|^2.
      double squared = 0;
      for (int64_t i = 0; i < dim; ++i) {
        double value = embeddings[row * dim + i] - fitted.means[c * dim + i];
        for (int64_t k = 0; k < i; ++k) value -= fitted.cholesky[i * dim + k] * y[k];
        y[i] = value / fitted.cholesky[i * dim + i];
        squared += y[i] * y[i];
      }
      distances[row] = std::min(distances[row], std::sqrt(squared));
    }
  }
  return distances;
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double position = std::clamp(q, 0.0, 1.0) * (values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(values.size() - 1, below + 1);
  return values[below] + (position - below) * (values[above] - values[below]);
}

}  // namespace fedmi
