// How far an image lies from the images a model was trained on, in the
// model's embedding space (Lee et al. 2018): one Gaussian per class with a
// shared covariance, fitted on the training images' embeddings; an image's
// distance is the smallest Mahalanobis distance to a class mean. Used by
// `fedmi data inspect --ood-model` to flag images unlike the site's
// training set (another body part, a photo of a screen, noise). Arithmetic
// only; thread-compatible.
#ifndef FEDMI_COMMON_EVALUATION_MAHALANOBIS_H_
#define FEDMI_COMMON_EVALUATION_MAHALANOBIS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

struct ClassGaussians {
  int64_t dim = 0;
  std::vector<int64_t> classes;  // the labels seen, in order
  std::vector<double> means;     // classes.size() x dim
  // The shared covariance plus a ridge of dim / rows (at least 1e-6, at
  // most 1) times its mean variance (few rows, or the dead, constant
  // features of ReLU layers, make the covariance singular), as its Cholesky
  // factor L
  // (precision = L^-T L^-1 is never formed): dim x dim, lower triangle.
  std::vector<double> cholesky;
};

// `embeddings` rows x dim, row-major, one label per row (any integers).
// InvalidArgument for inconsistent sizes, fewer than 2 rows, or dim < 1.
absl::StatusOr<ClassGaussians> FitClassGaussians(const std::vector<float>& embeddings,
                                                 const std::vector<int64_t>& labels, int64_t dim);

// The smallest distance of each row of `embeddings` (rows x dim) to a class
// mean. InvalidArgument when the size is not a multiple of dim.
absl::StatusOr<std::vector<double>> MahalanobisDistances(const ClassGaussians& fitted,
                                                         const std::vector<float>& embeddings);

// The q-quantile (q in [0, 1], linear between order statistics) of
// `values`; NaN for none.
double Quantile(std::vector<double> values, double q);

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_MAHALANOBIS_H_
