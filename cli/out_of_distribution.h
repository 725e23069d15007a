// `fedmi data inspect --ood-model`: images far from the site's training
// images in a model's embedding space (common/evaluation/mahalanobis.h).
// Class Gaussians with a shared covariance are fitted on the embeddings of
// the labelled training images; an image is flagged out-of-distribution
// when its distance exceeds the `quantile` of the training images' own
// distances, each measured by a fit on the other half of them (0.99: about
// 1% of the training images are flagged by construction, the price of a
// threshold the site's own data sets). Torch-free: the
// model runs behind ModelRunner.
#ifndef FEDMI_CLI_OUT_OF_DISTRIBUTION_H_
#define FEDMI_CLI_OUT_OF_DISTRIBUTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/model_runner.h"
#include "common/data/dataset.h"
#include "common/data/image_quality.h"

namespace fedmi::cli {

struct OutOfDistributionCheck {
  std::string model;
  double quantile = 0.99;
  int64_t fitted_on = 0;  // labelled training images
  double threshold = 0;   // Mahalanobis distance
  int64_t flagged = 0;
};

// Adds a kOutOfDistribution finding (statistic kMahalanobis) to `report`
// for each row of `checked` over the threshold; `training[row]` marks the
// labelled training rows the Gaussians are fitted on (their labels are
// checked.labels). InvalidArgument for fewer than 4 training rows or a
// quantile outside (0, 1]; the runner's errors (another geometry).
absl::StatusOr<OutOfDistributionCheck> FlagOutOfDistribution(
    ModelRunner& runner, const std::string& model_path, const ImageSet& checked,
    const std::vector<bool>& training, double quantile, QualityReport& report);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_OUT_OF_DISTRIBUTION_H_
