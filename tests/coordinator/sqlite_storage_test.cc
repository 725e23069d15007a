// Runs the Storage conformance suite against SQLite, plus what only a real
// file can show: persistence across reopen, WAL mode, and clear errors for a
// file that is not a fedmi database.
#include <sqlite3.h>

#include <fstream>
#include <set>

#include "absl/strings/ascii.h"
#include "tests/coordinator/storage_conformance.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::unique_ptr<Storage> OpenFreshSqlite() {
  // Each storage gets its own directory, removed at exit.
  static std::vector<std::unique_ptr<ScratchDir>> dirs;
  dirs.push_back(std::make_unique<ScratchDir>());
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenSqliteStorage(dirs.back()->Join("coordinator.db"));
  EXPECT_THAT(storage, IsOk());
  return storage.ok() ? *std::move(storage) : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StorageConformanceTest,
                         ::testing::Values(StorageFactory{"Sqlite", OpenFreshSqlite}),
                         StorageFactoryName);

// Runs one query returning a single text or integer cell on a separate
// connection, as an operator's sqlite3 shell would.
std::string QueryCell(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string cell;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) cell = reinterpret_cast<const char*>(text);
  } else {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return cell;
}

void ExecOrFail(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << sql << ": " << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

class SqliteStorageTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return dir_.Join("coordinator.db"); }
  ScratchDir dir_;
};

TEST_F(SqliteStorageTest, MigratesASchemaOneDatabaseKeepingItsSites) {
  // The sites table as schema version 1 created it.
  ExecOrFail(DbPath(),
             "CREATE TABLE sites (name TEXT PRIMARY KEY, registered_at REAL NOT NULL, "
             "last_seen REAL NOT NULL, train_examples INTEGER NOT NULL, "
             "val_examples INTEGER NOT NULL);"
             "INSERT INTO sites VALUES('hospital-a', 1, 2, 3, 4);"
             "PRAGMA user_version=1;");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA user_version"), "6");
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage->ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].train_examples, 3);
  EXPECT_FALSE(sites[0].revoked());
}

TEST_F(SqliteStorageTest, UsesWalJournalAndVersionedSchema) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA user_version"), "6");
  EXPECT_EQ(QueryCell(DbPath(),
                      "SELECT group_concat(name, ',') FROM "
                      "(SELECT name FROM sqlite_master WHERE type='table' "
                      "AND name NOT LIKE 'sqlite_%' ORDER BY name)"),
            "audit,audit_head,participations,revocations,rounds,runs,sites");
}

TEST_F(SqliteStorageTest, MigratesASchemaThreeDatabaseAddingRevocations) {
  // Make a current database, then take it back to schema 3 as that
  // coordinator left it: no revocations table, one revoked site.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
    SiteRecord site;
    site.name = "hospital-a";
    site.registered_at = 1;
    site.revoked_at = 2;
    site.revoked_by = "alice";
    ASSERT_THAT(storage->UpsertSite(site), IsOk());
  }
  ExecOrFail(DbPath(), "DROP TABLE revocations; PRAGMA user_version=3;");

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA user_version"), "6");
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage->ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_TRUE(sites[0].revoked());
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> none, storage->ListRevocations());
  EXPECT_TRUE(none.empty());
  ASSERT_THAT(storage->AddRevocation(RevocationRow("bob", PartyRole::kAuditor, 3, "alice", "")),
              IsOk());
}

// A current database holding run 1 and its round 0 (model "aa...a"),
// closed again, for a test to turn back to an older schema.
void CommitInitialRound(const std::string& db_path) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(db_path));
  RunRecord run;
  ASSERT_OK_AND_ASSIGN(int64_t id, storage->CreateRun(run));
  RoundCommit commit;
  commit.round.run_id = id;
  commit.round.round = 0;
  commit.round.model_sha256 = std::string(64, 'a');
  ASSERT_THAT(storage->CommitRound(commit), IsOk());
}

TEST_F(SqliteStorageTest, MigratesASchemaFourDatabaseKeepingItsRounds) {
  ASSERT_NO_FATAL_FAILURE(CommitInitialRound(DbPath()));
  ExecOrFail(DbPath(), "ALTER TABLE rounds DROP COLUMN dp_next_clip_norm; PRAGMA user_version=4;");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA user_version"), "6");
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage->ListRounds(1));
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].dp_next_clip_norm, 0);
}

