// SqliteStorage: the durable Storage backend, one SQLite file per coordinator.
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
// The schema is created on open and versioned with PRAGMA user_version.
//
// Thread-safe: one mutex serialises all use of the connection. Every write
// that touches more than one row runs inside BEGIN IMMEDIATE ... COMMIT and
// is rolled back on any error.
#include <sqlite3.h>

#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status.h"
#include "coordinator/storage.h"
#include "coordinator/storage_validation.h"

namespace fedmi {
namespace {

using storage_internal::EvaluatedState;
using storage_internal::IsTerminalRunState;
using storage_internal::RoundAlreadyCommitted;
using storage_internal::RoundNotFound;
using storage_internal::RunNotFound;

constexpr int kSchemaVersion = 3;
constexpr int kBusyTimeoutMs = 5000;

// Schema 3 added the audit log (docs/audit.md).
constexpr char kAuditTables[] = R"sql(
CREATE TABLE IF NOT EXISTS audit (
  seq       INTEGER PRIMARY KEY,
  time      TEXT NOT NULL,     -- RFC 3339 UTC, fixed width: sorts as time does
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  run_id    INTEGER NOT NULL,
  round     INTEGER NOT NULL,
  detail    TEXT NOT NULL,     -- JSON object, hashed as stored
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL,
  signature BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_run ON audit(run_id, seq);
CREATE TABLE IF NOT EXISTS audit_head (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  seq       INTEGER NOT NULL,
  hash      TEXT NOT NULL,
  signature BLOB NOT NULL,
  signer_certificate TEXT NOT NULL
);
)sql";

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS sites (
  name           TEXT PRIMARY KEY,
  registered_at  REAL NOT NULL,
  last_seen      REAL NOT NULL,
  train_examples INTEGER NOT NULL,
  val_examples   INTEGER NOT NULL,
  certificate_expires REAL NOT NULL DEFAULT 0,
  revoked_at     REAL NOT NULL DEFAULT 0,
  revoked_by     TEXT NOT NULL DEFAULT '',
  revocation_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  spec        BLOB NOT NULL,  -- serialized fedmi.v1.RunSpec
  spec_sha256 TEXT NOT NULL,
  state       TEXT NOT NULL,
  error       TEXT NOT NULL,
  created_at  REAL NOT NULL,
  finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
  run_id       INTEGER NOT NULL REFERENCES runs(id),
  round        INTEGER NOT NULL,
  model_sha256 TEXT NOT NULL,
  state        TEXT NOT NULL,
  eval_metrics BLOB NOT NULL,  -- serialized fedmi.v1.Metrics
  started_at   REAL NOT NULL,
  finished_at  REAL NOT NULL,
  PRIMARY KEY (run_id, round)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS participations (
  run_id        INTEGER NOT NULL REFERENCES runs(id),
  round         INTEGER NOT NULL,
  site          TEXT NOT NULL,
  examples      INTEGER NOT NULL,
  train_metrics BLOB NOT NULL,  -- serialized fedmi.v1.Metrics
  eval_metrics  BLOB NOT NULL,  -- serialized fedmi.v1.Metrics
  update_sha256 TEXT NOT NULL,
  state         TEXT NOT NULL,
  detail        TEXT NOT NULL,
  PRIMARY KEY (run_id, round, site)
) WITHOUT ROWID;
)sql";

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

// "sqlite '/var/fedmi/coordinator.db': insert into rounds: disk I/O error (code 10)".
absl::Status SqliteError(const std::string& path, sqlite3* db, int rc, absl::string_view what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(
      CodeFor(rc), absl::StrCat("sqlite '", path, "': ", what, ": ", message, " (code ", rc, ")"));
}

// One prepared statement. Bind errors are kept and reported by Step(), so
// call sites read as a list of binds.
class Statement {
 public:
  Statement(const std::string& path, sqlite3* db, std::string what)
      : path_(path), db_(db), what_(std::move(what)) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status Prepare(absl::string_view sql) {
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
    if (rc != SQLITE_OK) return SqliteError(path_, db_, rc, what_);
    return absl::OkStatus();
  }

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
  absl::StatusOr<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(path_, db_, bind_rc_, what_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(path_, db_, rc, what_);
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return absl::OkStatus();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    return text == nullptr ? std::string()
                           : std::string(reinterpret_cast<const char*>(text),
                                         sqlite3_column_bytes(stmt_, column));
  }
  std::string Blob(int column) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    return blob == nullptr
               ? std::string()
               : std::string(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
  }

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

absl::Status ParseMetrics(const std::string& bytes, v1::Metrics* metrics, absl::string_view where) {
  if (!metrics->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(where, " does not parse as fedmi.v1.Metrics"));
  }
  return absl::OkStatus();
}

class SqliteStorage : public Storage {
 public:
  SqliteStorage(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  ~SqliteStorage() override { sqlite3_close_v2(db_); }

  // Applies the connection settings and creates or checks the schema.
  absl::Status Initialize() {
    absl::MutexLock lock(&mu_);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // The first statement reads the file header, so a file that is not a
    // SQLite database fails here with SQLITE_NOTADB.
    {
      Statement wal(path_, db_, "enable WAL (is this a fedmi coordinator database?)");
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
    return InTransaction("create schema", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(int64_t version, QueryInt("PRAGMA user_version", "read user_version"));
      if (version > kSchemaVersion) {
        return absl::FailedPreconditionError(
            absl::StrCat("sqlite '", path_, "': schema version ", version,
                         " is newer than this coordinator supports (", kSchemaVersion, ")"));
      }
      if (version == kSchemaVersion) return absl::OkStatus();
      if (version == 1) {
        // Version 2 added certificate expiry and revocation to sites.
        RETURN_IF_ERROR(
            Exec("ALTER TABLE sites ADD COLUMN certificate_expires REAL NOT NULL DEFAULT 0;"
                 "ALTER TABLE sites ADD COLUMN revoked_at REAL NOT NULL DEFAULT 0;"
                 "ALTER TABLE sites ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';"
                 "ALTER TABLE sites ADD COLUMN revocation_reason TEXT NOT NULL DEFAULT '';",
                 "migrate sites to schema 2"));
        version = 2;
      }
      if (version == 2) {
        RETURN_IF_ERROR(Exec(kAuditTables, "migrate to schema 3 (audit log)"));
        return Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion), "set user_version");
      }
      ASSIGN_OR_RETURN(int64_t foreign_tables,
                       QueryInt("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                "AND name NOT LIKE 'sqlite_%'",
                                "list tables"));
      if (foreign_tables > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("sqlite '", path_, "': database has ", foreign_tables,
                         " tables but no fedmi schema version; refusing to use it"));
      }
      RETURN_IF_ERROR(Exec(kSchema, "create tables"));
      RETURN_IF_ERROR(Exec(kAuditTables, "create audit tables"));
      return Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion), "set user_version");
    });
  }

  absl::Status UpsertSite(const SiteRecord& site) override {
    if (site.name.empty()) {
      return absl::InvalidArgumentError("upsert site: site name is empty");
    }
    absl::MutexLock lock(&mu_);
    Statement upsert(path_, db_, "upsert into sites");
    RETURN_IF_ERROR(upsert.Prepare(
        "INSERT INTO sites(name, registered_at, last_seen, train_examples, val_examples, "
        "certificate_expires, revoked_at, revoked_by, revocation_reason) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(name) DO UPDATE SET "
        "last_seen=excluded.last_seen, train_examples=excluded.train_examples, "
        "val_examples=excluded.val_examples, certificate_expires=excluded.certificate_expires, "
        "revoked_by=CASE WHEN sites.revoked_at > 0 THEN sites.revoked_by "
        "ELSE excluded.revoked_by END, "
        "revocation_reason=CASE WHEN sites.revoked_at > 0 THEN sites.revocation_reason "
        "ELSE excluded.revocation_reason END, "
        "revoked_at=CASE WHEN sites.revoked_at > 0 THEN sites.revoked_at "
        "ELSE excluded.revoked_at END"));
    upsert.Bind(1, site.name)
        .Bind(2, site.registered_at)
        .Bind(3, site.last_seen)
        .Bind(4, site.train_examples)
        .Bind(5, site.val_examples)
        .Bind(6, site.certificate_expires)
        .Bind(7, site.revoked_at)
        .Bind(8, site.revoked_by)
        .Bind(9, site.revocation_reason);
    return upsert.Run();
  }

  absl::StatusOr<std::vector<SiteRecord>> ListSites() override {
    absl::MutexLock lock(&mu_);
    Statement select(path_, db_, "select from sites");
    RETURN_IF_ERROR(
        select.Prepare("SELECT name, registered_at, last_seen, train_examples, val_examples, "
                       "certificate_expires, revoked_at, revoked_by, revocation_reason "
                       "FROM sites ORDER BY name"));
    std::vector<SiteRecord> sites;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      SiteRecord& site = sites.emplace_back();
      site.name = select.Text(0);
      site.registered_at = select.Double(1);
      site.last_seen = select.Double(2);
      site.train_examples = select.Int(3);
      site.val_examples = select.Int(4);
      site.certificate_expires = select.Double(5);
      site.revoked_at = select.Double(6);
      site.revoked_by = select.Text(7);
      site.revocation_reason = select.Text(8);
    }
    return sites;
  }

  absl::StatusOr<int64_t> CreateRun(const RunRecord& run) override {
    std::string spec_sha256 =
        run.spec_sha256.empty() ? storage_internal::SpecSha256Hex(run.spec) : run.spec_sha256;
    absl::MutexLock lock(&mu_);
    Statement insert(path_, db_, "insert into runs");
    RETURN_IF_ERROR(
        insert.Prepare("INSERT INTO runs(spec, spec_sha256, state, error, created_at, finished_at) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
    insert.BindBlob(1, run.spec.SerializeAsString())
        .Bind(2, spec_sha256)
        .Bind(3, run.state)
        .Bind(4, run.error)
        .Bind(5, run.created_at)
        .Bind(6, run.finished_at);
    RETURN_IF_ERROR(insert.Run());
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  absl::StatusOr<RunRecord> GetRun(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(std::vector<RunRecord> runs, SelectRuns(run_id));
    if (runs.empty()) return RunNotFound(run_id);
    return std::move(runs.front());
  }

  absl::StatusOr<std::vector<RunRecord>> ListRuns() override {
    absl::MutexLock lock(&mu_);
    return SelectRuns(std::nullopt);
  }

  absl::Status SetRunState(int64_t run_id, const std::string& state, const std::string& error,
                           double finished_at) override {
    absl::MutexLock lock(&mu_);
    Statement update(path_, db_, "update runs (set state)");
    RETURN_IF_ERROR(
        update.Prepare("UPDATE runs SET state=?1, error=?2, finished_at=?3 WHERE id=?4"));
    update.Bind(1, state).Bind(2, error).Bind(3, finished_at).Bind(4, run_id);
    RETURN_IF_ERROR(update.Run());
    if (sqlite3_changes(db_) == 0) return RunNotFound(run_id);
    return absl::OkStatus();
  }

  absl::Status CommitRound(const RoundCommit& commit) override {
    RETURN_IF_ERROR(storage_internal::ValidateRoundCommit(commit));
    const RoundRecord& round = commit.round;
    absl::MutexLock lock(&mu_);
    return InTransaction("commit round", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(round.run_id));
      ASSIGN_OR_RETURN(bool exists, RoundExists(round.run_id, round.round));
      if (exists) return RoundAlreadyCommitted(round.run_id, round.round);

      Statement insert(path_, db_, "commit round: insert into rounds");
      RETURN_IF_ERROR(
          insert.Prepare("INSERT INTO rounds(run_id, round, model_sha256, state, eval_metrics, "
                         "started_at, finished_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
      insert.Bind(1, round.run_id)
          .Bind(2, round.round)
          .Bind(3, round.model_sha256)
          .Bind(4, round.state)
          .BindBlob(5, round.eval_metrics.SerializeAsString())
          .Bind(6, round.started_at)
          .Bind(7, round.finished_at);
      RETURN_IF_ERROR(insert.Run());

      for (const ParticipationRecord& participation : commit.participations) {
        RETURN_IF_ERROR(ReplaceParticipation(participation, "commit round"));
      }

      if (commit.run_state.has_value()) {
        Statement update(path_, db_, "commit round: update runs");
        RETURN_IF_ERROR(
            update.Prepare("UPDATE runs SET state=?1, error=?2, "
                           "finished_at=CASE WHEN ?3 THEN ?4 ELSE finished_at END WHERE id=?5"));
        update.Bind(1, *commit.run_state)
            .Bind(2, commit.run_error)
            .Bind(3, int64_t{IsTerminalRunState(*commit.run_state)})
            .Bind(4, round.finished_at)
            .Bind(5, round.run_id);
        RETURN_IF_ERROR(update.Run());
      }
      return absl::OkStatus();
    });
  }

  absl::Status RecordEvaluation(int64_t run_id, int32_t round, const v1::Metrics& aggregate,
                                const std::vector<ParticipationRecord>& per_site,
                                double finished_at) override {
    RETURN_IF_ERROR(storage_internal::ValidateEvaluation(run_id, round, per_site));
    absl::MutexLock lock(&mu_);
    return InTransaction("record evaluation", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(run_id));
      Statement update(path_, db_, "record evaluation: update rounds");
      RETURN_IF_ERROR(
          update.Prepare("UPDATE rounds SET eval_metrics=?1, state='evaluated', finished_at=?2 "
                         "WHERE run_id=?3 AND round=?4"));
      update.BindBlob(1, aggregate.SerializeAsString())
          .Bind(2, finished_at)
          .Bind(3, run_id)
          .Bind(4, round);
      RETURN_IF_ERROR(update.Run());
      if (sqlite3_changes(db_) == 0) return RoundNotFound(run_id, round);

      for (const ParticipationRecord& site : per_site) {
        // A site that trained this round keeps its training columns.
        Statement upsert(path_, db_, "record evaluation: upsert into participations");
        RETURN_IF_ERROR(upsert.Prepare(
            "INSERT INTO participations(run_id, round, site, examples, train_metrics, "
            "eval_metrics, update_sha256, state, detail) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
            "ON CONFLICT(run_id, round, site) DO UPDATE SET "
            "eval_metrics=excluded.eval_metrics, state=excluded.state, "
            "detail=CASE WHEN excluded.detail<>'' THEN excluded.detail ELSE detail END"));
        BindParticipation(upsert, site);
        upsert.Bind(8, EvaluatedState(site));
        RETURN_IF_ERROR(upsert.Run());
      }
      return absl::OkStatus();
    });
  }

  absl::Status RecordParticipation(const ParticipationRecord& record) override {
    RETURN_IF_ERROR(storage_internal::ValidateParticipation(record));
    absl::MutexLock lock(&mu_);
    return InTransaction("record participation", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(record.run_id));
      return ReplaceParticipation(record, "record participation");
    });
  }

  absl::StatusOr<std::vector<RoundRecord>> ListRounds(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<RoundRecord> rounds;
    RETURN_IF_ERROR(InTransaction(
        "list rounds",
        [&]() -> absl::Status {
          RETURN_IF_ERROR(CheckRunExists(run_id));
          Statement select(path_, db_, "select from rounds");
          RETURN_IF_ERROR(
              select.Prepare("SELECT run_id, round, model_sha256, state, eval_metrics, started_at, "
                             "finished_at FROM rounds WHERE run_id=?1 ORDER BY round"));
          select.Bind(1, run_id);
          while (true) {
            ASSIGN_OR_RETURN(bool row, select.Step());
            if (!row) break;
            RoundRecord& round = rounds.emplace_back();
            round.run_id = select.Int(0);
            round.round = static_cast<int32_t>(select.Int(1));
            round.model_sha256 = select.Text(2);
            round.state = select.Text(3);
            RETURN_IF_ERROR(ParseMetrics(select.Blob(4), &round.eval_metrics,
                                         absl::StrCat("rounds row (run ", run_id, ", round ",
                                                      round.round, "): eval_metrics")));
            round.started_at = select.Double(5);
            round.finished_at = select.Double(6);
          }
          return absl::OkStatus();
        },
        /*write=*/false));
    return rounds;
  }

  absl::StatusOr<std::vector<ParticipationRecord>> ListParticipations(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<ParticipationRecord> rows;
    RETURN_IF_ERROR(InTransaction(
        "list participations",
        [&]() -> absl::Status {
          RETURN_IF_ERROR(CheckRunExists(run_id));
          Statement select(path_, db_, "select from participations");
          RETURN_IF_ERROR(
              select.Prepare("SELECT run_id, round, site, examples, train_metrics, eval_metrics, "
                             "update_sha256, state, detail FROM participations WHERE run_id=?1 "
                             "ORDER BY round, site"));
          select.Bind(1, run_id);
          while (true) {
            ASSIGN_OR_RETURN(bool row, select.Step());
            if (!row) break;
            ParticipationRecord& record = rows.emplace_back();
            record.run_id = select.Int(0);
            record.round = static_cast<int32_t>(select.Int(1));
            record.site = select.Text(2);
            record.examples = select.Int(3);
            const std::string where = absl::StrCat("participations row (run ", run_id, ", round ",
                                                   record.round, ", site '", record.site, "'): ");
            RETURN_IF_ERROR(ParseMetrics(select.Blob(4), &record.train_metrics,
                                         absl::StrCat(where, "train_metrics")));
            RETURN_IF_ERROR(ParseMetrics(select.Blob(5), &record.eval_metrics,
                                         absl::StrCat(where, "eval_metrics")));
            record.update_sha256 = select.Text(6);
            record.state = select.Text(7);
            record.detail = select.Text(8);
          }
          return absl::OkStatus();
        },
        /*write=*/false));
    return rows;
  }

  absl::StatusOr<std::set<std::string>> ReferencedModels() override {
    absl::MutexLock lock(&mu_);
    Statement select(path_, db_, "select from rounds (referenced models)");
    RETURN_IF_ERROR(select.Prepare("SELECT DISTINCT model_sha256 FROM rounds"));
    std::set<std::string> models;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      models.insert(select.Text(0));
    }
    return models;
  }

  absl::Status AppendAudit(const v1::AuditEntry& entry, const StoredAuditHead& head) override {
    RETURN_IF_ERROR(storage_internal::ValidateAuditAppend(entry, head));
    absl::MutexLock lock(&mu_);
    // Appends are many and small: without their own fsync (WAL,
    // synchronous=NORMAL) they survive a process crash at once and a power
    // loss with the next FULL commit, i.e. the round's (docs/audit.md).
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL", "append audit entry: set synchronous"));
    absl::Status appended = AppendAuditLocked(entry, head);
    absl::Status restored =
        Exec("PRAGMA synchronous=FULL", "append audit entry: reset synchronous");
    return appended.ok() ? restored : appended;
  }

  absl::Status AppendAuditLocked(const v1::AuditEntry& entry, const StoredAuditHead& head)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return InTransaction("append audit entry", [&]() -> absl::Status {
      Statement insert(path_, db_, "insert into audit");
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
      Statement replace(path_, db_, "replace audit head");
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

  absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(const v1::AuditQuery& query) override {
    absl::MutexLock lock(&mu_);
    Statement select(path_, db_, "select from audit");
    RETURN_IF_ERROR(
        select.Prepare(absl::StrCat(kSelectAudit,
                                    " WHERE seq > ?1 AND time >= ?2 AND (?3 = 0 OR run_id = ?3) "
                                    "ORDER BY seq")));
    select.Bind(1, query.after_seq())
        .Bind(2, storage_internal::AuditTimeLowerBound(query.since()))
        .Bind(3, query.run_id());
    std::vector<v1::AuditEntry> entries;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      entries.push_back(AuditEntryAt(select));
    }
    return entries;
  }

  absl::StatusOr<v1::AuditEntry> LastAuditEntry() override {
    absl::MutexLock lock(&mu_);
    Statement select(path_, db_, "select last audit entry");
    RETURN_IF_ERROR(select.Prepare(absl::StrCat(kSelectAudit, " ORDER BY seq DESC LIMIT 1")));
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return absl::NotFoundError("the audit log is empty");
    return AuditEntryAt(select);
  }

  absl::StatusOr<StoredAuditHead> GetAuditHead() override {
    absl::MutexLock lock(&mu_);
    Statement select(path_, db_, "select audit head");
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

  absl::StatusOr<int64_t> CountAudit() override {
    absl::MutexLock lock(&mu_);
    return QueryInt("SELECT count(*) FROM audit", "count audit entries");
  }

 private:
  static constexpr char kSelectAudit[] =
      "SELECT seq, time, actor, action, run_id, round, detail, prev_hash, hash, signature "
      "FROM audit";
  static v1::AuditEntry AuditEntryAt(const Statement& select) {
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

  absl::Status Exec(const std::string& sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(path_, db_, rc, what);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> QueryInt(const char* sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement query(path_, db_, std::string(what));
    RETURN_IF_ERROR(query.Prepare(sql));
    ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) {
      return absl::InternalError(
          absl::StrCat("sqlite '", path_, "': ", what, ": query returned no row"));
    }
    return query.Int(0);
  }

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

  absl::Status CheckRunExists(int64_t run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement select(path_, db_, "select from runs (check run exists)");
    RETURN_IF_ERROR(select.Prepare("SELECT 1 FROM runs WHERE id=?1"));
    select.Bind(1, run_id);
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return RunNotFound(run_id);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> RoundExists(int64_t run_id, int32_t round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement select(path_, db_, "select from rounds (check round exists)");
    RETURN_IF_ERROR(select.Prepare("SELECT 1 FROM rounds WHERE run_id=?1 AND round=?2"));
    select.Bind(1, run_id).Bind(2, round);
    return select.Step();
  }

  // Binds parameters 1..9 in participations column order.
  static void BindParticipation(Statement& statement, const ParticipationRecord& record) {
    statement.Bind(1, record.run_id)
        .Bind(2, record.round)
        .Bind(3, record.site)
        .Bind(4, record.examples)
        .BindBlob(5, record.train_metrics.SerializeAsString())
        .BindBlob(6, record.eval_metrics.SerializeAsString())
        .Bind(7, record.update_sha256)
        .Bind(8, record.state)
        .Bind(9, record.detail);
  }

  absl::Status ReplaceParticipation(const ParticipationRecord& record, absl::string_view operation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement replace(path_, db_,
                      absl::StrCat(operation, ": insert or replace into participations"));
    RETURN_IF_ERROR(
        replace.Prepare("INSERT OR REPLACE INTO participations(run_id, round, site, examples, "
                        "train_metrics, eval_metrics, update_sha256, state, detail) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    BindParticipation(replace, record);
    return replace.Run();
  }

  // All runs, or the one with `run_id`, ordered by id.
  absl::StatusOr<std::vector<RunRecord>> SelectRuns(std::optional<int64_t> run_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement select(path_, db_, "select from runs");
    RETURN_IF_ERROR(select.Prepare(
        "SELECT id, spec, spec_sha256, state, error, created_at, finished_at FROM runs "
        "WHERE ?1 IS NULL OR id=?1 ORDER BY id"));
    if (run_id.has_value()) select.Bind(1, *run_id);
    std::vector<RunRecord> runs;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      RunRecord& run = runs.emplace_back();
      run.id = select.Int(0);
      if (!run.spec.ParseFromString(select.Blob(1))) {
        return absl::DataLossError(absl::StrCat("sqlite '", path_, "': runs row ", run.id,
                                                ": spec does not parse as fedmi.v1.RunSpec"));
      }
      run.spec_sha256 = select.Text(2);
      run.state = select.Text(3);
      run.error = select.Text(4);
      run.created_at = select.Double(5);
      run.finished_at = select.Double(6);
    }
    return runs;
  }

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Storage>> OpenSqliteStorage(const std::string& path) {
  sqlite3* db = nullptr;
  // The connection is serialised by SqliteStorage's mutex, so SQLite's own
  // mutexes are not needed.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(path, db, rc, "open database");
    sqlite3_close_v2(db);
    return status;
  }
  auto storage = std::make_unique<SqliteStorage>(path, db);
  RETURN_IF_ERROR(storage->Initialize());
  return storage;
}

}  // namespace fedmi
