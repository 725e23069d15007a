#include "coordinator/run_spec_validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_names.h"
#include "common/runspec/site_algorithms.h"
#include "common/runspec/training_recipe.h"
#include "common/runspec/transfer.h"
#include "coordinator/aggregator.h"
#include "coordinator/server_optimizer_settings.h"
#include "coordinator/strategy_settings.h"

namespace fedmi {
namespace {

constexpr int32_t kMaxRounds = 100000;
// Below one over the number of patients in any federation fedmi serves.
constexpr double kDefaultDpDelta = 1e-5;

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

absl::Status CheckFraction(const char* name, double value) {
  if (!(value > 0 && value < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp ", name, " must be between 0 and 1 (exclusive), got ", value));
  }
  return absl::OkStatus();
}

absl::Status ValidateSiteDpSettings(const v1::RunSpec& spec) {
  const v1::DpSettings& dp = spec.dp();
  if (spec.strategy() != "fedavg") {
    return absl::InvalidArgumentError(absl::StrCat(
        "site-level differential privacy is DP-FedAvg: it adds noise to the sum of the sites' "
        "clipped updates, which strategy '",
        spec.strategy(), "' does not compute; use fedavg"));
  }
  if (dp.noise_placement() == v1::DP_NOISE_DISTRIBUTED && !spec.secure_aggregation()) {
    return absl::InvalidArgumentError(
        "distributed noise needs secure aggregation: without it the coordinator would see each "
        "site's update with only its share of the noise; add --secure-aggregation or use "
        "--dp-noise central");
  }
  if (dp.adaptive_clipping()) {
    if (dp.noise_placement() != v1::DP_NOISE_CENTRAL) {
      return absl::UnimplementedError(
          "adaptive clipping needs a noised count of the sites within the clip, which fedmi "
          "adds centrally only: use --dp-noise central, or a fixed --clip with distributed noise");
    }
    if (!(dp.target_quantile() >= 0 && dp.target_quantile() < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dp target_quantile must be in (0, 1) (0: 0.5), got ", dp.target_quantile()));
    }
    if (!(dp.clip_learning_rate() >= 0 && dp.clip_learning_rate() <= 10)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dp clip_learning_rate must be in (0, 10] (0: 0.2), got ", dp.clip_learning_rate()));
    }
    if (!(dp.clip_count_noise_multiplier() >= 0) ||
        !std::isfinite(dp.clip_count_noise_multiplier())) {
      return absl::InvalidArgumentError(
          absl::StrCat("dp clip_count_noise_multiplier must be positive (0: derived), got ",
                       dp.clip_count_noise_multiplier()));
    }
  }
  if (dp.sample_rate() != 0 && dp.sample_rate() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "site-level accounting takes the coordinator's choice of sites as given (sample rate "
        "1): sites cannot check a sampling they do not see; got dp sample_rate ",
        dp.sample_rate()));
  }
  if (dp.expected_sites() < 0 ||
      (dp.expected_sites() > 0 && dp.expected_sites() < spec.min_sites())) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp expected_sites must be 0 (the connected sites) or at least min_sites (",
                     spec.min_sites(), "), got ", dp.expected_sites()));
  }
  return absl::OkStatus();
}

absl::Status ValidateDpSettings(v1::RunSpec* spec) {
  v1::DpSettings& dp = *spec->mutable_dp();
  if (dp.delta() == 0) dp.set_delta(kDefaultDpDelta);
  if (dp.clip_norm() == 0) dp.set_clip_norm(1.0);
  RETURN_IF_ERROR(CheckFraction("delta", dp.delta()));
  if (!(dp.clip_norm() > 0) || !std::isfinite(dp.clip_norm())) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp clip_norm must be positive, got ", dp.clip_norm()));
  }
  if (!(dp.target_epsilon() >= 0) || !std::isfinite(dp.target_epsilon())) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp target_epsilon must be positive, got ", dp.target_epsilon()));
  }
  if (!(dp.noise_multiplier() >= 0) || !std::isfinite(dp.noise_multiplier())) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp noise_multiplier must be positive, got ", dp.noise_multiplier()));
  }
  // A run must state its budget: it is what the coordinator stops at and
  // what sites and ethics boards read.
  if (dp.target_epsilon() == 0) {
    return absl::InvalidArgumentError(
        "differential privacy needs a target epsilon (--target-epsilon): the run's budget");
  }
  if (!(dp.sample_rate() >= 0 && dp.sample_rate() <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dp sample_rate must be in (0, 1] (0: derived), got ", dp.sample_rate()));
  }
  if (dp.adaptive_clipping() && dp.level() != v1::DP_LEVEL_SITE) {
    return absl::InvalidArgumentError(
        "adaptive clipping moves the clip of site updates (--dp site); DP-SGD clips each example "
        "to a fixed --clip");
  }
  if (dp.level() == v1::DP_LEVEL_SAMPLE) {
    if (spec->model() == kCustomModel) {
      return absl::InvalidArgumentError(
          "sample-level DP needs per-example gradients, which fedmi computes only for its "
          "DP-compatible architectures, not for a model file; use --dp site, or one of: " +
          absl::StrJoin(DpCompatibleModelNames(), ", "));
    }
    if (!IsDpCompatibleModel(spec->model())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", spec->model(),
          "' normalises over the batch (BatchNorm), so one patient's image changes every other "
          "example's gradient and per-example clipping bounds nothing; DP-compatible models: ",
          absl::StrJoin(DpCompatibleModelNames(), ", ")));
    }
    return absl::OkStatus();
  }
  if (dp.level() == v1::DP_LEVEL_SITE) return ValidateSiteDpSettings(*spec);
  return absl::InvalidArgumentError(absl::StrCat("unknown dp level ", dp.level()));
}

// Sites would each refuse a model that cannot take the run's input; the
// admin hears it at run start instead.
absl::Status ValidateArchitectureShape(const v1::RunSpec& spec) {
  if (IsTrainableModel(spec.model())) {
    const int64_t side = InputImageSize(spec);
    return CheckArchitectureShape(spec.model(), side, side, spec.unet().base_width(),
                                  spec.unet().depth());
  }
  if (spec.has_unet()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unet settings are given but the model is '", spec.model(), "', not unet"));
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
  RETURN_IF_ERROR(ValidateTransferSettings(*spec));
  RETURN_IF_ERROR(CompleteTrainingRecipe(spec));
  RETURN_IF_ERROR(ValidateArchitectureShape(*spec));
  if (HasDifferentialPrivacy(*spec)) {
    RETURN_IF_ERROR(ValidateDpSettings(spec));
  } else if (spec->dp().ByteSizeLong() != 0) {
    // Settings without a level would read as a guarantee nobody gives.
    return absl::InvalidArgumentError(
        "dp settings are given but dp level is none: choose --dp sample or --dp site");
  }
  RETURN_IF_ERROR(CheckStrategyName(spec->strategy()));
  if (spec->secure_aggregation()) RETURN_IF_ERROR(ValidateSecAggSettings(*spec));
  // After secure aggregation, whose refusal of the robust strategies is the
  // one to read.
  RETURN_IF_ERROR(CompleteStrategySettings(spec));
  RETURN_IF_ERROR(CompleteServerOptimizerSettings(spec));
  RETURN_IF_ERROR(CheckSiteAlgorithms(*spec));
  return absl::OkStatus();
}

}  // namespace fedmi
