// The Markdown report on one run that `fedmi run report` writes for an
// ethics board, built from the run status and the run's audit entries
// (gathered by cli/run_facts.h).
//
// RenderRunReport is a pure function; malformed detail JSON in an entry is
// shown as it is rather than failing the report. AddRunReportCommand
// (cli/run_report_command.cc) does the I/O.
#ifndef FEDMI_CLI_RUN_REPORT_H_
#define FEDMI_CLI_RUN_REPORT_H_

#include <string>
#include <vector>

#include "cli/commands.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi::cli {

// Markdown for an ethics board about `run`: who started it and when, the
// specification and its SHA-256, the privacy settings, the participating
// sites with their updates, one row per round (evaluation metrics and the
// global model's SHA-256), every failure, refusal and drop, model exports,
// disagreements between the run status and the log, and how to verify the
// log. `entries` are the audit entries about the run (ListEntries with its
// run_id), in seq order; entries about other runs are ignored.
std::string RenderRunReport(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries);

// Adds `report RUN [--out FILE.md] [--json]` to the `run` command: fetches
// the run (GetRun) and its audit entries (ListEntries for the run) and prints
// RenderRunReport's Markdown, or writes it to FILE.md.
void AddRunReportCommand(CLI::App* run, GlobalOptions& global, CommandResult& result);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RUN_REPORT_H_
