// Turning audit log entries into text for people: the Markdown report on one
// run that `fedmi run report` writes for an ethics board, and the pieces
// `fedmi audit log` prints (a short summary of an entry's detail, CSV fields,
// the --since time).
//
// Apart from AddRunReportCommand, pure functions without shared state or
// I/O; malformed detail JSON in an entry is shown as it is rather than
// failing the report.
#ifndef FEDMI_CLI_RUN_REPORT_H_
#define FEDMI_CLI_RUN_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
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

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a
// comma, a quote, a line break or leading/trailing spaces; else unchanged.
std::string CsvField(absl::string_view value);

// An entry's detail_json in one line, for tables: the object's `key=value`
// pairs in stored order (strings without quotes unless they hold spaces,
// nested values as compact JSON), cut to at most `max_chars` characters
// with "...". Detail that is not a JSON object is shown as it is, cut the
// same way.
std::string SummarizeDetail(const std::string& detail_json, size_t max_chars = 60);

// A --since value: RFC 3339 ("2026-11-28T10:00:00Z", offsets and fractional
// seconds allowed) or a date ("2026-11-28", midnight UTC). InvalidArgument
// naming the accepted forms otherwise.
absl::StatusOr<absl::Time> ParseSinceTime(const std::string& text);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RUN_REPORT_H_
