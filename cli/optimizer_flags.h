// The federated optimization flags shared by `fedmi run start` and
// `fedmi sim`: the server optimizer (--server-optimizer and its --server-lr,
// --server-momentum, --server-beta1, --server-beta2, --server-tau), FedProx's
// --proximal-mu and --scaffold, and how they become RunSpec fields. The
// coordinator fills in the optimizer's defaults and refuses settings its
// kind does not read (coordinator/server_optimizer_settings.h).
#ifndef FEDMI_CLI_OPTIMIZER_FLAGS_H_
#define FEDMI_CLI_OPTIMIZER_FLAGS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct OptimizerFlags {
  std::string server_optimizer = "fedavg";
  std::optional<double> server_lr;
  std::optional<double> server_momentum;
  std::optional<double> server_beta1;
  std::optional<double> server_beta2;
  std::optional<double> server_tau;
  double proximal_mu = 0;
  bool scaffold = false;
};

// Both families; `fedmi bench round`, whose synthetic sites do not train,
// takes the server optimizer's alone.
void AddOptimizerOptions(CLI::App* command, OptimizerFlags* flags);
void AddServerOptimizerOptions(CLI::App* command, OptimizerFlags* flags);

// Sets the spec's server_optimizer (only when a kind other than fedavg or a
// setting is given), recipe.proximal_mu and scaffold.
void ApplyOptimizerFlags(const OptimizerFlags& flags, v1::RunSpec* spec);

// "fedadam (server lr 0.1, beta1 0.9, beta2 0.99, tau 0.001), FedProx mu
// 0.01, SCAFFOLD", or "" for plain FedAvg: for `run start` and `sim` to print.
std::string DescribeOptimization(const v1::RunSpec& spec);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_OPTIMIZER_FLAGS_H_
