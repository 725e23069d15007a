// fedmi: admin, auditor, data and simulation commands.
#include <iostream>

#include "cli/commands.h"
#include "common/cli_config.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"fedmi: run and watch federated training, manage sites and models, "
               "split data, simulate a federation.",
               "fedmi"};
  app.require_subcommand(1);
  fedmi::AddConfigOption(app);
  fedmi::cli::GlobalOptions global;
  fedmi::cli::CommandResult result;
  app.add_option("--coordinator", global.coordinator, "coordinator HOST:PORT")
      ->capture_default_str();
  app.add_flag("--insecure", global.insecure,
               "plaintext transport, for local experiments on a trusted network only");
  fedmi::SetLogTag("fedmi");
  fedmi::cli::AddRunCommands(app, global, result);
  fedmi::cli::AddSiteCommands(app, global, result);
  fedmi::cli::AddModelCommands(app, global, result);
  fedmi::cli::AddDataCommands(app, global, result);
  fedmi::cli::AddSimCommands(app, global, result);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return result.exit_code;
}
