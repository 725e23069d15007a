// `fedmi audit log|export|verify`: read, save and check the coordinator's
// signed audit log (auditors and admins).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/audit_entry_text.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/audit/audit.h"
#include "common/base/cli_config.h"
#include "common/base/env.h"
#include "common/crypto/identity.h"

namespace fedmi::cli {
namespace {

// ---- Fetching ----------------------------------------------------------------

// ---- audit log -----------------------------------------------------------------

enum class LogFormat { kTable, kCsv, kJson };

struct LogOptions {
  int64_t run_id = 0;
  std::string since;
  bool csv = false;
};

// "2026-11-28 23:33:19": the log's time to the second, for the table.
std::string TableTime(const std::string& rfc3339) {
  absl::StatusOr<absl::Time> time = audit::ParseTime(rfc3339);
  if (!time.ok()) return rfc3339;
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", *time, absl::UTCTimeZone());
}

nlohmann::json EntryJson(const v1::AuditEntry& entry) {
  // The detail as an object, for jq; as the stored string if it is not JSON.
  nlohmann::json detail = nlohmann::json::parse(entry.detail_json(), nullptr, false);
  if (detail.is_discarded()) detail = entry.detail_json();
  return {{"seq", entry.seq()},          {"time", entry.time()},           {"actor", entry.actor()},
          {"action", entry.action()},    {"run_id", entry.run_id()},       {"round", entry.round()},
          {"detail", std::move(detail)}, {"prev_hash", entry.prev_hash()}, {"hash", entry.hash()}};
}

void PrintEntriesTable(const std::vector<v1::AuditEntry>& entries) {
  if (entries.empty()) {
    std::cout << "no audit entries match" << std::endl;
    return;
  }
  constexpr char kFormat[] = "%6s  %-19s  %-18s  %-18s  %5s  %5s  %s\n";
  std::cout << absl::StrFormat(kFormat, "SEQ", "TIME (UTC)", "ACTOR", "ACTION", "RUN", "ROUND",
                               "DETAIL");
  for (const auto& entry : entries) {
    std::cout << absl::StrFormat(kFormat, absl::StrCat(entry.seq()), TableTime(entry.time()),
                                 entry.actor(), entry.action(),
                                 entry.run_id() > 0 ? absl::StrCat(entry.run_id()) : "-",
                                 entry.round() >= 0 ? absl::StrCat(entry.round()) : "-",
                                 SummarizeDetail(entry.detail_json()));
  }
  std::cout << std::flush;
}

void PrintEntriesCsv(const std::vector<v1::AuditEntry>& entries) {
  std::cout << "seq,time,actor,action,run_id,round,detail_json,prev_hash,hash\n";
  for (const auto& entry : entries) {
    std::cout << entry.seq() << ',' << CsvField(entry.time()) << ',' << CsvField(entry.actor())
              << ',' << CsvField(entry.action()) << ',' << entry.run_id() << ',' << entry.round()
              << ',' << CsvField(entry.detail_json()) << ',' << CsvField(entry.prev_hash()) << ','
              << CsvField(entry.hash()) << '\n';
  }
  std::cout << std::flush;
}

int ShowLog(const GlobalOptions& global, const LogOptions& options) {
  v1::AuditQuery query;
  query.set_run_id(options.run_id);
  if (!options.since.empty()) {
    absl::StatusOr<absl::Time> since = ParseSinceTime(options.since);
    if (!since.ok()) return ReportUsageError(std::string(since.status().message()));
    query.set_since(absl::ToDoubleSeconds(*since - absl::UnixEpoch()));
  }
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto entries = (*admin)->FetchAuditEntries(query);
  if (!entries.ok()) return ReportError(entries.status());
  if (global.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& entry : *entries) list.push_back(EntryJson(entry));
    PrintJsonLine({{"entries", std::move(list)}});
  } else if (options.csv) {
    PrintEntriesCsv(*entries);
  } else {
    PrintEntriesTable(*entries);
  }
  return kExitOk;
}

// ---- audit export ----------------------------------------------------------------

int ExportLog(const GlobalOptions& global, const std::string& out) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto log = (*admin)->FetchAuditLog();
  if (!log.ok()) return ReportError(log.status());
  if (absl::Status status = audit::WriteExport(out, *log); !status.ok()) {
    return ReportError(status);
  }
  const int64_t count = static_cast<int64_t>(log->entries.size());
  const int64_t first_seq = count > 0 ? log->entries.front().seq() : 0;
  const int64_t last_seq = count > 0 ? log->entries.back().seq() : 0;
  // Exported as served, so an auditor gets the evidence either way; verify
  // says what is wrong with it.
  if (last_seq != log->head.seq()) {
    std::cerr << "warning: the log's last entry is " << last_seq << " but its signed head names "
              << log->head.seq() << "; `fedmi audit verify --file " << out << "` will fail"
              << std::endl;
  }
  if (global.json) {
    PrintJsonLine({{"out", out},
                   {"entries", count},
                   {"first_seq", first_seq},
                   {"last_seq", last_seq},
                   {"head", {{"seq", log->head.seq()}, {"hash", log->head.hash()}}}});
  } else {
    std::cout << "exported " << count << " audit entries";
    if (count > 0) std::cout << " (" << first_seq << ".." << last_seq << ")";
    std::cout << " to " << out << "\n"
              << "head: entry " << log->head.seq() << ", hash "
              << (log->head.hash().empty() ? "-" : log->head.hash()) << std::endl;
  }
  return kExitOk;
}