TEST_F(SqliteStorageTest, MigratesASchemaFiveDatabaseAndKeepsTheServerStateWithItsRound) {
  ASSERT_NO_FATAL_FAILURE(CommitInitialRound(DbPath()));
  ExecOrFail(DbPath(),
             "ALTER TABLE rounds DROP COLUMN server_state_sha256; PRAGMA user_version=5;");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_EQ(QueryCell(DbPath(), "PRAGMA user_version"), "6");
  RoundCommit next;
  next.round.run_id = 1;
  next.round.round = 1;
  next.round.model_sha256 = std::string(64, 'b');
  next.round.server_state_sha256 = std::string(64, 'c');
  ASSERT_THAT(storage->CommitRound(next), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage->ListRounds(1));
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[0].server_state_sha256, "");
  EXPECT_EQ(rounds[1].server_state_sha256, std::string(64, 'c'));
  // The state is kept by garbage collection like the models.
  ASSERT_OK_AND_ASSIGN(std::set<std::string> referenced, storage->ReferencedModels());
  EXPECT_EQ(referenced, (std::set<std::string>{std::string(64, 'a'), std::string(64, 'b'),
                                               std::string(64, 'c')}));
  next.round.round = 2;
  next.round.server_state_sha256 = "not-a-hash";
  EXPECT_THAT(storage->CommitRound(next), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("server_state_sha256 of round 2")));
}

TEST_F(SqliteStorageTest, RevocationsSurviveReopenAndStoreTheRoleByName) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
    ASSERT_THAT(storage->AddRevocation(
                    RevocationRow("bob", PartyRole::kAdmin, 1700000000, "alice", "laptop stolen")),
                IsOk());
  }
  EXPECT_EQ(QueryCell(DbPath(), "SELECT role FROM revocations"), "admin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> reopened, OpenSqliteStorage(DbPath()));
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> revocations, reopened->ListRevocations());
  ASSERT_EQ(revocations.size(), 1u);
  EXPECT_EQ(revocations[0].role, PartyRole::kAdmin);
  EXPECT_EQ(revocations[0].revoked_at, 1700000000);
  EXPECT_EQ(revocations[0].reason, "laptop stolen");
}

TEST_F(SqliteStorageTest, AnUnknownRoleInTheRevocationsTableIsDataLoss) {
  { ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath())); }
  ExecOrFail(DbPath(), "INSERT INTO revocations VALUES('bob', 'wizard', 1, 'alice', '')");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  EXPECT_THAT(storage->ListRevocations(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'wizard'")));
}

TEST_F(SqliteStorageTest, StoresSpecAsProtobufBytesWithItsSha256) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  RunRecord run;
  run.spec.set_model("cnn");
  run.spec.set_rounds(5);
  ASSERT_OK_AND_ASSIGN(int64_t id, storage->CreateRun(run));
  const std::string hex_spec =
      QueryCell(DbPath(), "SELECT hex(spec) FROM runs WHERE id=" + std::to_string(id));
  EXPECT_EQ(hex_spec, absl::AsciiStrToUpper(HexEncode(run.spec.SerializeAsString())));
  EXPECT_EQ(QueryCell(DbPath(), "SELECT spec_sha256 FROM runs"),
            HexEncode(Sha256::Digest(run.spec.SerializeAsString())));
}

TEST_F(SqliteStorageTest, StoresStatesAsTheirNames) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  RunRecord run;
  ASSERT_OK_AND_ASSIGN(int64_t id, storage->CreateRun(run));
  EXPECT_EQ(QueryCell(DbPath(), "SELECT state FROM runs"), "pending");
  ASSERT_THAT(storage->SetRunState(id, RunState::kAborted, "stop", 1), IsOk());
  EXPECT_EQ(QueryCell(DbPath(), "SELECT state FROM runs"), "aborted");
}

TEST_F(SqliteStorageTest, UnknownStateStringsAreDataLossNamingThem) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
  ASSERT_OK_AND_ASSIGN(int64_t id, storage->CreateRun(RunRecord()));
  RoundCommit commit;
  commit.round.run_id = id;
  commit.round.model_sha256 = std::string(64, 'a');
  ParticipationRecord site;
  site.run_id = id;
  site.site = "site-a";
  commit.participations.push_back(site);
  ASSERT_THAT(storage->CommitRound(commit), IsOk());

  ExecOrFail(DbPath(), "UPDATE runs SET state='paused'");
  EXPECT_THAT(storage->GetRun(id), StatusIs(absl::StatusCode::kDataLoss,
                                            AllOf(HasSubstr("runs row 1: state"),
                                                  HasSubstr("'paused', not a known state"))));
  ExecOrFail(DbPath(), "UPDATE rounds SET state='half-done'");
  EXPECT_THAT(storage->ListRounds(id),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'half-done', not a known state")));
  ExecOrFail(DbPath(), "UPDATE participations SET state='lost'");
  EXPECT_THAT(storage->ListParticipations(id),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("site 'site-a'"), HasSubstr("'lost', not a known state"))));
}

