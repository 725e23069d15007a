// MakeModelRunner() of a fedmi built with training (fedmi_cli_training);
// see cli/model_runner.h. AddSimCommands() comes from cli/sim_commands.cc.
#include <memory>

#include "cli/model_files.h"
#include "cli/model_runner.h"

namespace fedmi::cli {

std::unique_ptr<ModelRunner> MakeModelRunner() { return std::make_unique<TorchModelRunner>(); }

}  // namespace fedmi::cli
