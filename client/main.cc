// fedmi-client: the site daemon. It runs inside a hospital, trains on the
// site's private images and sends back only model weights; see
// client/site_main.h for its flags and wiring.
//
// It links no attack code (client/sim_attack.h is fedmi-sim-site's), and
// refuses the simulation-only --attack setting by name, on its command line
// or in its config, where other unknown keys are ignored: nobody should
// start a production site believing such a setting took effect.
#include <iostream>

#include "client/site_main.h"

int main(int argc, char** argv) {
  if (absl::Status refused = fedmi::RefuseSimulationOnlySettings(argc, argv); !refused.ok()) {
    std::cerr << "error: " << refused.message() << "\n";
    return 2;
  }
  return fedmi::RunSiteMain(argc, argv, {});
}
