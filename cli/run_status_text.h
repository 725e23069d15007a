// A run's status as `fedmi run status|list` and `--watch` show it: one
// JSON object, or text (a header, one row per round, the sites of each
// round and why sites left), and the one-line progress of a live run.
//
// Pure functions of the RunStatus; they write only to the given stream.
#ifndef FEDMI_CLI_RUN_STATUS_TEXT_H_
#define FEDMI_CLI_RUN_STATUS_TEXT_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

// Every metric by name, non-finite values as null.
nlohmann::json MetricsJson(const v1::Metrics& metrics);

// A run's privacy budget (RunStatus.privacy) as `run status --json` and
// `sim --json` print it.
nlohmann::json PrivacyJson(const v1::PrivacyBudget& budget);

// Every field of the status, spec and rounds; undefined metrics as null.
nlohmann::json RunJson(const v1::RunStatus& run);

// A round is live while its state is the run's phase ("training", ...);
// once its evaluation is in, its state is a stored RoundState.
bool IsRoundLive(absl::string_view round_state);

// "run 3: running, training, round 2 of 5 (1 of 5 rounds completed)" and
// the spec, secure aggregation, creation time and error.
void PrintRunHeader(std::ostream& out, const v1::RunStatus& run);
// The column titles of PrintRoundRows. A segmentation run
// (IsSegmentationRun) shows pooled Dice, IoU and mean image Dice where a
// classification run shows AUC, accuracy, sensitivity and specificity.
void PrintRoundTableHeader(std::ostream& out, bool segmentation = false);
// One round's row; with `with_sites` each site's part; always why sites
// left the round (a refusal by a site's policy is the operator's to see).
// A site's row shows Dice and IoU instead of AUC and accuracy when its
// evaluation is a segmentation one.
void PrintRoundRows(std::ostream& out, const v1::RoundStatus& round, bool with_sites,
                    bool segmentation = false);
// Header, then the table of every round.
void PrintRunStatus(std::ostream& out, const v1::RunStatus& run, bool with_sites);

// One line about what the run is doing now, for --watch.
std::string ProgressLine(const v1::RunStatus& run);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RUN_STATUS_TEXT_H_
