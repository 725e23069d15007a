// The `fedmi` command line: admin, auditor, data and simulation commands.
// Each Add*Commands function registers one group of subcommands on the app;
// handlers run inside the callback and report through the returned exit
// code (0 success, 1 failure, 2 usage error).
#ifndef FEDMI_CLI_COMMANDS_H_
#define FEDMI_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace fedmi::cli {

class ModelRunner;

// Options every command shares; filled from flags and the TOML config.
struct GlobalOptions {
  std::string coordinator = "127.0.0.1:7000";
  bool insecure = false;
  std::string cert;  // kit files for mutual TLS (relative paths: against the config file)
  std::string key;
  std::string ca;
  std::string config_file;
  // The command line, to tell flags given there from values in the config.
  int argc = 0;
  char** argv = nullptr;
  bool json = false;
};

// Commands set this to their exit code; main returns it.
struct CommandResult {
  int exit_code = 0;
};

void AddRunCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                    std::shared_ptr<ModelRunner> runner);
void AddSiteCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi model export|evaluate|predict`; `runner` (MakeModelRunner(), may be
// null) runs the models.
void AddModelCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                      std::shared_ptr<ModelRunner> runner);
// `fedmi model info`, added under `model` by AddModelCommands
// (cli/model_info_command.cc); `runner` (may be null) reads .pt and .ptl files.
void AddModelInfoCommand(CLI::App* model, GlobalOptions& global, CommandResult& result,
                         std::shared_ptr<ModelRunner> runner);
// `fedmi explain`: Grad-CAM heat-maps of a model file (cli/explain_command.cc);
// `runner` (may be null: the command then refuses) computes them.
void AddExplainCommand(CLI::App& app, GlobalOptions& global, CommandResult& result,
                       std::shared_ptr<ModelRunner> runner);
// `runner` (may be null) runs models for `data inspect --ood-model`.
void AddDataCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                     std::shared_ptr<ModelRunner> runner);
// Without a runner, for tests of the model-free commands.
void AddDataCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `data inspect`, added under `data` by AddDataCommands (cli/data_inspect.cc).
void AddDataInspectCommand(CLI::App* data, GlobalOptions& global, CommandResult& result,
                           std::shared_ptr<ModelRunner> runner);
// `fedmi data to-dicom` (cli/data_to_dicom.cc).
void AddDataToDicomCommand(CLI::App* data, GlobalOptions& global, CommandResult& result);
// `fedmi data phantoms` (cli/data_phantoms.cc).
void AddDataPhantomsCommand(CLI::App* data, GlobalOptions& global, CommandResult& result);
// `fedmi sim`: defined by cli/sim_commands.cc in a fedmi built with
// training, else by cli/without_training.cc, whose `sim` refuses (see
// cli/model_runner.h).
void AddSimCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi al rank|import` and `fedmi data audit-labels` (under `data`, which
// AddDataCommands must have added): active learning and label audits at a
// site (cli/active_learning_commands.cc, cli/label_audit_command.cc), or
// refusing versions in a fedmi built without training.
void AddScarceLabelCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi bench round`: timed rounds of a local federation with a synthetic model.
void AddBenchCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi audit log|export|verify`: the coordinator's signed audit log.
void AddAuditCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi revoke NAME` and `fedmi revocations`: revocation by name at the coordinator.
void AddRevokeCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// The handler of `fedmi revoke`, shared with its alias `fedmi site revoke`:
// `role` is "site", "admin", "auditor" or empty (a site the coordinator knows).
int RevokeByName(const GlobalOptions& global, const std::string& name, const std::string& role,
                 const std::string& reason);
// `fedmi provision ...`: the project CA and per-party kits; needs no coordinator.
void AddProvisionCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);
// `fedmi privacy epsilon|noise`: differential-privacy accounting for DP-SGD
// runs (common/privacy/rdp_accountant.h); needs no coordinator.
void AddPrivacyCommands(CLI::App& app, GlobalOptions& global, CommandResult& result);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_COMMANDS_H_
