#include "coordinator/sqlite_connection.h"

namespace fedmi {
namespace {

constexpr int kBusyTimeoutMs = 5000;

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status SqliteError(const std::string& path, sqlite3* db, int rc, absl::string_view what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(
      CodeFor(rc), absl::StrCat("sqlite '", path, "': ", what, ": ", message, " (code ", rc, ")"));
}

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // The connection is serialised by mu(), so SQLite's own mutexes are not
  // needed.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(path, db, rc, "open database");
    sqlite3_close_v2(db);
    return status;
  }
  std::unique_ptr<SqliteConnection> connection(new SqliteConnection(path, db));
  absl::MutexLock lock(&connection->mu_);
  RETURN_IF_ERROR(connection->ApplySettings());
  return connection;
}

SqliteConnection::~SqliteConnection() { sqlite3_close_v2(db_); }

absl::Status SqliteConnection::ApplySettings() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // The first statement reads the file header, so a file that is not a
  // SQLite database fails here with SQLITE_NOTADB.
  {
    Statement wal(*this, "enable WAL (is this a fedmi coordinator database?)");
    RETURN_IF_ERROR(wal.Prepare("PRAGMA journal_mode=WAL"));
    ASSIGN_OR_RETURN(bool row, wal.Step());
    std::string mode = row ? wal.Text(0) : "";
    if (mode != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("sqlite '", path_, "': journal_mode is '", mode, "' after enabling WAL"));
    }
  }
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL", "set synchronous=FULL"));
  RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON", "enable foreign keys"));
  return absl::OkStatus();
}

absl::Status SqliteConnection::Exec(const std::string& sql, absl::string_view what) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(path_, db_, rc, what);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteConnection::QueryInt(const char* sql, absl::string_view what) {
  Statement query(*this, std::string(what));
  RETURN_IF_ERROR(query.Prepare(sql));
  ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) {
    return absl::InternalError(
        absl::StrCat("sqlite '", path_, "': ", what, ": query returned no row"));
  }
  return query.Int(0);
}

absl::Status Statement::Prepare(absl::string_view sql) {
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) return SqliteError(path_, db_, rc, what_);
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return SqliteError(path_, db_, bind_rc_, what_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(path_, db_, rc, what_);
}

absl::Status Statement::Run() {
  ASSIGN_OR_RETURN(bool row, Step());
  (void)row;
  return absl::OkStatus();
}

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  return text == nullptr ? std::string()
                         : std::string(reinterpret_cast<const char*>(text),
                                       sqlite3_column_bytes(stmt_, column));
}

std::string Statement::Blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  return blob == nullptr
             ? std::string()
             : std::string(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
}

}  // namespace fedmi
