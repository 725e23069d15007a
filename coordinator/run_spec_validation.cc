#include "coordinator/run_spec_validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/aggregator.h"

namespace fedmi {
namespace {

constexpr int32_t kMaxRounds = 100000;

absl::Status ValidateSecAggSettings(const v1::RunSpec& spec) {
  if (StrategyNeedsIndividualUpdates(spec.strategy())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy '", spec.strategy(),
        "' needs each site's individual update, which secure "
        "aggregation hides from the coordinator: use fedavg, or turn secure aggregation off"));
  }
  const v1::SecAggSettings& settings = spec.secagg();
  // A threshold of t needs t + 1 sites: each site's secrets are shared among
  // the others only.
  if (spec.min_sites() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("secure aggregation needs min_sites of at least 3, got ", spec.min_sites(),
                     " (with 2 sites each could subtract its own update from the sum)"));
  }
  if (settings.threshold() != 0 &&
      (settings.threshold() < 2 || settings.threshold() > spec.min_sites() - 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg threshold must be between 2 and min_sites - 1 (", spec.min_sites() - 1,
                     "), got ", settings.threshold()));
  }
  if (settings.neighbours() != 0 && settings.neighbours() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg neighbours must be at least 2 (0: every other site), got ", settings.neighbours()));
  }
  if (settings.threshold() != 0 && settings.neighbours() != 0 &&
      settings.threshold() > settings.neighbours()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg threshold ", settings.threshold(), " exceeds secagg neighbours ",
        settings.neighbours(), ": a site's secrets are shared among its neighbours only"));
  }
  if (settings.clip() < 0 || !std::isfinite(settings.clip()) || settings.clip() > 1e6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg clip must be positive and at most 1e6 (0: default 1.0), got ", settings.clip()));
  }
  if (spec.max_update_norm() > 0) {
    return absl::InvalidArgumentError(
        "max_update_norm cannot be checked on masked updates: with secure aggregation the "
        "secagg clip bounds each value instead");
  }
  if (settings.max_examples() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg max_examples must not be negative, got ", settings.max_examples()));
  }
  if (spec.max_sites() > 0 && spec.max_sites() > (1 << 24)) {
    return absl::InvalidArgumentError("secure aggregation supports at most 2^24 sites per round");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRunSpec(v1::RunSpec* spec) {
  if (spec->model().empty()) spec->set_model("cnn");
  if (spec->strategy().empty()) spec->set_strategy("fedavg");
  if (spec->optimizer().empty()) spec->set_optimizer("adam");
  if (spec->num_classes() == 0) spec->set_num_classes(2);
  if (spec->min_sites() == 0) spec->set_min_sites(1);
  if (spec->local_epochs() == 0) spec->set_local_epochs(1);
  if (spec->batch_size() == 0) spec->set_batch_size(64);
  if (spec->lr() == 0) spec->set_lr(1e-3);
  if (spec->round_timeout_s() == 0) spec->set_round_timeout_s(3600);

  if (spec->rounds() < 1 || spec->rounds() > kMaxRounds) {
    return absl::InvalidArgumentError(
        absl::StrCat("rounds must be between 1 and ", kMaxRounds, ", got ", spec->rounds()));
  }
  if (spec->min_sites() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_sites must be at least 1, got ", spec->min_sites()));
  }
  if (spec->max_sites() < 0 || (spec->max_sites() > 0 && spec->max_sites() < spec->min_sites())) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_sites must be 0 (all) or at least min_sites (", spec->min_sites(),
                     "), got ", spec->max_sites()));
  }
  if (spec->local_epochs() < 1 || spec->local_epochs() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("local_epochs must be between 1 and 1000, got ", spec->local_epochs()));
  }
  if (spec->batch_size() < 1 || spec->batch_size() > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size must be between 1 and 65536, got ", spec->batch_size()));
  }
  if (!(spec->lr() > 0) || !std::isfinite(spec->lr())) {
    return absl::InvalidArgumentError(
        absl::StrCat("lr must be a positive number, got ", spec->lr()));
  }
  if (spec->num_classes() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes must be at least 2, got ", spec->num_classes()));
  }
  if (!(spec->round_timeout_s() > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("round_timeout_s must be positive, got ", spec->round_timeout_s()));
  }
  if (spec->optimizer() != "adam" && spec->optimizer() != "sgd") {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer '", spec->optimizer(), "' is unknown; use adam or sgd"));
  }
  if (spec->model() == "synthetic" && spec->synthetic_params() <= 0) {
    return absl::InvalidArgumentError("model 'synthetic' needs synthetic_params > 0");
  }
  if (!(spec->max_update_norm() >= 0) || !std::isfinite(spec->max_update_norm())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_update_norm must be 0 (no bound) or positive, got ", spec->max_update_norm()));
  }
  if (spec->max_round_retries() < 0 || spec->max_round_retries() > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_round_retries must be between 0 and 100, got ", spec->max_round_retries()));
  }
  // Accepting this flag while running without it would tell sites and
  // auditors a privacy guarantee that does not hold.
  if (spec->differential_privacy()) {
    return absl::UnimplementedError("differential_privacy is not available yet");
  }
  auto aggregator = MakeAggregator(spec->strategy());
  if (!aggregator.ok()) return aggregator.status();
  if (spec->secure_aggregation()) RETURN_IF_ERROR(ValidateSecAggSettings(*spec));
  return absl::OkStatus();
}

}  // namespace fedmi
