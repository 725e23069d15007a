// Temporary stand-in until cli/sim_commands.cc exists; delete then.
#include "cli/commands.h"

namespace fedmi::cli {

void AddSimCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {}

}  // namespace fedmi::cli
