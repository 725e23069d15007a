// fedmi: admin, auditor, data and simulation commands.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/model_runner.h"
#include "common/base/cli_config.h"
#include "common/base/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "fedmi: run and watch federated training, manage sites and models, "
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
  app.add_option("--cert", global.cert, "your certificate (PEM, from your kit)");
  app.add_option("--key", global.key, "your private key (PEM, from your kit)");
  app.add_option("--ca", global.ca, "the project CA certificate (PEM, from your kit)");
  // Subcommands run inside parse(), so the config file is found up front.
  global.config_file = fedmi::ConfigFileInArgs(argc, argv);
  global.argc = argc;
  global.argv = argv;
  fedmi::SetLogTag("fedmi");
  std::shared_ptr<fedmi::cli::ModelRunner> runner = fedmi::cli::MakeModelRunner();
  fedmi::cli::AddRunCommands(app, global, result, runner);
  fedmi::cli::AddSiteCommands(app, global, result);
  fedmi::cli::AddRevokeCommands(app, global, result);
  fedmi::cli::AddAuditCommands(app, global, result);
  fedmi::cli::AddModelCommands(app, global, result, runner);
  fedmi::cli::AddExplainCommand(app, global, result, runner);
  fedmi::cli::AddDataCommands(app, global, result);
  fedmi::cli::AddSimCommands(app, global, result);
  fedmi::cli::AddBenchCommands(app, global, result);
  fedmi::cli::AddProvisionCommands(app, global, result);
  fedmi::cli::AddPrivacyCommands(app, global, result);
  if (int code = fedmi::ParseCommandLine(app, argc, argv); code >= 0) return code;
  return result.exit_code;
}
