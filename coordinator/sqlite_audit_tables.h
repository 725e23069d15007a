// SqliteAuditTables: the audit log's two tables (docs/audit.md) in the
// coordinator database: `audit`, one row per entry, append-only, and
// `audit_head`, the one signed head. SqliteStorage delegates the audit part
// of Storage to it; the contract is Storage's.
//
// Thread-safe: each call takes the connection's lock. The connection
// outlives this object.
#ifndef FEDMI_COORDINATOR_SQLITE_AUDIT_TABLES_H_
#define FEDMI_COORDINATOR_SQLITE_AUDIT_TABLES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/sqlite_connection.h"
#include "coordinator/storage.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi {

class SqliteAuditTables {
 public:
  explicit SqliteAuditTables(SqliteConnection& db) : db_(db) {}

  absl::Status AppendAudit(const v1::AuditEntry& entry, const StoredAuditHead& head);
  // `limit` < 0: no limit.
  absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(const v1::AuditQuery& query,
                                                        int limit = -1);
  absl::StatusOr<v1::AuditEntry> LastAuditEntry();
  absl::StatusOr<StoredAuditHead> GetAuditHead();
  absl::StatusOr<int64_t> CountAudit();

 private:
  absl::Status AppendAuditLocked(const v1::AuditEntry& entry, const StoredAuditHead& head)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_.mu());

  SqliteConnection& db_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SQLITE_AUDIT_TABLES_H_
