#include "coordinator/strategy_settings.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/runspec/strategy_names.h"

namespace fedmi {
namespace {

absl::Status RefuseUnread(const v1::RunSpec& spec, const char* setting, const char* readers) {
  return absl::InvalidArgumentError(
      absl::StrCat(setting, " applies to ", readers, ", not to ", spec.strategy()));
}

}  // namespace

absl::Status CompleteStrategySettings(v1::RunSpec* spec) {
  const std::string& strategy = spec->strategy();
  v1::RobustAggregation& robust = *spec->mutable_robust();
  if (ReadsTrimFraction(strategy)) {
    if (!robust.has_trim_fraction()) robust.set_trim_fraction(kDefaultTrimFraction);
  } else if (robust.has_trim_fraction()) {
    return RefuseUnread(*spec, "trim_fraction", kTrimmedMeanStrategy);
  }
  if (ReadsByzantineSites(strategy)) {
    if (!robust.has_byzantine_sites()) robust.set_byzantine_sites(kDefaultByzantineSites);
  } else if (robust.has_byzantine_sites()) {
    return RefuseUnread(*spec, "byzantine_sites", "krum and multikrum");
  }
  if (!ReadsMultiKrumSelected(strategy) && robust.multikrum_selected() != 0) {
    return RefuseUnread(*spec, "multikrum_selected", kMultiKrumStrategy);
  }
  if (ReadsNormBound(strategy)) {
    // No default: a bound that fits one model and learning rate clips every
    // update of another to nothing, or none at all.
    if (!robust.has_norm_bound()) {
      return absl::InvalidArgumentError(
          "norm_bounded needs norm_bound, the L2 norm each site's change to the global model "
          "is scaled down to (--norm-bound B)");
    }
  } else if (robust.has_norm_bound()) {
    return RefuseUnread(*spec, "norm_bound", kNormBoundedStrategy);
  }
  // Runs of the other strategies keep a spec without the field.
  if (robust.ByteSizeLong() == 0) spec->clear_robust();

  const AggregatorOptions options = AggregatorOptionsOf(*spec);
  RETURN_IF_ERROR(ValidateAggregatorOptions(strategy, options));
  const int32_t fewest = MinUpdatesFor(strategy, options);
  if (spec->min_sites() < fewest) {
    return absl::InvalidArgumentError(absl::StrCat(
        strategy, " with byzantine_sites ", options.byzantine_sites,
        options.multikrum_selected > 0
            ? absl::StrCat(" and multikrum_selected ", options.multikrum_selected)
            : "",
        " needs at least ", fewest, " updates per round; min_sites is ", spec->min_sites()));
  }
  return absl::OkStatus();
}

AggregatorOptions AggregatorOptionsOf(const v1::RunSpec& spec, std::string global_model_path) {
  AggregatorOptions options;
  options.global_model_path = std::move(global_model_path);
  if (spec.robust().has_norm_bound()) options.norm_bound = spec.robust().norm_bound();
  const v1::RobustAggregation& robust = spec.robust();
  if (robust.has_trim_fraction()) options.trim_fraction = robust.trim_fraction();
  if (robust.has_byzantine_sites()) options.byzantine_sites = robust.byzantine_sites();
  options.multikrum_selected = robust.multikrum_selected();
  return options;
}

}  // namespace fedmi
