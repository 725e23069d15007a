// `fedmi sim`'s flags for scarce and doubtful labels: run on shards made
// beforehand (`fedmi data split --labelled-fraction`, after `fedmi al
// import`), and start the sites with the fedmi-client settings of
// client/site_scarce_labels.h.
#ifndef FEDMI_CLI_SIM_LABEL_FLAGS_H_
#define FEDMI_CLI_SIM_LABEL_FLAGS_H_

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi::cli {

struct SimLabelFlags {
  std::string shards;  // a directory of site-<k>.npz; empty: split --data
  std::string semi_supervised = "off";
  std::vector<std::string> noisy_labels;  // SITE:FILE
  double noisy_label_weight = -1;         // < 0: the client's default
  // fedmi-client --al-rounds, --al-budget, --al-method for every site;
  // empty: not passed (the client's defaults).
  std::string al_rounds;
  std::string al_budget;
  std::string al_method;
  // "3" or "2,5": rounds whose global model is also written, as
  // round-<N>-model.pt (an early round's model for `fedmi data
  // audit-labels`, docs/scarce-labels.md).
  std::string round_models;
};

void AddSimLabelOptions(CLI::App* sim, SimLabelFlags* flags);

// The fedmi-client flags each site ("site-1", ...) of `sites` gets.
// InvalidArgument for a malformed SITE:FILE or a site out of range.
absl::StatusOr<std::map<std::string, std::vector<std::string>>> SiteLabelFlags(
    const SimLabelFlags& flags, int sites);

// The rounds of `flags.round_models`, ascending and unique. InvalidArgument
// naming the entry that is not a round from 1 to `rounds`.
absl::StatusOr<std::vector<int>> RoundsToExport(const SimLabelFlags& flags, int rounds);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SIM_LABEL_FLAGS_H_
