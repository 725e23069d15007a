// The site daemon's command line and wiring: flags (which override the TOML
// config, --config or $FEDMI_CONFIG), the site's policy and data, the
// worker and the daemon. fedmi-client (client/main.cc) is exactly this;
// fedmi-sim-site (client/sim_site_main.cc), the simulation-only site that
// `fedmi sim --attack` starts, adds its attack through the hooks.
//
// The site's own policy (--policy) and, with --review, its operator decide
// what may run on local data; see client/site_policy.h.
#ifndef FEDMI_CLIENT_SITE_MAIN_H_
#define FEDMI_CLIENT_SITE_MAIN_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "client/site_worker.h"

namespace fedmi {

// What a variant of the daemon adds to it. Empty: the production daemon.
struct SiteMainHooks {
  std::string program;      // "" = "fedmi-client"
  std::string description;  // "" = fedmi-client's
  // Adds the variant's own options before the command line is parsed.
  std::function<void(CLI::App&)> add_options;
  // Runs after parsing, before the worker is built (worker_options->site is
  // set). An error exits 2 with its message.
  std::function<absl::Status(SiteWorkerOptions* worker_options)> configure_worker;
};

// Runs the daemon until it is stopped (SIGINT, SIGTERM) or gives up, and
// returns the process's exit code: 0, 1 for a failure, 2 for a usage error.
int RunSiteMain(int argc, char** argv, const SiteMainHooks& hooks);

// The simulation-only settings a production site must never accept, on its
// command line or in its config.
inline constexpr char kAttackFlag[] = "--attack";
inline constexpr char kAttackKey[] = "attack";

// InvalidArgument naming the setting when `argv` has --attack or the config
// file in effect (--config, else $FEDMI_CONFIG) has a key starting with
// "attack", at any level. A config that cannot be read passes: parsing
// reports it as usual.
absl::Status RefuseSimulationOnlySettings(int argc, char** argv);

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_MAIN_H_
