#include "cli/optimizer_flags.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "common/runspec/strategy_names.h"

namespace fedmi::cli {

void AddServerOptimizerOptions(CLI::App* command, OptimizerFlags* flags) {
  AddCheckedOption(command, "--server-optimizer", flags->server_optimizer,
                   "how the coordinator moves the global model by the round's aggregate: fedavg "
                   "(replaced by it), fedavgm (server momentum), fedadam, fedyogi or fedadagrad "
                   "(Reddi et al. 2021; docs/strategies.md). Works with secure aggregation",
                   CLI::IsMember(std::vector<std::string>(std::begin(kServerOptimizers),
                                                          std::end(kServerOptimizers))));
  command->add_option("--server-lr", flags->server_lr,
                      "server learning rate eta (default 1 for fedavgm, 0.1 for fedadam and "
                      "fedadagrad, 0.01 for fedyogi)");
  command->add_option("--server-momentum", flags->server_momentum,
                      "fedavgm's momentum, in [0, 1) (default 0.9)");
  command->add_option("--server-beta1", flags->server_beta1,
                      "the adaptive optimizers' first-moment decay, in [0, 1) (default 0.9)");
  command->add_option("--server-beta2", flags->server_beta2,
                      "fedadam's and fedyogi's second-moment decay, in [0, 1) (default 0.99)");
  command->add_option("--server-tau", flags->server_tau,
                      "the adaptive optimizers' degree of adaptivity: the floor of the "
                      "denominator (default 0.001)");
}

void AddOptimizerOptions(CLI::App* command, OptimizerFlags* flags) {
  AddServerOptimizerOptions(command, flags);
  AddCheckedOption(command, "--proximal-mu", flags->proximal_mu,
                   "FedProx: mu / 2 * ||w - w_global||^2 added to each site's local loss, "
                   "which keeps skewed sites near the global model (0: off; try 0.01 to 1)",
                   CLI::Range(0.0, 1e4));
  command->add_flag("--scaffold", flags->scaffold,
                    "SCAFFOLD: control variates correct each site's drift on skewed data; "
                    "needs --optimizer sgd (docs/strategies.md)");
}

void ApplyOptimizerFlags(const OptimizerFlags& flags, v1::RunSpec* spec) {
  const bool any_setting = flags.server_lr || flags.server_momentum || flags.server_beta1 ||
                           flags.server_beta2 || flags.server_tau;
  if (flags.server_optimizer != kFedAvgServerOptimizer || any_setting) {
    v1::ServerOptimizerSettings& settings = *spec->mutable_server_optimizer();
    settings.set_kind(flags.server_optimizer);
    if (flags.server_lr) settings.set_server_lr(*flags.server_lr);
    if (flags.server_momentum) settings.set_momentum(*flags.server_momentum);
    if (flags.server_beta1) settings.set_beta1(*flags.server_beta1);
    if (flags.server_beta2) settings.set_beta2(*flags.server_beta2);
    if (flags.server_tau) settings.set_tau(*flags.server_tau);
  }
  if (flags.proximal_mu > 0) spec->mutable_recipe()->set_proximal_mu(flags.proximal_mu);
  if (flags.scaffold) spec->set_scaffold(true);
}

std::string DescribeOptimization(const v1::RunSpec& spec) {
  std::string text;
  auto add = [&text](const std::string& part) {
    absl::StrAppend(&text, text.empty() ? "" : ", ", part);
  };
  if (spec.has_server_optimizer()) {
    const v1::ServerOptimizerSettings& settings = spec.server_optimizer();
    std::string detail;
    auto add_setting = [&detail](const char* name, bool has, double value) {
      if (has) absl::StrAppend(&detail, detail.empty() ? "" : ", ", name, " ", value);
    };
    add_setting("server lr", settings.has_server_lr(), settings.server_lr());
    add_setting("momentum", settings.has_momentum(), settings.momentum());
    add_setting("beta1", settings.has_beta1(), settings.beta1());
    add_setting("beta2", settings.has_beta2(), settings.beta2());
    add_setting("tau", settings.has_tau(), settings.tau());
    add(detail.empty() ? settings.kind() : absl::StrCat(settings.kind(), " (", detail, ")"));
  }
  if (spec.recipe().proximal_mu() > 0) {
    add(absl::StrFormat("FedProx mu %g", spec.recipe().proximal_mu()));
  }
  if (spec.scaffold()) add("SCAFFOLD");
  return text;
}

}  // namespace fedmi::cli