// ---- audit verify ------------------------------------------------------------------

struct VerifyOptions {
  std::string file;
  std::string receipts_dir;
};

std::string SignerName(const std::string& cert_pem) {
  absl::StatusOr<CertificateInfo> info = ParseCertificatePem(cert_pem);
  if (!info.ok() || info->common_name.empty()) return "(unreadable certificate)";
  return info->common_name;
}

int VerifyAuditLog(const GlobalOptions& global, const VerifyOptions& options) {
  const std::string ca_file =
      ResolveConfigPath(global.ca, "--ca", global.argc, global.argv, global.config_file);
  if (ca_file.empty()) {
    return ReportUsageError(
        "audit verify needs the project CA certificate: `fedmi --ca ca.pem audit verify`, or "
        "`fedmi --config fedmi.toml audit verify` with your kit's config");
  }
  auto ca_pem = ReadFileToString(ca_file);
  if (!ca_pem.ok()) return ReportError(ca_pem.status());

  absl::StatusOr<audit::ExportedLog> log;
  if (!options.file.empty()) {
    log = audit::ReadExport(options.file);  // offline: no coordinator contact
  } else {
    auto admin = ConnectToCoordinator(global);
    if (!admin.ok()) return ReportError(admin.status());
    log = (*admin)->FetchAuditLog();
  }
  if (!log.ok()) return ReportError(log.status());

  std::vector<v1::UploadReceipt> receipts;
  std::vector<audit::HeldHead> heads;
  if (!options.receipts_dir.empty()) {
    auto read = audit::ReadReceiptsDir(options.receipts_dir);
    if (!read.ok()) return ReportError(read.status());
    receipts = *std::move(read);
    // A site that ran before heads were sent has none: that is no failure.
    auto held = audit::ReadHeldHeadsDir(audit::HeldHeadsDir(options.receipts_dir));
    if (!held.ok() && !absl::IsNotFound(held.status())) return ReportError(held.status());
    if (held.ok()) heads = *std::move(held);
  }

  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyLog(log->entries, log->head, log->signer_certificate_pem, *ca_pem);
  absl::Status status = report.status();
  audit::HeadsReport heads_report;
  if (status.ok() && !options.receipts_dir.empty()) {
    // Every problem the site's evidence shows, not just the first: a dropped
    // receipt entry and a dropped tail are two findings.
    std::vector<std::string> problems;
    absl::Status receipts_ok =
        audit::VerifyReceipts(receipts, log->entries, log->signer_certificate_pem);
    if (!receipts_ok.ok()) problems.emplace_back(receipts_ok.message());
    heads_report = audit::CheckHeldHeads(heads, log->entries, log->signer_certificate_pem);
    problems.insert(problems.end(), heads_report.problems.begin(), heads_report.problems.end());
    if (!problems.empty()) status = absl::DataLossError(absl::StrJoin(problems, "\n"));
  }
  const int64_t entries = report.ok() ? report->entries : static_cast<int64_t>(log->entries.size());
  const std::string signer = SignerName(log->signer_certificate_pem);

  if (global.json) {
    PrintJsonLine({{"intact", status.ok()},
                   {"entries", entries},
                   {"receipts", receipts.size()},
                   {"heads", heads_report.heads},
                   {"head_problems", heads_report.problems},
                   {"signer", signer},
                   {"error", status.ok() ? nlohmann::json(nullptr)
                                         : nlohmann::json(std::string(status.message()))}});
  }
  if (!status.ok()) {
    // One line per problem, so each missing or rewritten range reads alone.
    for (absl::string_view line : absl::StrSplit(status.message(), '\n')) {
      std::cerr << "error: " << line << "\n";
    }
    std::cerr << std::flush;
    return kExitFailure;
  }
  if (!global.json) {
    std::cout << "audit log intact: " << entries << " entries";
    if (entries > 0) std::cout << " (" << report->first_seq << ".." << report->last_seq << ")";
    std::cout << ", signed by " << signer;
    if (!options.receipts_dir.empty()) {
      std::cout << "; " << receipts.size() << " receipts found in the log; " << heads_report.heads
                << " signed heads the site holds are prefixes of it";
      if (heads_report.heads > 0) std::cout << " (newest: entry " << heads_report.newest_seq << ")";
    }
    std::cout << std::endl;
  }
  return kExitOk;
}

}  // namespace

void AddAuditCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* audit = app.add_subcommand(
      "audit",
      "Read, export and verify the coordinator's signed, hash-chained audit log (auditors and "
      "admins)");
  audit->require_subcommand(1);

  auto log_options = std::make_shared<LogOptions>();
  CLI::App* log = audit->add_subcommand(
      "log",
      "List audit entries: seq, time, actor, action, run, round and a summary of the detail");
  log->add_option("--run", log_options->run_id, "only entries about this run")
      ->check(CLI::PositiveNumber);
  log->add_option("--since", log_options->since,
                  "only entries from this time on: RFC 3339 (2026-11-28T10:00:00Z) or a date "
                  "(2026-11-28, midnight UTC)");
  CLI::Option* csv = log->add_flag(
      "--csv", log_options->csv,
      "print CSV with a header row instead of a table (the full detail JSON, quoted)");
  AddJsonFlag(log, global)->excludes(csv);
  log->callback([&global, &result, log_options] {
    RunCommand(result, [&] { return ShowLog(global, *log_options); });
  });

  auto export_out = std::make_shared<std::string>();
  CLI::App* export_log = audit->add_subcommand(
      "export",
      "Save the whole log with its signed head and the coordinator's certificate to a JSON "
      "Lines file that `fedmi audit verify --file` checks offline");
  export_log->add_option("--out", *export_out, "the file to write (.jsonl)")->required();
  AddJsonFlag(export_log, global);
  export_log->callback([&global, &result, export_out] {
    RunCommand(result, [&] { return ExportLog(global, *export_out); });
  });

  auto verify_options = std::make_shared<VerifyOptions>();
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Check that the log is complete and unaltered: every entry's hash, the chain, the "
      "signatures and the signed head, by the coordinator's audit-signer certificate from the "
      "project CA (the global --ca, or ca in the config); a log signed with a TLS key is "
      "refused. Exits 1 naming the first bad entry");
  verify->add_option("--file", verify_options->file,
                     "verify an export from `fedmi audit export` offline, without contacting the "
                     "coordinator");
  verify->add_option("--receipts", verify_options->receipts_dir,
                     "also check a site's upload receipts (a directory of receipt .json files) "
                     "and the signed heads it kept in its heads/ subfolder against the log: "
                     "names entries rewritten or dropped since the site saw them");
  AddJsonFlag(verify, global);
  verify->callback([&global, &result, verify_options] {
    RunCommand(result, [&] { return VerifyAuditLog(global, *verify_options); });
  });
}

}  // namespace fedmi::cli
