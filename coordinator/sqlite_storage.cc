// SqliteStorage: the durable Storage backend, one SQLite file per coordinator:
// sites, revocations, runs, rounds and participations. The connection and its settings
// are in sqlite_connection.h, the schema and its migrations in
// sqlite_schema.cc, the audit tables in sqlite_audit_tables.cc.
//
// Thread-safe: the connection's mutex serialises all use of it. Every write
// that touches more than one row runs inside BEGIN IMMEDIATE ... COMMIT and
// is rolled back on any error.
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status.h"
#include "coordinator/sqlite_audit_tables.h"
#include "coordinator/sqlite_connection.h"
#include "coordinator/sqlite_schema.h"
#include "coordinator/storage.h"
#include "coordinator/storage_validation.h"

namespace fedmi {
namespace {

using storage_internal::EvaluatedState;
using storage_internal::RoundAlreadyCommitted;
using storage_internal::RoundNotFound;
using storage_internal::RunNotFound;

absl::Status ParseMetrics(const std::string& bytes, v1::Metrics* metrics, absl::string_view where) {
  if (!metrics->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(where, " does not parse as fedmi.v1.Metrics"));
  }
  return absl::OkStatus();
}

// States are stored as their names (common/base/names.h).
template <typename State>
std::string StateText(State state) {
  return StateName(state);
}

// A state column holds one of those names; anything else is a database this
// coordinator did not write, and reading it is DataLoss naming the value.
template <typename State>
absl::Status ReadState(std::optional<State> (*parse)(absl::string_view), const std::string& stored,
                       absl::string_view where, State* state) {
  std::optional<State> parsed = parse(stored);
  if (!parsed.has_value()) {
    return absl::DataLossError(absl::StrCat(where, " is '", stored, "', not a known state"));
  }
  *state = *parsed;
  return absl::OkStatus();
}

class SqliteStorage : public Storage {
 public:
  explicit SqliteStorage(std::unique_ptr<SqliteConnection> db) : db_(std::move(db)), audit_(*db_) {}

  absl::Status UpsertSite(const SiteRecord& site) override {
    if (site.name.empty()) {
      return absl::InvalidArgumentError("upsert site: site name is empty");
    }
    absl::MutexLock lock(&db_->mu());
    Statement upsert(*db_, "upsert into sites");
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
    absl::MutexLock lock(&db_->mu());
    Statement select(*db_, "select from sites");
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

  absl::Status AddRevocation(const RevocationRecord& revocation) override {
    RETURN_IF_ERROR(storage_internal::ValidateRevocation(revocation));
    absl::MutexLock lock(&db_->mu());
    Statement insert(*db_, "insert into revocations");
    RETURN_IF_ERROR(
        insert.Prepare("INSERT INTO revocations(name, role, revoked_at, revoked_by, reason) "
                       "VALUES(?1, ?2, ?3, ?4, ?5)"));
    insert.Bind(1, revocation.name)
        .Bind(2, std::string(PartyRoleName(revocation.role)))
        .Bind(3, revocation.revoked_at)
        .Bind(4, revocation.revoked_by)
        .Bind(5, revocation.reason);
    absl::Status inserted = insert.Run();
    if (absl::IsAlreadyExists(inserted)) return storage_internal::RevocationExists(revocation.name);
    return inserted;
  }

  absl::StatusOr<std::vector<RevocationRecord>> ListRevocations() override {
    absl::MutexLock lock(&db_->mu());
    Statement select(*db_, "select from revocations");
    RETURN_IF_ERROR(select.Prepare(
        "SELECT name, role, revoked_at, revoked_by, reason FROM revocations ORDER BY name"));
    std::vector<RevocationRecord> revocations;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      RevocationRecord& revocation = revocations.emplace_back();
      revocation.name = select.Text(0);
      absl::StatusOr<PartyRole> role = ParsePartyRole(select.Text(1));
      if (!role.ok()) {
        return absl::DataLossError(absl::StrCat("revocation of '", revocation.name,
                                                "' names role '", select.Text(1), "'"));
      }
      revocation.role = *role;
      revocation.revoked_at = select.Double(2);
      revocation.revoked_by = select.Text(3);
      revocation.reason = select.Text(4);
    }
    return revocations;
  }

