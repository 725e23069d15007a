// The whole `fedmi` command tree, built in one place so that main.cc, the
// bash completion (cli/shell_completion.h) and the tests that walk the tree
// (tests/cli/fedmi_app_test.cc) all see the same commands and flags.
#ifndef FEDMI_CLI_FEDMI_APP_H_
#define FEDMI_CLI_FEDMI_APP_H_

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"

namespace fedmi::cli {

// Adds the global options (--config, --coordinator, --cert, --key, --ca,
// --insecure, --version) and every subcommand to `app`. The global options
// are accepted after a subcommand too (`fedmi site list --coordinator h:p`):
// subcommands hand the flags they do not know to their parents. `runner`
// (MakeModelRunner(), may be null) runs models.
void AddFedmiCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                      std::shared_ptr<ModelRunner> runner);

// `fedmi version [--json]`: the commit, build type and whether training is
// built in (cli/version_command.cc).
void AddVersionCommand(CLI::App& app, GlobalOptions& global, CommandResult& result);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_FEDMI_APP_H_
