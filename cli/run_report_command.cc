// `fedmi run report`: fetches a run and its audit entries from the
// coordinator and prints or writes RenderRunReport's Markdown.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/run_report.h"
#include "common/base/env.h"

namespace fedmi::cli {
namespace {

int ReportRun(const GlobalOptions& global, int64_t run_id, const std::string& out_path) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto run = (*admin)->GetRun(run_id);
  if (!run.ok()) return ReportError(run.status());
  v1::AuditQuery query;
  query.set_run_id(run_id);
  std::vector<v1::AuditEntry> entries;
  absl::Status listed = (*admin)->ListAuditEntries(
      query, [&](const v1::AuditEntry& entry) { entries.push_back(entry); });
  if (!listed.ok()) return ReportError(listed);

  const std::string markdown = RenderRunReport(*run, entries);
  if (out_path.empty()) {
    if (global.json) {
      PrintJsonLine({{"run_id", run_id}, {"entries", entries.size()}, {"markdown", markdown}});
    } else {
      std::cout << markdown << std::flush;
    }
    return kExitOk;
  }
  // All or nothing, so that a failure leaves no half report.
  if (absl::Status status = WriteFileAtomically(*Env::Default(), out_path, markdown);
      !status.ok()) {
    return ReportError(status);
  }
  if (global.json) {
    PrintJsonLine({{"run_id", run_id}, {"entries", entries.size()}, {"out", out_path}});
  } else {
    std::cout << "wrote the report on run " << run_id << " (" << entries.size()
              << " audit entries) to " << out_path << std::endl;
  }
  return kExitOk;
}

}  // namespace

void AddRunReportCommand(CLI::App* run, GlobalOptions& global, CommandResult& result) {
  auto run_id = std::make_shared<int64_t>(0);
  auto out_path = std::make_shared<std::string>();
  CLI::App* report = run->add_subcommand(
      "report",
      "Write a Markdown report on a run for an ethics board: who started it, the specification "
      "and privacy settings, sites, per-round metrics and model hashes, failures and drops, "
      "from the run status and the audit log");
  report->add_option("RUN", *run_id, "run id")->required()->check(CLI::PositiveNumber);
  report->add_option("--out", *out_path, "write the Markdown to this file instead of stdout");
  report->add_flag("--json", global.json,
                   "print one JSON object as the last line of stdout (with the Markdown in "
                   "\"markdown\" when there is no --out)");
  report->callback([&global, &result, run_id, out_path] {
    RunCommand(result, [&] { return ReportRun(global, *run_id, *out_path); });
  });
}

}  // namespace fedmi::cli
