// fedmi: admin, auditor, data and simulation commands.
#include <iostream>
#include <memory>

#include "cli/fedmi_app.h"
#include "cli/model_runner.h"
#include "common/base/cli_config.h"
#include "common/base/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "fedmi: run and watch federated training, manage sites and models, "
      "split data, simulate a federation.",
      "fedmi"};
  fedmi::cli::GlobalOptions global;
  fedmi::cli::CommandResult result;
  // Subcommands run inside parse(), so the config file is found up front.
  global.config_file = fedmi::ConfigFileInArgs(argc, argv);
  global.argc = argc;
  global.argv = argv;
  fedmi::SetLogTag("fedmi");
  fedmi::cli::AddFedmiCommands(app, global, result, fedmi::cli::MakeModelRunner());
  if (int code = fedmi::ParseCommandLine(app, argc, argv); code >= 0) return code;
  return result.exit_code;
}
