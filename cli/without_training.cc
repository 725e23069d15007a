// What a fedmi built without training (-DFEDMI_WITH_TRAINING=OFF, library
// fedmi_cli_without_training) links in place of fedmi_cli_training: no
// ModelRunner, and `sim`, which trains and scores models, listed in --help
// but refusing to run. See cli/model_runner.h.
#include <memory>
#include <string>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_runner.h"

namespace fedmi::cli {
namespace {

// A command that takes any arguments and exits 1 naming what is missing.
void AddRefusingCommand(CLI::App& app, const std::string& name, const std::string& description,
                        CommandResult& result) {
  CLI::App* command = app.add_subcommand(name, description + " (needs a build with training)");
  command->allow_extras();
  // Keeps its arguments (`sim --sites 2`) rather than handing them to
  // `fedmi`, which would call them unknown flags instead of refusing.
  command->fallthrough(false);
  command->callback([&result, name] {
    RunCommand(result, [&] { return ReportError(TrainingUnavailableError("fedmi " + name)); });
  });
}

}  // namespace

std::unique_ptr<ModelRunner> MakeModelRunner() { return nullptr; }

void AddSimCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddRefusingCommand(app, "sim",
                     "Run a whole federation on this machine: split the data, start a "
                     "coordinator and one client process per site on loopback, train, and test "
                     "the final model",
                     result);
}

void AddScarceLabelCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddRefusingCommand(app, "al",
                     "Active learning at a site: rank the unlabelled images to label next, and "
                     "import the labels given",
                     result);
  AddRefusingCommand(*app.get_subcommand("data"), "audit-labels",
                     "Rank a site's labelled images by how likely their label is wrong", result);
}

}  // namespace fedmi::cli
