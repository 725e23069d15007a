// What the run status and the audit log say about one run, gathered for
// `fedmi run report` (cli/run_report.cc): who started and finished it, each
// round's sites, model hash and metrics, each site's updates and
// departures, and, already worded as Markdown, every incident, model
// export and disagreement between the status and the log.
//
// Pure functions. RunFacts points into the RunStatus and entries it was
// gathered from, which must outlive it.
#ifndef FEDMI_CLI_RUN_FACTS_H_
#define FEDMI_CLI_RUN_FACTS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/audit_entry_text.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi::cli {

struct RoundFacts {
  std::vector<std::string> sites;  // in the order first seen
  std::set<std::string> left;      // dropped or refused
  const v1::RoundStatus* status = nullptr;
  std::string logged_model_sha256;
  const v1::AuditEntry* aggregated = nullptr;
  const v1::AuditEntry* evaluated = nullptr;
  const v1::AuditEntry* privacy_spent = nullptr;  // differentially private runs
  DetailJson logged_metrics = DetailJson::object();
  int logged_secure_aggregation = -1;  // from round.opened; -1: not logged
};

struct SiteFacts {
  std::set<int32_t> rounds;
  int updates = 0;
  int64_t examples = 0;
  int dropped = 0;
  int refused = 0;
};

struct RunFacts {
  const v1::AuditEntry* started = nullptr;
  const v1::AuditEntry* finished = nullptr;
  std::map<int32_t, RoundFacts> rounds;
  std::map<std::string, SiteFacts> sites;
  // Markdown sentences, one per bullet.
  std::vector<std::string> incidents;
  std::vector<std::string> exports;
  std::vector<std::string> discrepancies;
  int64_t entries = 0;
  int64_t first_seq = 0;
  int64_t last_seq = 0;
};

// Reads `entries` about `run` (others are skipped) in order, then the run
// status, and compares the two.
RunFacts GatherRunFacts(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries);

// "audit seq 42": how the report cites an entry.
std::string SeqRef(const v1::AuditEntry& entry);

// `text` as a one-line Markdown code span; "-" when empty.
std::string MarkdownCode(absl::string_view text);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RUN_FACTS_H_