TEST_F(SqliteStorageTest, EverythingSurvivesCloseAndReopen) {
  const std::string model = HexEncode(Sha256::Digest("model"));
  RunRecord run;
  run.spec.set_model("resnet18");
  run.spec.set_seed(7);
  run.created_at = 12.5;
  v1::Metrics eval;
  eval.set_examples(30);
  eval.set_auc(0.875);
  int64_t id = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath()));
    ASSERT_THAT(storage->UpsertSite(SiteRow("hospital-a", 1, 2, 300, 30)), IsOk());
    ASSERT_OK_AND_ASSIGN(id, storage->CreateRun(run));
    RoundCommit commit;
    commit.round.run_id = id;
    commit.round.round = 0;
    commit.round.model_sha256 = model;
    commit.round.started_at = 3;
    commit.round.finished_at = 4;
    ParticipationRecord participation;
    participation.run_id = id;
    participation.site = "hospital-a";
    participation.examples = 300;
    participation.update_sha256 = model;
    commit.participations.push_back(participation);
    commit.run_state = RunState::kRunning;
    ASSERT_THAT(storage->CommitRound(commit), IsOk());
    participation.eval_metrics = eval;
    ASSERT_THAT(storage->RecordEvaluation(id, 0, eval, {participation}, 5), IsOk());
  }

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> reopened, OpenSqliteStorage(DbPath()));
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, reopened->ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].name, "hospital-a");
  EXPECT_EQ(sites[0].train_examples, 300);

  ASSERT_OK_AND_ASSIGN(RunRecord got, reopened->GetRun(id));
  EXPECT_THAT(got.spec, EqualsProto(run.spec));
  EXPECT_EQ(got.state, RunState::kRunning);
  EXPECT_EQ(got.created_at, 12.5);

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, reopened->ListRounds(id));
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].model_sha256, model);
  EXPECT_EQ(rounds[0].state, RoundState::kEvaluated);
  EXPECT_THAT(rounds[0].eval_metrics, EqualsProto(eval));
  EXPECT_EQ(rounds[0].finished_at, 5);

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, reopened->ListParticipations(id));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, ParticipationState::kEvaluated);
  EXPECT_THAT(rows[0].eval_metrics, EqualsProto(eval));

  ASSERT_OK_AND_ASSIGN(std::set<std::string> models, reopened->ReferencedModels());
  EXPECT_EQ(models, std::set<std::string>{model});

  // Ids continue after the reopen.
  ASSERT_OK_AND_ASSIGN(int64_t next, reopened->CreateRun(run));
  EXPECT_EQ(next, id + 1);
}

TEST_F(SqliteStorageTest, GarbageFileIsAClearError) {
  {
    std::ofstream garbage(DbPath(), std::ios::binary);
    for (int i = 0; i < 512; ++i) garbage << "this is not a database, it is a text file\n";
  }
  EXPECT_THAT(OpenSqliteStorage(DbPath()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(DbPath()), HasSubstr("file is not a database"))));
}

TEST_F(SqliteStorageTest, MissingDirectoryIsAClearError) {
  const std::string path = dir_.Join("no/such/dir/coordinator.db");
  EXPECT_THAT(OpenSqliteStorage(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path), HasSubstr("unable to open"))));
}

TEST_F(SqliteStorageTest, RefusesAForeignSqliteDatabase) {
  ExecOrFail(DbPath(), "CREATE TABLE patients(id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_THAT(OpenSqliteStorage(DbPath()), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                    HasSubstr("no fedmi schema version")));
}

TEST_F(SqliteStorageTest, RefusesANewerSchemaVersion) {
  { ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> storage, OpenSqliteStorage(DbPath())); }
  ExecOrFail(DbPath(), "PRAGMA user_version=99");
  EXPECT_THAT(OpenSqliteStorage(DbPath()), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                    HasSubstr("schema version 99 is newer")));
}

TEST_F(SqliteStorageTest, TwoConnectionsSeeEachOthersCommits) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> writer, OpenSqliteStorage(DbPath()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Storage> reader, OpenSqliteStorage(DbPath()));
  ASSERT_OK_AND_ASSIGN(int64_t id, writer->CreateRun(RunRecord()));
  RoundCommit commit;
  commit.round.run_id = id;
  commit.round.model_sha256 = HexEncode(Sha256::Digest("m"));
  ASSERT_THAT(writer->CommitRound(commit), IsOk());
  EXPECT_THAT(reader->CommitRound(commit),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("round 0 of run 1")));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, reader->ListRounds(id));
  EXPECT_EQ(rounds.size(), 1u);
}

}  // namespace
}  // namespace fedmi