  absl::StatusOr<int64_t> CreateRun(const RunRecord& run) override {
    std::string spec_sha256 =
        run.spec_sha256.empty() ? storage_internal::SpecSha256Hex(run.spec) : run.spec_sha256;
    absl::MutexLock lock(&db_->mu());
    Statement insert(*db_, "insert into runs");
    RETURN_IF_ERROR(
        insert.Prepare("INSERT INTO runs(spec, spec_sha256, state, error, created_at, finished_at) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
    insert.BindBlob(1, run.spec.SerializeAsString())
        .Bind(2, spec_sha256)
        .Bind(3, StateText(run.state))
        .Bind(4, run.error)
        .Bind(5, run.created_at)
        .Bind(6, run.finished_at);
    RETURN_IF_ERROR(insert.Run());
    return db_->LastInsertRowid();
  }

  absl::StatusOr<RunRecord> GetRun(int64_t run_id) override {
    absl::MutexLock lock(&db_->mu());
    ASSIGN_OR_RETURN(std::vector<RunRecord> runs, SelectRuns(run_id));
    if (runs.empty()) return RunNotFound(run_id);
    return std::move(runs.front());
  }

  absl::StatusOr<std::vector<RunRecord>> ListRuns() override {
    absl::MutexLock lock(&db_->mu());
    return SelectRuns(std::nullopt);
  }

  absl::Status SetRunState(int64_t run_id, RunState state, const std::string& error,
                           double finished_at) override {
    absl::MutexLock lock(&db_->mu());
    Statement update(*db_, "update runs (set state)");
    RETURN_IF_ERROR(
        update.Prepare("UPDATE runs SET state=?1, error=?2, finished_at=?3 WHERE id=?4"));
    update.Bind(1, StateText(state)).Bind(2, error).Bind(3, finished_at).Bind(4, run_id);
    RETURN_IF_ERROR(update.Run());
    if (db_->Changes() == 0) return RunNotFound(run_id);
    return absl::OkStatus();
  }

  absl::Status CommitRound(const RoundCommit& commit) override {
    RETURN_IF_ERROR(storage_internal::ValidateRoundCommit(commit));
    const RoundRecord& round = commit.round;
    absl::MutexLock lock(&db_->mu());
    return db_->InTransaction("commit round", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(round.run_id));
      ASSIGN_OR_RETURN(bool exists, RoundExists(round.run_id, round.round));
      if (exists) return RoundAlreadyCommitted(round.run_id, round.round);

      Statement insert(*db_, "commit round: insert into rounds");
      RETURN_IF_ERROR(
          insert.Prepare("INSERT INTO rounds(run_id, round, model_sha256, state, eval_metrics, "
                         "started_at, finished_at, dp_next_clip_norm, server_state_sha256) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
      insert.Bind(1, round.run_id)
          .Bind(2, round.round)
          .Bind(3, round.model_sha256)
          .Bind(4, StateText(round.state))
          .BindBlob(5, round.eval_metrics.SerializeAsString())
          .Bind(6, round.started_at)
          .Bind(7, round.finished_at)
          .Bind(8, round.dp_next_clip_norm)
          .Bind(9, round.server_state_sha256);
      RETURN_IF_ERROR(insert.Run());

      for (const ParticipationRecord& participation : commit.participations) {
        RETURN_IF_ERROR(ReplaceParticipation(participation, "commit round"));
      }

      if (commit.run_state.has_value()) {
        Statement update(*db_, "commit round: update runs");
        RETURN_IF_ERROR(
            update.Prepare("UPDATE runs SET state=?1, error=?2, "
                           "finished_at=CASE WHEN ?3 THEN ?4 ELSE finished_at END WHERE id=?5"));
        update.Bind(1, StateText(*commit.run_state))
            .Bind(2, commit.run_error)
            .Bind(3, int64_t{IsTerminal(*commit.run_state)})
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
    absl::MutexLock lock(&db_->mu());
    return db_->InTransaction("record evaluation", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(run_id));
      Statement update(*db_, "record evaluation: update rounds");
      RETURN_IF_ERROR(
          update.Prepare("UPDATE rounds SET eval_metrics=?1, state=?5, finished_at=?2 "
                         "WHERE run_id=?3 AND round=?4"));
      update.BindBlob(1, aggregate.SerializeAsString())
          .Bind(2, finished_at)
          .Bind(3, run_id)
          .Bind(4, round)
          .Bind(5, StateText(RoundState::kEvaluated));
      RETURN_IF_ERROR(update.Run());
      if (db_->Changes() == 0) return RoundNotFound(run_id, round);

      for (const ParticipationRecord& site : per_site) {
        // A site that trained this round keeps its training columns.
        Statement upsert(*db_, "record evaluation: upsert into participations");
        RETURN_IF_ERROR(upsert.Prepare(
            "INSERT INTO participations(run_id, round, site, examples, train_metrics, "
            "eval_metrics, update_sha256, state, detail) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
            "ON CONFLICT(run_id, round, site) DO UPDATE SET "
            "eval_metrics=excluded.eval_metrics, state=excluded.state, "
            "detail=CASE WHEN excluded.detail<>'' THEN excluded.detail ELSE detail END"));
        BindParticipation(upsert, site);
        upsert.Bind(8, StateText(EvaluatedState(site)));
        RETURN_IF_ERROR(upsert.Run());
      }
      return absl::OkStatus();
    });
  }

  absl::Status RecordParticipation(const ParticipationRecord& record) override {
    RETURN_IF_ERROR(storage_internal::ValidateParticipation(record));
    absl::MutexLock lock(&db_->mu());
    return db_->InTransaction("record participation", [&]() -> absl::Status {
      RETURN_IF_ERROR(CheckRunExists(record.run_id));
      return ReplaceParticipation(record, "record participation");
    });
  }

  absl::StatusOr<std::vector<RoundRecord>> ListRounds(int64_t run_id) override {
    absl::MutexLock lock(&db_->mu());
    std::vector<RoundRecord> rounds;
    RETURN_IF_ERROR(db_->InTransaction(
        "list rounds",
        [&]() -> absl::Status {
          RETURN_IF_ERROR(CheckRunExists(run_id));
          Statement select(*db_, "select from rounds");
          RETURN_IF_ERROR(
              select.Prepare("SELECT run_id, round, model_sha256, state, eval_metrics, started_at, "
                             "finished_at, dp_next_clip_norm, server_state_sha256 FROM rounds "
                             "WHERE run_id=?1 "
                             "ORDER BY round"));
          select.Bind(1, run_id);
          while (true) {
            ASSIGN_OR_RETURN(bool row, select.Step());
            if (!row) break;
            RoundRecord& round = rounds.emplace_back();
            round.run_id = select.Int(0);
            round.round = static_cast<int32_t>(select.Int(1));
            round.model_sha256 = select.Text(2);
            const std::string where =
                absl::StrCat("rounds row (run ", run_id, ", round ", round.round, "): ");
            RETURN_IF_ERROR(ReadState(ParseRoundState, select.Text(3), absl::StrCat(where, "state"),
                                      &round.state));
            RETURN_IF_ERROR(ParseMetrics(select.Blob(4), &round.eval_metrics,
                                         absl::StrCat(where, "eval_metrics")));
            round.started_at = select.Double(5);
            round.finished_at = select.Double(6);
            round.dp_next_clip_norm = select.Double(7);
            round.server_state_sha256 = select.Text(8);
          }
          return absl::OkStatus();
        },
        /*write=*/false));
    return rounds;
  }

  absl::StatusOr<std::vector<ParticipationRecord>> ListParticipations(int64_t run_id) override {
    absl::MutexLock lock(&db_->mu());
    std::vector<ParticipationRecord> rows;
    RETURN_IF_ERROR(db_->InTransaction(
        "list participations",
        [&]() -> absl::Status {
          RETURN_IF_ERROR(CheckRunExists(run_id));
          Statement select(*db_, "select from participations");
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
            RETURN_IF_ERROR(ReadState(ParseParticipationState, select.Text(7),
                                      absl::StrCat(where, "state"), &record.state));
            record.detail = select.Text(8);
          }
          return absl::OkStatus();
        },
        /*write=*/false));
    return rows;
  }

  absl::StatusOr<std::set<std::string>> ReferencedModels() override {
    absl::MutexLock lock(&db_->mu());
    Statement select(*db_, "select from rounds (referenced models)");
    // A server optimizer's state lives in the ModelStore next to the models.
    RETURN_IF_ERROR(select.Prepare(
        "SELECT model_sha256 FROM rounds UNION SELECT server_state_sha256 FROM rounds "
        "WHERE server_state_sha256 != ''"));
    std::set<std::string> models;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      models.insert(select.Text(0));
    }
    return models;
  }

  absl::Status AppendAudit(const v1::AuditEntry& entry, const StoredAuditHead& head) override {
    return audit_.AppendAudit(entry, head);
  }
  absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(const v1::AuditQuery& query) override {
    return audit_.ListAudit(query);
  }
  absl::StatusOr<std::vector<v1::AuditEntry>> ListAuditPage(const v1::AuditQuery& query,
                                                            int limit) override {
    RETURN_IF_ERROR(storage_internal::CheckAuditPageLimit(limit));
    return audit_.ListAudit(query, limit);
  }
  absl::StatusOr<v1::AuditEntry> LastAuditEntry() override { return audit_.LastAuditEntry(); }
  absl::StatusOr<StoredAuditHead> GetAuditHead() override { return audit_.GetAuditHead(); }
  absl::StatusOr<int64_t> CountAudit() override { return audit_.CountAudit(); }

 private:
  absl::Status CheckRunExists(int64_t run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu()) {
    Statement select(*db_, "select from runs (check run exists)");
    RETURN_IF_ERROR(select.Prepare("SELECT 1 FROM runs WHERE id=?1"));
    select.Bind(1, run_id);
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return RunNotFound(run_id);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> RoundExists(int64_t run_id, int32_t round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu()) {
    Statement select(*db_, "select from rounds (check round exists)");
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
        .Bind(8, StateText(record.state))
        .Bind(9, record.detail);
  }

  absl::Status ReplaceParticipation(const ParticipationRecord& record, absl::string_view operation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu()) {
    Statement replace(*db_, absl::StrCat(operation, ": insert or replace into participations"));
    RETURN_IF_ERROR(
        replace.Prepare("INSERT OR REPLACE INTO participations(run_id, round, site, examples, "
                        "train_metrics, eval_metrics, update_sha256, state, detail) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    BindParticipation(replace, record);
    return replace.Run();
  }

  // All runs, or the one with `run_id`, ordered by id.
  absl::StatusOr<std::vector<RunRecord>> SelectRuns(std::optional<int64_t> run_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu()) {
    Statement select(*db_, "select from runs");
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
        return absl::DataLossError(absl::StrCat("sqlite '", db_->path(), "': runs row ", run.id,
                                                ": spec does not parse as fedmi.v1.RunSpec"));
      }
      run.spec_sha256 = select.Text(2);
      RETURN_IF_ERROR(ReadState(
          ParseRunState, select.Text(3),
          absl::StrCat("sqlite '", db_->path(), "': runs row ", run.id, ": state"), &run.state));
      run.error = select.Text(4);
      run.created_at = select.Double(5);
      run.finished_at = select.Double(6);
    }
    return runs;
  }

  const std::unique_ptr<SqliteConnection> db_;
  SqliteAuditTables audit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Storage>> OpenSqliteStorage(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> db, SqliteConnection::Open(path));
  {
    absl::MutexLock lock(&db->mu());
    RETURN_IF_ERROR(CreateOrMigrateSchema(*db));
  }
  return std::make_unique<SqliteStorage>(std::move(db));
}

}  // namespace fedmi
