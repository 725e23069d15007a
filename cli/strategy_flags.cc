#include "cli/strategy_flags.h"

#include <cmath>
#include <vector>

#include "cli/command_support.h"
#include "common/runspec/strategy_names.h"

namespace fedmi::cli {

void AddStrategyOptions(CLI::App* command, StrategyFlags* flags) {
  AddCheckedOption(command, "--strategy", flags->strategy,
                   "aggregation: fedavg (example-weighted mean), norm_bounded (fedavg of "
                   "the sites' changes clipped to --norm-bound), or a robust one that needs "
                   "each site's update and so refuses secure aggregation: median, "
                   "trimmed_mean, krum or multikrum (docs/strategies.md)",
                   CLI::IsMember(std::vector<std::string>(std::begin(kAggregationStrategies),
                                                          std::end(kAggregationStrategies))));
  // CLI::Range includes its upper bound; 0.5 would trim every site.
  AddCheckedOption(
      command, "--trim-fraction", flags->trim_fraction,
      "--strategy trimmed_mean: share of sites dropped at each end of every "
      "parameter, below 0.5 (default 0.2)",
      CLI::Validator(
          [](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value) || !(value >= 0) || !(value < 0.5)) {
              return "must be a number in [0, 0.5)";
            }
            return "";
          },
          "[0, 0.5)"));
  AddCheckedOption(command, "--byzantine-sites", flags->byzantine_sites,
                   "--strategy krum or multikrum: f, the faulty sites tolerated; a round needs "
                   "2f + 3 sites, so --min-sites must be at least that (default 1)",
                   CLI::Range(0, 100000));
  AddCheckedOption(command, "--multikrum-selected", flags->multikrum_selected,
                   "--strategy multikrum: best-scored updates averaged (default: all but f)",
                   CLI::Range(0, 100000));
  AddCheckedOption(
      command, "--norm-bound", flags->norm_bound,
      "--strategy norm_bounded (required there): L2 norm each site's change to the global "
      "model is scaled down to; the sites clip to it too, before secure aggregation masks",
      CLI::Validator(
          [](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value) || !(value > 0) || !std::isfinite(value)) {
              return "must be a finite number > 0";
            }
            return "";
          },
          "> 0"));
}

void ApplyStrategyFlags(const StrategyFlags& flags, v1::RunSpec* spec) {
  spec->set_strategy(flags.strategy);
  if (flags.trim_fraction >= 0) spec->mutable_robust()->set_trim_fraction(flags.trim_fraction);
  if (flags.byzantine_sites >= 0) {
    spec->mutable_robust()->set_byzantine_sites(flags.byzantine_sites);
  }
  if (flags.multikrum_selected > 0) {
    spec->mutable_robust()->set_multikrum_selected(flags.multikrum_selected);
  }
  if (flags.norm_bound > 0) spec->mutable_robust()->set_norm_bound(flags.norm_bound);
}

}  // namespace fedmi::cli
