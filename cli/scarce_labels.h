// What `fedmi al rank` and `fedmi data audit-labels` share: a site's data
// read at a model's geometry and the model's view of it, and the CSV lists
// a site's operator fills in. Model code (fedmi_cli_training).
#ifndef FEDMI_CLI_SCARCE_LABELS_H_
#define FEDMI_CLI_SCARCE_LABELS_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/command_support.h"
#include "client/active_learning.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/data/unlabelled_data.h"
#include "common/evaluation/acquisition.h"

namespace fedmi::cli {

// The site's data at `config`'s geometry with every labelled row in train
// (no hold-out: a source's own val split stays in val).
absl::StatusOr<SiteDataset> LoadSiteForModel(const ml::ModelConfig& config,
                                             const std::string& data_path);

struct ScoredSite {
  SiteDataset data;
  ScoredPool scored;  // the model's view of data.unlabelled
};

// Loads the model file and the site's data and scores the unlabelled pool
// as `method` needs (Monte-Carlo passes for bald, embeddings of the pool
// and of the labelled images for coreset). InvalidArgument when the site
// has no unlabelled images (saying where they go); the loaders' errors.
absl::StatusOr<ScoredSite> LoadAndScoreSite(const std::string& model_path,
                                            const std::string& data_path, AcquisitionMethod method,
                                            int mc_passes, uint64_t seed);

// The rows of a list from `fedmi al rank` whose label column is filled in.
struct FilledInList {
  std::vector<NewLabel> rows;
  int64_t empty_rows = 0;
};

// NotFound for a missing file; InvalidArgument naming the file when it has
// no id or label column.
absl::StatusOr<FilledInList> ReadFilledInLabels(const std::string& path);

// `fedmi data audit-labels` under `data` (cli/label_audit_command.cc).
void AddLabelAuditCommand(CLI::App* data, GlobalOptions& global, CommandResult& result);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SCARCE_LABELS_H_
