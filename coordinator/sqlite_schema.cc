#include "coordinator/sqlite_schema.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

constexpr int kSchemaVersion = 6;

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

// Schema 4 added revocations of admins and auditors by name (sites keep
// theirs in the sites table, as since schema 2).
constexpr char kRevocationTable[] = R"sql(
CREATE TABLE IF NOT EXISTS revocations (
  name       TEXT PRIMARY KEY,
  role       TEXT NOT NULL,    -- PartyRoleName
  revoked_at REAL NOT NULL,    -- unix seconds
  revoked_by TEXT NOT NULL,
  reason     TEXT NOT NULL
) WITHOUT ROWID;
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
  -- site-level DP with adaptive clipping: the next round's clip S (0: none)
  dp_next_clip_norm REAL NOT NULL DEFAULT 0,
  -- the server optimizer's state after the round ('': none)
  server_state_sha256 TEXT NOT NULL DEFAULT '',
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

// Adds `column` to the rounds table for schema `version`, only where the
// table exists and lacks it (a test may turn a current database back to an
// older version number).
absl::Status AddRoundsColumn(SqliteConnection& db, const std::string& column,
                             const std::string& type, int version) {
  ASSIGN_OR_RETURN(int64_t has_rounds,
                   db.QueryInt("SELECT count(*) FROM sqlite_master WHERE type='table' "
                               "AND name='rounds'",
                               "look for the rounds table"));
  const std::string has_column_sql =
      absl::StrCat("SELECT count(*) FROM pragma_table_info('rounds') WHERE name='", column, "'");
  ASSIGN_OR_RETURN(int64_t has_column,
                   db.QueryInt(has_column_sql.c_str(), absl::StrCat("look for rounds.", column)));
  if (has_rounds == 0 || has_column > 0) return absl::OkStatus();
  return db.Exec(absl::StrCat("ALTER TABLE rounds ADD COLUMN ", column, " ", type, ";"),
                 absl::StrCat("migrate rounds to schema ", version));
}

}  // namespace

absl::Status CreateOrMigrateSchema(SqliteConnection& db) {
  return db.InTransaction("create schema", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version", "read user_version"));
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("sqlite '", db.path(), "': schema version ", version,
                       " is newer than this coordinator supports (", kSchemaVersion, ")"));
    }
    if (version == kSchemaVersion) return absl::OkStatus();
    if (version == 1) {
      // Version 2 added certificate expiry and revocation to sites.
      RETURN_IF_ERROR(
          db.Exec("ALTER TABLE sites ADD COLUMN certificate_expires REAL NOT NULL DEFAULT 0;"
                  "ALTER TABLE sites ADD COLUMN revoked_at REAL NOT NULL DEFAULT 0;"
                  "ALTER TABLE sites ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';"
                  "ALTER TABLE sites ADD COLUMN revocation_reason TEXT NOT NULL DEFAULT '';",
                  "migrate sites to schema 2"));
      version = 2;
    }
    if (version == 2) {
      RETURN_IF_ERROR(db.Exec(kAuditTables, "migrate to schema 3 (audit log)"));
      version = 3;
    }
    if (version == 3) {
      RETURN_IF_ERROR(db.Exec(kRevocationTable, "migrate to schema 4 (revocations)"));
      version = 4;
    }
    if (version == 4) {
      // Version 5 keeps adaptive clipping's next clip with each round.
      RETURN_IF_ERROR(AddRoundsColumn(db, "dp_next_clip_norm", "REAL NOT NULL DEFAULT 0", 5));
      version = 5;
    }
    if (version == 5) {
      // Version 6 keeps the server optimizer's state with each round.
      RETURN_IF_ERROR(AddRoundsColumn(db, "server_state_sha256", "TEXT NOT NULL DEFAULT ''", 6));
      return db.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion), "set user_version");
    }
    ASSIGN_OR_RETURN(int64_t foreign_tables,
                     db.QueryInt("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                 "AND name NOT LIKE 'sqlite_%'",
                                 "list tables"));
    if (foreign_tables > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("sqlite '", db.path(), "': database has ", foreign_tables,
                       " tables but no fedmi schema version; refusing to use it"));
    }
    RETURN_IF_ERROR(db.Exec(kSchema, "create tables"));
    RETURN_IF_ERROR(db.Exec(kAuditTables, "create audit tables"));
    RETURN_IF_ERROR(db.Exec(kRevocationTable, "create revocations table"));
    return db.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion), "set user_version");
  });
}

}  // namespace fedmi
