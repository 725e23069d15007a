// The secure-aggregation flags shared by `fedmi run start`, `fedmi sim` and
// `fedmi bench round`, and how they become RunSpec fields.
#ifndef FEDMI_CLI_SECAGG_FLAGS_H_
#define FEDMI_CLI_SECAGG_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct SecAggFlags {
  std::string mode = "auto";  // on | off | auto (on for runs of at least 3 sites)
  int threshold = 0;          // 0: the coordinator's default
  int neighbours = 0;         // 0: every other site
  double clip = 0;            // 0: the coordinator's default (1.0)
  int64_t max_examples = 0;   // 0: largest train_examples among the round's sites
};

// Adds --secure-aggregation, --secagg-threshold, --secagg-neighbours,
// --secagg-clip and --secagg-max-examples to `command`.
void AddSecAggOptions(CLI::App* command, SecAggFlags* flags);

// Sets spec->secure_aggregation and spec->secagg. `sites` is the number of
// sites the run will have at least (min_sites): "auto" means on from 4, for
// a strategy that needs only the sum (set spec->strategy first).
// InvalidArgument naming the flag when settings are given with "off".
absl::Status ApplySecAggFlags(const SecAggFlags& flags, int sites, v1::RunSpec* spec);

// "on (threshold 3, complete graph)" or "off", for run summaries.
std::string DescribeSecAgg(const v1::RunSpec& spec);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SECAGG_FLAGS_H_
