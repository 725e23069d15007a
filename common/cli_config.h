// The TOML config option every fedmi binary shares: `--config FILE`, or
// $FEDMI_CONFIG when the flag is absent. Keys are the long flag names
// (`listen = "0.0.0.0:7000"`); flags on the command line override them.
// Header-only so that fedmi_common itself needs no CLI11.
#ifndef FEDMI_COMMON_CLI_CONFIG_H_
#define FEDMI_COMMON_CLI_CONFIG_H_

#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace fedmi {

inline void AddConfigOption(CLI::App& app) {
  const char* env = std::getenv("FEDMI_CONFIG");
  const std::string from_env = env != nullptr ? env : "";
  // A config named by the environment must exist: silently ignoring a typo
  // would run with defaults the operator did not choose.
  app.set_config("--config", from_env, "TOML config file (default: $FEDMI_CONFIG)",
                 /*config_required=*/!from_env.empty());
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_CLI_CONFIG_H_
