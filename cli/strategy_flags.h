// The aggregation flags shared by `fedmi run start` and `fedmi sim`:
// --strategy and the robust strategies' --trim-fraction, --byzantine-sites,
// --multikrum-selected and --norm-bound, and how they become RunSpec fields. The
// coordinator fills in defaults and checks them against min_sites
// (coordinator/strategy_settings.h).
#ifndef FEDMI_CLI_STRATEGY_FLAGS_H_
#define FEDMI_CLI_STRATEGY_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct StrategyFlags {
  std::string strategy = "fedavg";
  double trim_fraction = -1;  // < 0: not given
  int byzantine_sites = -1;   // < 0: not given
  int multikrum_selected = 0;
  double norm_bound = 0;  // 0: not given
};

void AddStrategyOptions(CLI::App* command, StrategyFlags* flags);

// Sets the spec's strategy and the robust settings that were given.
void ApplyStrategyFlags(const StrategyFlags& flags, v1::RunSpec* spec);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_STRATEGY_FLAGS_H_
