#include "coordinator/dashboard_audit.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/crypto/identity.h"
#include "common/crypto/sha256.h"
#include "coordinator/dashboard_html.h"

namespace fedmi::dashboard {
namespace {

std::string Value(const std::map<std::string, std::string>& query, const char* name) {
  auto found = query.find(name);
  return found == query.end() ? "" : std::string(absl::StripAsciiWhitespace(found->second));
}

std::string Banner(const AuditVerification& verification) {
  switch (verification.outcome) {
    case AuditVerification::Outcome::kIntact:
      return absl::StrCat("<div class=\"banner ok\" id=\"verification\" data-intact=\"1\">",
                          "\xE2\x9C\x94 Audit log verified: ", verification.entries,
                          " entries, hash chain and signatures intact, signed by ",
                          Html(verification.signer), " (certified by the project CA)</div>");
    case AuditVerification::Outcome::kUnsigned:
      return absl::StrCat("<div class=\"banner note\" id=\"verification\" data-intact=\"0\">",
                          Html(verification.message), "</div>");
    case AuditVerification::Outcome::kBroken:
      break;
  }
  return absl::StrCat("<div class=\"banner fail\" id=\"verification\" data-intact=\"0\">",
                      "\xE2\x9C\x98 Audit log verification FAILED: ", Html(verification.message),
                      "</div>");
}

std::string FilterForm(const std::vector<v1::AuditEntry>& entries, const AuditFilter& filter) {
  std::set<std::string> kinds;
  for (const auto& entry : entries) {
    kinds.insert(entry.action());
    kinds.insert(entry.action().substr(0, entry.action().find('.')));
  }
  std::string options = "<option value=\"\">any</option>";
  for (const std::string& kind : kinds) {
    absl::StrAppend(
        &options, "<option value=\"", Html(kind), "\"", kind == filter.kind ? " selected" : "", ">",
        Html(absl::StrContains(kind, '.') ? kind : absl::StrCat(kind, ".*")), "</option>");
  }
  return absl::StrCat(
      "<form class=\"filter\" method=\"get\" action=\"/audit\"><label>Kind<select name=\"kind\">",
      options, "</select></label><label>Actor<input name=\"actor\" value=\"", Html(filter.actor),
      "\" placeholder=\"part of a name\"></label><label>Run<input name=\"run\" value=\"",
      filter.run_id > 0 ? absl::StrCat(filter.run_id) : "",
      "\" placeholder=\"id\" size=\"6\"></label><button type=\"submit\">Filter</button> "
      "<a href=\"/audit\">clear</a></form>");
}

}  // namespace

AuditFilter ParseAuditFilter(const std::map<std::string, std::string>& query) {
  AuditFilter filter;
  filter.kind = Value(query, "kind");
  filter.actor = Value(query, "actor");
  const std::string run = Value(query, "run");
  if (!run.empty() && (!absl::SimpleAtoi(run, &filter.run_id) || filter.run_id < 0)) {
    filter.run_id = 0;
    filter.error = absl::StrCat("run '", run, "' is not a run id; showing every run");
  }
  return filter;
}

bool Matches(const AuditFilter& filter, const v1::AuditEntry& entry) {
  if (!filter.kind.empty() && entry.action() != filter.kind &&
      !absl::StartsWith(entry.action(), absl::StrCat(filter.kind, "."))) {
    return false;
  }
  if (!filter.actor.empty() && !absl::StrContains(absl::AsciiStrToLower(entry.actor()),
                                                  absl::AsciiStrToLower(filter.actor))) {
    return false;
  }
  return filter.run_id == 0 || entry.run_id() == filter.run_id;
}

AuditVerification VerifyAudit(std::vector<v1::AuditEntry> entries, const v1::AuditHead& head,
                              const std::string& signer_certificate_pem, const std::string& ca_pem,
                              bool signed_log) {
  AuditVerification verification;
  if (!signed_log || ca_pem.empty()) {
    verification.outcome = AuditVerification::Outcome::kUnsigned;
    verification.message =
        "Not verifiable: this coordinator runs without a project CA or audit key (--insecure), "
        "so its log is chained but unsigned.";
    return verification;
  }
  while (!entries.empty() && entries.back().seq() > head.seq()) entries.pop_back();
  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyLog(entries, head, signer_certificate_pem, ca_pem);
  absl::StatusOr<CertificateInfo> signer = ParseCertificatePem(signer_certificate_pem);
  verification.signer = signer.ok() ? signer->common_name : "(unreadable certificate)";
  if (!report.ok()) {
    verification.outcome = AuditVerification::Outcome::kBroken;
    verification.message = std::string(report.status().message());
    verification.entries = static_cast<int64_t>(entries.size());
    return verification;
  }
  verification.outcome = AuditVerification::Outcome::kIntact;
  verification.entries = report->entries;
  return verification;
}

AuditVerification AuditVerificationCache::Verify(const std::vector<v1::AuditEntry>& entries,
                                                 const v1::AuditHead& head,
                                                 const std::string& signer_certificate_pem,
                                                 const std::string& ca_pem, bool signed_log) {
  // Hashing the entries costs a fraction of checking their signatures.
  Sha256 digest;
  digest.Update(head.SerializeAsString());
  for (const v1::AuditEntry& entry : entries) {
    if (entry.seq() > head.seq()) break;  // appended after the head: VerifyAudit ignores them
    const std::string bytes = entry.SerializeAsString();
    digest.Update(absl::StrCat(bytes.size(), ":"));
    digest.Update(bytes);
  }
  const std::string key = digest.Final();
  absl::MutexLock lock(&mu_);
  if (head.hash().empty() || key != key_) {
    verification_ = VerifyAudit(entries, head, signer_certificate_pem, ca_pem, signed_log);
    key_ = key;
  }
  return verification_;
}

std::string AuditPage(const std::vector<v1::AuditEntry>& entries, const AuditFilter& filter,
                      const AuditVerification& verification, double now) {
  std::vector<const v1::AuditEntry*> shown;
  int64_t matching = 0;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!Matches(filter, *it)) continue;
    ++matching;
    if (shown.size() < static_cast<size_t>(kAuditPageEntries)) shown.push_back(&*it);
  }
  std::string main =
      absl::StrCat("<h1>Audit log</h1>", Banner(verification), FilterForm(entries, filter));
  if (!filter.error.empty()) {
    absl::StrAppend(&main, "<div class=\"banner note\">", Html(filter.error), "</div>");
  }
  absl::StrAppend(&main, "<p class=\"muted\" id=\"audit-count\" data-matching=\"", matching, "\">",
                  matching, " of ", entries.size(), " entries match",
                  matching > static_cast<int64_t>(shown.size())
                      ? absl::StrCat("; the newest ", shown.size(), " are listed")
                      : "",
                  ", newest first. <code>fedmi audit export</code> saves the whole log.</p>");
  absl::StrAppend(&main,
                  "<table class=\"audit\"><thead><tr><th>#</th><th>Time</th><th>Actor</th>"
                  "<th>Kind</th><th>Run</th><th>Round</th><th>Detail</th></tr></thead><tbody>");
  for (const v1::AuditEntry* entry : shown) {
    const std::string css = absl::StrContains(entry->action(), "denied") ||
                                    absl::StrContains(entry->action(), "refused") ||
                                    absl::StrContains(entry->action(), "revoked")
                                ? " class=\"warn\""
                                : "";
    absl::StrAppend(
        &main, "<tr data-seq=\"", entry->seq(), "\"><td class=\"num\">", entry->seq(),
        "</td><td class=\"small nowrap\">", Html(entry->time()), "</td><td class=\"nowrap\">",
        Html(entry->actor()), "</td><td", css, ">", Html(entry->action()),
        "</td><td class=\"num\">",
        entry->run_id() > 0
            ? absl::StrCat("<a href=\"/runs/", entry->run_id(), "\">", entry->run_id(), "</a>")
            : "",
        "</td><td class=\"num\">", entry->round() >= 0 ? absl::StrCat(entry->round()) : "",
        "</td><td><code>", Html(entry->detail_json()), "</code></td></tr>");
  }
  absl::StrAppend(&main, "</tbody></table>");
  // Not live: each load verifies the whole log, which an operator asks for.
  return RenderPage(PageFrame{"Audit log", Section::kAudit, false, now}, main);
}

}  // namespace fedmi::dashboard
