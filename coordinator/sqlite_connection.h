// SqliteConnection: one SQLite connection with fedmi's settings, and the
// helpers every SQLite table of the coordinator is written with: prepared
// Statements whose errors name the database and the operation, and
// transactions that roll back on any error. Used by SqliteStorage and its
// tables (sqlite_storage.cc, sqlite_audit_tables.cc, sqlite_schema.cc).
//
// Settings, chosen on open:
// - journal_mode=WAL: readers never block the writer, and a crash mid-commit
//   leaves the last committed state.
// - synchronous=FULL: with WAL, NORMAL may lose the last commits on power
//   loss. A round commit is what the coordinator tells sites and admins has
//   happened, and model files are garbage-collected against the rounds table,
//   so a commit must survive power loss once CommitRound returns. Commits
//   happen a few times per round, so the extra fsync costs nothing that
//   matters.
// - busy_timeout: another process (an operator's sqlite3 shell, a backup)
//   holding the lock briefly makes us wait instead of failing.
// - foreign_keys=ON: rounds and participations must name an existing run.
//
// Thread-safety: callers hold mu() around every use of the connection, and
// a Statement lives inside that critical section. Errors map SQLite result
// codes onto absl codes (busy: Unavailable, corrupt: DataLoss, full:
// ResourceExhausted, constraint on a key: AlreadyExists).
#ifndef FEDMI_COORDINATOR_SQLITE_CONNECTION_H_
#define FEDMI_COORDINATOR_SQLITE_CONNECTION_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status.h"

namespace fedmi {

class SqliteConnection {
 public:
  // Opens (creating when missing) the database at `path` and applies the
  // settings above. FailedPrecondition for a file that is not a SQLite
  // database or cannot be opened.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(const std::string& path);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  const std::string& path() const { return path_; }
  absl::Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // Runs `sql` (one or more statements without results).
  absl::Status Exec(const std::string& sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first column of the first row of `sql`.
  absl::StatusOr<int64_t> QueryInt(const char* sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t LastInsertRowid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sqlite3_last_insert_rowid(db_);
  }
  // Rows changed by the last statement.
  int Changes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sqlite3_changes(db_); }

  // Runs `body` inside a transaction: BEGIN IMMEDIATE for writes (so the
  // write lock is taken up front and a concurrent writer waits at BEGIN, not
  // halfway through), a deferred BEGIN for consistent multi-statement reads.
  // Rolls back when `body` or COMMIT fails.
  template <typename Body>
  absl::Status InTransaction(absl::string_view operation, Body body, bool write = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(
        Exec(write ? "BEGIN IMMEDIATE" : "BEGIN", absl::StrCat(operation, ": begin transaction")));
    absl::Status status = body();
    if (status.ok()) status = Exec("COMMIT", absl::StrCat(operation, ": commit"));
    // A failed COMMIT may already have rolled back; only roll back what is open.
    if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }

 private:
  friend class Statement;
  SqliteConnection(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::Status ApplySettings() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

// "sqlite '/var/fedmi/coordinator.db': insert into rounds: disk I/O error (code 10)".
absl::Status SqliteError(const std::string& path, sqlite3* db, int rc, absl::string_view what);

// One prepared statement. Bind errors are kept and reported by Step(), so
// call sites read as a list of binds.
class Statement {
 public:
  Statement(SqliteConnection& connection, std::string what)
      : path_(connection.path_), db_(connection.db_), what_(std::move(what)) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status Prepare(absl::string_view sql);

  Statement& Bind(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }
  Statement& Bind(int index, int32_t value) { return Bind(index, int64_t{value}); }
  Statement& Bind(int index, double value) {
    return Check(sqlite3_bind_double(stmt_, index, value));
  }
  Statement& Bind(int index, const std::string& text) {
    return Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT));
  }
  Statement& BindBlob(int index, const std::string& bytes) {
    return Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                                   SQLITE_TRANSIENT));
  }

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const;
  std::string Blob(int column) const;

 private:
  Statement& Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  const std::string& path_;
  sqlite3* db_;
  std::string what_;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SQLITE_CONNECTION_H_
