// The dashboard's audit-log page: entries filtered by kind (action),
// actor and run from the query string, and whether the whole log verifies
// (hash chain, signatures, signed head, signer certified by the project
// CA) by the same function `fedmi audit verify` uses, audit::VerifyLog.
//
// Pure functions (VerifyAudit only computes); thread-safe.
#ifndef FEDMI_COORDINATOR_DASHBOARD_AUDIT_H_
#define FEDMI_COORDINATOR_DASHBOARD_AUDIT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi::dashboard {

// The newest entries a page lists.
inline constexpr int kAuditPageEntries = 500;

struct AuditFilter {
  // An action ("run.started"), or its first part ("run": every run.*
  // entry). Empty: any.
  std::string kind;
  // Part of the actor's name, case-insensitive. Empty: any.
  std::string actor;
  int64_t run_id = 0;  // 0: any
  // Why a query parameter was ignored ("run must be a number").
  std::string error;
};

// From ?kind=...&actor=...&run=...
AuditFilter ParseAuditFilter(const std::map<std::string, std::string>& query);
bool Matches(const AuditFilter& filter, const v1::AuditEntry& entry);

struct AuditVerification {
  enum class Outcome { kIntact, kBroken, kUnsigned };
  Outcome outcome = Outcome::kBroken;
  int64_t entries = 0;
  std::string signer;   // the signer certificate's name
  std::string message;  // what is wrong, for kBroken and kUnsigned
};

// VerifyLog of the whole log against the project CA. `signed_log` false
// (a coordinator running --insecure, no CA): kUnsigned, not checked.
// Entries after the head's seq are left out: they were appended after the
// head was read.
AuditVerification VerifyAudit(std::vector<v1::AuditEntry> entries, const v1::AuditHead& head,
                              const std::string& signer_certificate_pem, const std::string& ca_pem,
                              bool signed_log);

// VerifyAudit's last answer, reused while the log is the same: a page
// load verifies again only a log that grew or changed. "The same" is the
// head and a digest of the entries' bytes, not the head alone: an entry
// rewritten in the database under an unchanged head must not go on
// showing as verified. Thread-safe.
class AuditVerificationCache {
 public:
  AuditVerification Verify(const std::vector<v1::AuditEntry>& entries, const v1::AuditHead& head,
                           const std::string& signer_certificate_pem, const std::string& ca_pem,
                           bool signed_log);

 private:
  absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  AuditVerification verification_ ABSL_GUARDED_BY(mu_);
};

// `entries` is the whole log in seq order; the page lists the newest
// kAuditPageEntries that match `filter`, newest first.
std::string AuditPage(const std::vector<v1::AuditEntry>& entries, const AuditFilter& filter,
                      const AuditVerification& verification, double now);

}  // namespace fedmi::dashboard

#endif  // FEDMI_COORDINATOR_DASHBOARD_AUDIT_H_
