#include "coordinator/sqlite_audit_tables.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/storage_validation.h"

namespace fedmi {
namespace {

constexpr char kSelectAudit[] =
    "SELECT seq, time, actor, action, run_id, round, detail, prev_hash, hash, signature "
    "FROM audit";

v1::AuditEntry AuditEntryAt(const Statement& select) {
  v1::AuditEntry entry;
  entry.set_seq(select.Int(0));
  entry.set_time(select.Text(1));
  entry.set_actor(select.Text(2));
  entry.set_action(select.Text(3));
  entry.set_run_id(select.Int(4));
  entry.set_round(static_cast<int32_t>(select.Int(5)));
  entry.set_detail_json(select.Text(6));
  entry.set_prev_hash(select.Text(7));
  entry.set_hash(select.Text(8));
  entry.set_signature(select.Blob(9));
  return entry;
}

}  // namespace

absl::Status SqliteAuditTables::AppendAudit(const v1::AuditEntry& entry,
                                            const StoredAuditHead& head) {
  RETURN_IF_ERROR(storage_internal::ValidateAuditAppend(entry, head));
  absl::MutexLock lock(&db_.mu());
  // Appends are many and small: without their own fsync (WAL,
  // synchronous=NORMAL) they survive a process crash at once and a power
  // loss with the next FULL commit, i.e. the round's (docs/audit.md).
  RETURN_IF_ERROR(db_.Exec("PRAGMA synchronous=NORMAL", "append audit entry: set synchronous"));
  absl::Status appended = AppendAuditLocked(entry, head);
  absl::Status restored =
      db_.Exec("PRAGMA synchronous=FULL", "append audit entry: reset synchronous");
  return appended.ok() ? restored : appended;
}

absl::Status SqliteAuditTables::AppendAuditLocked(const v1::AuditEntry& entry,
                                                  const StoredAuditHead& head) {
  return db_.InTransaction("append audit entry", [&]() -> absl::Status {
    Statement insert(db_, "insert into audit");
    RETURN_IF_ERROR(insert.Prepare(
        "INSERT INTO audit(seq, time, actor, action, run_id, round, detail, prev_hash, hash, "
        "signature) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
    insert.Bind(1, entry.seq())
        .Bind(2, entry.time())
        .Bind(3, entry.actor())
        .Bind(4, entry.action())
        .Bind(5, entry.run_id())
        .Bind(6, entry.round())
        .Bind(7, entry.detail_json())
        .Bind(8, entry.prev_hash())
        .Bind(9, entry.hash())
        .BindBlob(10, entry.signature());
    absl::Status inserted = insert.Run();
    if (inserted.code() == absl::StatusCode::kAlreadyExists) {
      return storage_internal::AuditEntryExists(entry.seq());
    }
    RETURN_IF_ERROR(inserted);
    Statement replace(db_, "replace audit head");
    RETURN_IF_ERROR(replace.Prepare(
        "INSERT OR REPLACE INTO audit_head(id, seq, hash, signature, signer_certificate) "
        "VALUES(1, ?1, ?2, ?3, ?4)"));
    replace.Bind(1, head.head.seq())
        .Bind(2, head.head.hash())
        .BindBlob(3, head.head.signature())
        .Bind(4, head.signer_certificate_pem);
    return replace.Run();
  });
}

absl::StatusOr<std::vector<v1::AuditEntry>> SqliteAuditTables::ListAudit(
    const v1::AuditQuery& query, int limit) {
  absl::MutexLock lock(&db_.mu());
  Statement select(db_, "select from audit");
  RETURN_IF_ERROR(
      select.Prepare(absl::StrCat(kSelectAudit,
                                  " WHERE seq > ?1 AND time >= ?2 AND (?3 = 0 OR run_id = ?3) "
                                  "ORDER BY seq LIMIT ?4")));
  // SQLite reads a negative LIMIT as none.
  select.Bind(1, query.after_seq())
      .Bind(2, storage_internal::AuditTimeLowerBound(query.since()))
      .Bind(3, query.run_id())
      .Bind(4, static_cast<int64_t>(limit < 0 ? -1 : limit));
  std::vector<v1::AuditEntry> entries;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    entries.push_back(AuditEntryAt(select));
  }
  return entries;
}

absl::StatusOr<v1::AuditEntry> SqliteAuditTables::LastAuditEntry() {
  absl::MutexLock lock(&db_.mu());
  Statement select(db_, "select last audit entry");
  RETURN_IF_ERROR(select.Prepare(absl::StrCat(kSelectAudit, " ORDER BY seq DESC LIMIT 1")));
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError("the audit log is empty");
  return AuditEntryAt(select);
}

absl::StatusOr<StoredAuditHead> SqliteAuditTables::GetAuditHead() {
  absl::MutexLock lock(&db_.mu());
  Statement select(db_, "select audit head");
  RETURN_IF_ERROR(select.Prepare(
      "SELECT seq, hash, signature, signer_certificate FROM audit_head WHERE id = 1"));
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError("the audit log has no head");
  StoredAuditHead head;
  head.head.set_seq(select.Int(0));
  head.head.set_hash(select.Text(1));
  head.head.set_signature(select.Blob(2));
  head.signer_certificate_pem = select.Text(3);
  return head;
}

absl::StatusOr<int64_t> SqliteAuditTables::CountAudit() {
  absl::MutexLock lock(&db_.mu());
  return db_.QueryInt("SELECT count(*) FROM audit", "count audit entries");
}

}  // namespace fedmi
