// Bash completion for `fedmi`, generated from its CLI11 command tree, so it
// never lists a command or flag the binary does not have: `fedmi completion
// bash` prints it, and the build writes it to
// build/share/bash-completion/completions/fedmi.
#ifndef FEDMI_CLI_SHELL_COMPLETION_H_
#define FEDMI_CLI_SHELL_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <string>

#include "cli/commands.h"

namespace fedmi::cli {

// A bash script that, once sourced, completes `app`'s name (its get_name()):
// subcommands at each level, the flags the selected command accepts
// (including its parents' when it hands unknown flags to them), and file
// names after a flag that takes a value.
std::string BashCompletionScript(const CLI::App& app);

// `fedmi completion bash`: prints BashCompletionScript(app).
void AddCompletionCommand(CLI::App& app, CommandResult& result);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SHELL_COMPLETION_H_
