#include "common/runspec/site_algorithms.h"

#include "absl/strings/str_cat.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_names.h"
#include "common/runspec/strategy_names.h"

namespace fedmi {
namespace {

absl::Status CheckScaffold(const v1::RunSpec& spec) {
  // Option II of the algorithm divides the distance plain SGD moved by its
  // steps; Adam's steps say nothing about the mean gradient.
  if (spec.optimizer() != "sgd") {
    return absl::InvalidArgumentError(absl::StrCat(
        "scaffold needs optimizer sgd, got ", spec.optimizer(),
        ": its control variates are the average SGD gradient, which adam's steps do not give"));
  }
  if (spec.model() == kSyntheticModel) {
    return absl::InvalidArgumentError("scaffold needs a model that sites train, not synthetic");
  }
  if (HasDifferentialPrivacy(spec)) {
    return absl::InvalidArgumentError(
        "scaffold cannot run with differential privacy: DP-SGD's noise does not cover the "
        "control variates, and a site-level clip would be shared between them and the weights");
  }
  if (spec.transfer().freeze_prefixes_size() > 0) {
    return absl::InvalidArgumentError(
        "scaffold cannot run with frozen tensors (transfer.freeze_prefixes): the control "
        "variates cover every trained tensor of every round");
  }
  // The server variate must be the mean of the sites' ones: a median or a
  // Krum selection breaks it, and their distances would be dominated by
  // the control variates rather than the weights.
  if (!spec.strategy().empty() && spec.strategy() != kFedAvgStrategy) {
    return absl::InvalidArgumentError(
        absl::StrCat("scaffold needs strategy fedavg, got ", spec.strategy(),
                     ": its server control variate is the mean of the sites' ones"));
  }
  if (spec.max_update_norm() > 0) {
    return absl::InvalidArgumentError(
        "scaffold cannot run with max_update_norm: the norm would count the control variates "
        "with the weights");
  }
  if (spec.recipe().proximal_mu() > 0) {
    return absl::InvalidArgumentError(
        "scaffold and proximal_mu both correct a site's drift; together the proximal pull "
        "would enter the control variates and be corrected twice: choose one");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSiteAlgorithms(const v1::RunSpec& spec) {
  if (spec.scaffold()) {
    if (absl::Status status = CheckScaffold(spec); !status.ok()) return status;
  }
  if (spec.recipe().proximal_mu() > 0) {
    if (spec.model() == kSyntheticModel) {
      return absl::InvalidArgumentError(
          "proximal_mu needs a model that sites train, not synthetic");
    }
    if (HasDifferentialPrivacy(spec) && !IsSiteLevelDp(spec)) {
      return absl::InvalidArgumentError(
          "proximal_mu cannot run with sample-level DP: DP-SGD clips and noises the data's "
          "gradients alone");
    }
  }
  return absl::OkStatus();
}

}  // namespace fedmi
