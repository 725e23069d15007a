#include "cli/fedmi_app.h"

#include <utility>

#include "cli/shell_completion.h"
#include "common/base/build_info.h"
#include "common/base/cli_config.h"

namespace fedmi::cli {

void AddFedmiCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                      std::shared_ptr<ModelRunner> runner) {
  app.require_subcommand(1);
  // Set before any subcommand is added: each inherits it from its parent.
  app.fallthrough();
  AddConfigOption(app);
  app.add_option("--coordinator", global.coordinator, "coordinator HOST:PORT")
      ->capture_default_str();
  app.add_flag("--insecure", global.insecure,
               "plaintext transport, for local experiments on a trusted network only");
  app.add_option("--cert", global.cert, "your certificate (PEM, from your kit)");
  app.add_option("--key", global.key, "your private key (PEM, from your kit)");
  app.add_option("--ca", global.ca, "the project CA certificate (PEM, from your kit)");
  app.set_version_flag(
      "--version", [] { return VersionText("fedmi"); },
      "print the git commit, build type and whether training is built in, and exit");
  AddRunCommands(app, global, result, runner);
  AddSiteCommands(app, global, result);
  AddRevokeCommands(app, global, result);
  AddAuditCommands(app, global, result);
  AddModelCommands(app, global, result, runner);
  AddExplainCommand(app, global, result, runner);
  AddDataCommands(app, global, result, runner);
  AddScarceLabelCommands(app, global, result);
  AddSimCommands(app, global, result);
  AddBenchCommands(app, global, result);
  AddProvisionCommands(app, global, result);
  AddPrivacyCommands(app, global, result);
  AddVersionCommand(app, global, result);
  AddCompletionCommand(app, result);
}

}  // namespace fedmi::cli
