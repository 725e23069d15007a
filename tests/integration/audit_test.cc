// The audit log end to end: a `fedmi sim` run leaves a log that `fedmi audit
// verify` accepts, with one update.received entry per site per round and
// aggregation entries naming the stored models; then the test tampers with
// the coordinator's SQLite file and with an exported file, and `verify`
// names the entry each time, and the heads a site kept name the entries
// dropped after them.
#include "common/audit/audit.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/crypto/sha256.h"
#include "common/tensor/tensor_codec.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

void Sql(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(handle);
}

// Every entry in a coordinator database, read directly.
std::vector<v1::AuditEntry> DbEntries(const std::string& db) {
  std::vector<v1::AuditEntry> entries;
  sqlite3* handle = nullptr;
  EXPECT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  sqlite3_stmt* select = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(handle,
                               "SELECT seq, time, actor, action, run_id, round, detail, "
                               "prev_hash, hash, signature FROM audit ORDER BY seq",
                               -1, &select, nullptr),
            SQLITE_OK);
  auto text = [&](int column) {
    const unsigned char* value = sqlite3_column_text(select, column);
    return value == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(value));
  };
  while (sqlite3_step(select) == SQLITE_ROW) {
    v1::AuditEntry entry;
    entry.set_seq(sqlite3_column_int64(select, 0));
    entry.set_time(text(1));
    entry.set_actor(text(2));
    entry.set_action(text(3));
    entry.set_run_id(sqlite3_column_int64(select, 4));
    entry.set_round(static_cast<int32_t>(sqlite3_column_int64(select, 5)));
    entry.set_detail_json(text(6));
    entry.set_prev_hash(text(7));
    entry.set_hash(text(8));
    entry.set_signature(std::string(static_cast<const char*>(sqlite3_column_blob(select, 9)),
                                    sqlite3_column_bytes(select, 9)));
    entries.push_back(entry);
  }
  sqlite3_finalize(select);
  sqlite3_close(handle);
  return entries;
}

// One shared sim run for every test here: it is the slow part.
class AuditTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    work_ = scratch_->path() + "/sim";
    const std::string data = DataPath(scratch_->path());
    CommandOutput out =
        RunCommand(absl::StrCat(Binary("fedmi"), " sim --sites 3 --rounds 2 --seed 2 --data ", data,
                                " --work-dir ", work_, " --json"));
    ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
    summary_ = new nlohmann::json(nlohmann::json::parse(LastLine(out.stdout_text)));
  }
  static void TearDownTestSuite() {
    delete summary_;
    delete scratch_;
  }

  static std::string Kit(const std::string& party, const std::string& file) {
    return absl::StrCat(work_, "/pki/kits/", party, "/", file);
  }
  static std::string Db() { return work_ + "/coordinator/state.db"; }
  static std::string Export() { return work_ + "/audit.jsonl"; }

  // `fedmi audit verify` with the sim administrator's CA; stdout and stderr.
  static CommandOutput Verify(const std::string& args) {
    return RunCommand(absl::StrCat(Binary("fedmi"), " --ca ", Kit("sim-admin", "ca.pem"),
                                   " audit verify ", args, " 2>&1"));
  }

  // Runs a coordinator on a copy of the sim's database, tampered with by
  // `tamper`, and verifies its log live.
  CommandOutput VerifyTamperedDatabase(const std::function<void(const std::string&)>& tamper) {
    ScratchDir dir;
    const std::string db = dir.path() + "/state/coordinator.db";
    std::filesystem::create_directories(dir.path() + "/state");
    std::filesystem::copy_file(Db(), db);
    tamper(db);
    cli::CoordinatorOptions options;
    options.port_file = dir.path() + "/port";
    options.db_path = db;
    options.log_path = dir.path() + "/coordinator.log";
    auto coordinator =
        cli::LocalCoordinator::Start(cli::LocalProject::Open(work_ + "/pki", "sim-admin"), options);
    EXPECT_THAT(coordinator, IsOk());
    const std::string address = coordinator.ok() ? (*coordinator)->address() : "";
    return RunCommand(absl::StrCat(Binary("fedmi"), " --coordinator ", address, " --cert ",
                                   Kit("sim-admin", "cert.pem"), " --key ",
                                   Kit("sim-admin", "key.pem"), " --ca ",
                                   Kit("sim-admin", "ca.pem"), " audit verify 2>&1"));
  }

  // Writes `log` as an export after `tamper` changed it and verifies it offline.
  CommandOutput VerifyTamperedExport(const std::function<void(audit::ExportedLog*)>& tamper,
                                     const std::string& extra = "") {
    auto log = audit::ReadExport(Export());
    EXPECT_THAT(log, IsOk());
    tamper(&*log);
    ScratchDir dir;
    const std::string path = dir.path() + "/tampered.jsonl";
    EXPECT_THAT(audit::WriteExport(path, *log), IsOk());
    return Verify(absl::StrCat("--file ", path, " ", extra));
  }

  // An audit-signer certificate and key from another project, as an attacker
  // without the project CA's key would have.
  static std::unique_ptr<audit::AuditSigner> ForeignSigner() {
    static const IssuedParty* foreign = [] {
      auto* dir = new ScratchDir();
      auto ca = ProjectCa::Create(dir->path() + "/pki", "elsewhere");
      EXPECT_THAT(ca, IsOk());
      auto party = (*ca)->Issue("coordinator-audit", PartyRole::kAuditSigner, {});
      EXPECT_THAT(party, IsOk());
      return new IssuedParty(*party);
    }();
    auto signer = audit::AuditSigner::Create(foreign->key_pem, foreign->cert_pem);
    EXPECT_THAT(signer, IsOk());
    return *std::move(signer);
  }

  static std::vector<v1::AuditEntry> Entries() {
    auto log = audit::ReadExport(Export());
    EXPECT_THAT(log, IsOk());
    return log.ok() ? log->entries : std::vector<v1::AuditEntry>();
  }

  static ScratchDir* scratch_;
  static std::string work_;
  static nlohmann::json* summary_;
};

ScratchDir* AuditTest::scratch_ = nullptr;
std::string AuditTest::work_;
nlohmann::json* AuditTest::summary_ = nullptr;

TEST_F(AuditTest, SimRunLeavesALogThatVerifiesWithEveryUpdateAndModel) {
  ASSERT_TRUE((*summary_)["audit"]["intact"].get<bool>());
  std::string receipts_args;
  for (int k = 1; k <= 3; ++k) {
    CommandOutput out = Verify(absl::StrCat("--file ", Export(), " --receipts ",
                                            Kit(absl::StrCat("site-", k), "receipts")));
    EXPECT_EQ(out.exit_code, 0) << out.stdout_text;
    EXPECT_THAT(out.stdout_text, HasSubstr("audit log intact"));
    // Each site kept the signed heads its tasks and receipts carried.
    EXPECT_THAT(out.stdout_text, HasSubstr("signed heads the site holds are prefixes of it"));
    EXPECT_THAT(out.stdout_text, Not(HasSubstr("; 0 signed heads")));
  }

  std::map<std::pair<std::string, int>, int> received;  // (site, round) -> entries
  std::map<int, std::string> aggregated;                // round -> model SHA-256
  for (const auto& entry : Entries()) {
    const nlohmann::json detail = nlohmann::json::parse(entry.detail_json());
    if (entry.action() == "update.received") ++received[{detail["site"], entry.round()}];
    if (entry.action() == "round.aggregated") aggregated[entry.round()] = detail["model_sha256"];
  }
  for (int round = 1; round <= 2; ++round) {
    for (int k = 1; k <= 3; ++k) {
      EXPECT_EQ((received[{absl::StrCat("site-", k), round}]), 1)
          << "site-" << k << " round " << round;
    }
  }
  // Each aggregation names a model the coordinator stored under exactly
  // that hash of its tensors.
  ASSERT_EQ(aggregated.size(), 3u) << "rounds 0 (initial), 1 and 2";
  for (const auto& [round, sha] : aggregated) {
    auto model = ReadBundleFile(work_ + "/coordinator/models/" + sha);
    ASSERT_THAT(model, IsOk()) << "round " << round;
    EXPECT_EQ(HexEncode(Sha256::Digest(absl::string_view(model->body.data(), model->body.size()))),
              sha);
  }
}

TEST_F(AuditTest, TamperedDatabaseIsCaughtNamingTheEntry) {
  // The database goes on past the export: the sites' and the coordinator's
  // shutdown were recorded after it.
  const std::vector<v1::AuditEntry> entries = DbEntries(Db());
  ASSERT_GT(entries.size(), 12u);
  const int64_t last = entries.back().seq();

  CommandOutput changed = VerifyTamperedDatabase(
      [](const std::string& db) { Sql(db, "UPDATE audit SET actor='mallory' WHERE seq=5"); });
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_THAT(changed.stdout_text, HasSubstr("entry 5: bad hash"));

  CommandOutput deleted = VerifyTamperedDatabase(
      [](const std::string& db) { Sql(db, "DELETE FROM audit WHERE seq=8"); });
  EXPECT_EQ(deleted.exit_code, 1);
  EXPECT_THAT(deleted.stdout_text, HasSubstr("entry 8 is missing"));

  CommandOutput truncated = VerifyTamperedDatabase([&](const std::string& db) {
    Sql(db, absl::StrCat("DELETE FROM audit WHERE seq > ", last - 2));
  });
  EXPECT_EQ(truncated.exit_code, 1);
  EXPECT_THAT(truncated.stdout_text,
              HasSubstr(absl::StrCat("entry ", last - 1, ": records that entries were missing")));

  CommandOutput swapped = VerifyTamperedDatabase([](const std::string& db) {
    // Rows 6 and 7 trade places (contents move, sequence numbers stay).
    Sql(db,
        "UPDATE audit SET seq = -6 WHERE seq = 6; UPDATE audit SET seq = 6 WHERE seq = 7; "
        "UPDATE audit SET seq = 7 WHERE seq = -6;");
  });
  EXPECT_EQ(swapped.exit_code, 1);
  EXPECT_THAT(swapped.stdout_text, HasSubstr("entry 6"));

  // A forged entry, properly chained after the last one but signed with a
  // key the project CA never issued.
  CommandOutput forged = VerifyTamperedDatabase([&](const std::string& db) {
    v1::AuditEntry draft;
    draft.set_time(entries.back().time());
    draft.set_actor("site-1");
    draft.set_action("update.received");
    draft.set_run_id(1);
    draft.set_round(2);
    draft.set_detail_json("{}");
    auto sealed = ForeignSigner()->Seal(draft, &entries.back());
    ASSERT_THAT(sealed, IsOk());
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
    sqlite3_stmt* insert = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(handle, "INSERT INTO audit VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                                 -1, &insert, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(insert, 1, sealed->seq());
    int column = 2;
    for (const std::string* text : {&sealed->time(), &sealed->actor(), &sealed->action()}) {
      sqlite3_bind_text(insert, column++, text->c_str(), -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(insert, 5, sealed->run_id());
    sqlite3_bind_int64(insert, 6, sealed->round());
    sqlite3_bind_text(insert, 7, sealed->detail_json().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 8, sealed->prev_hash().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 9, sealed->hash().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 10, sealed->signature().data(),
                      static_cast<int>(sealed->signature().size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_finalize(insert);
    sqlite3_close(handle);
  });
  EXPECT_EQ(forged.exit_code, 1);
  EXPECT_THAT(forged.stdout_text, HasSubstr(absl::StrCat("entry ", last + 1, ": bad signature")));

  // Entry 5 rewritten and re-signed with a key the project CA never issued.
  CommandOutput resigned = VerifyTamperedDatabase([&](const std::string& db) {
    v1::AuditEntry draft = entries[4];
    draft.set_detail_json("{\"rewritten\":true}");
    auto sealed = ForeignSigner()->Seal(draft, &entries[3]);
    ASSERT_THAT(sealed, IsOk());
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
    sqlite3_stmt* update = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(handle, "UPDATE audit SET detail=?1, hash=?2, signature=?3 WHERE seq=5",
                           -1, &update, nullptr),
        SQLITE_OK);
    sqlite3_bind_text(update, 1, sealed->detail_json().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(update, 2, sealed->hash().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(update, 3, sealed->signature().data(),
                      static_cast<int>(sealed->signature().size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(update), SQLITE_DONE);
    sqlite3_finalize(update);
    sqlite3_close(handle);
  });
  EXPECT_EQ(resigned.exit_code, 1);
  EXPECT_THAT(resigned.stdout_text, HasSubstr("entry 5: bad signature"));

  // The untouched copy still verifies: the failures above are the tampering.
  CommandOutput pristine = VerifyTamperedDatabase([](const std::string&) {});
  EXPECT_EQ(pristine.exit_code, 0) << pristine.stdout_text;
}

TEST_F(AuditTest, TamperedExportIsCaughtNamingTheEntry) {
  struct Case {
    const char* what;
    std::function<void(audit::ExportedLog*)> tamper;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"field changed", [](audit::ExportedLog* log) { log->entries[4].set_round(7); },
       "entry 5: bad hash"},
      {"middle entry deleted",
       [](audit::ExportedLog* log) { log->entries.erase(log->entries.begin() + 7); },
       "entry 8 is missing"},
      {"last entries deleted",
       [](audit::ExportedLog* log) { log->entries.resize(log->entries.size() - 2); },
       "entries after"},
      {"forged entry inserted",
       [](audit::ExportedLog* log) {
         auto forged = ForeignSigner()->Seal(log->entries[9], &log->entries[9]);
         ASSERT_THAT(forged, IsOk());
         log->entries.insert(log->entries.begin() + 10, *forged);
       },
       "entry 11"},
      {"two entries reordered",
       [](audit::ExportedLog* log) { std::swap(log->entries[5], log->entries[6]); },
       "entry 6 out of order"},
      {"re-signed by a key the project CA did not issue",
       [](audit::ExportedLog* log) {
         auto signer = ForeignSigner();
         std::vector<v1::AuditEntry> resealed;
         for (const auto& entry : log->entries) {
           auto sealed = signer->Seal(entry, resealed.empty() ? nullptr : &resealed.back());
           ASSERT_THAT(sealed, IsOk());
           resealed.push_back(*sealed);
         }
         log->entries = resealed;
         auto head = signer->SignHead(resealed.back());
         ASSERT_THAT(head, IsOk());
         log->head = *head;
         log->signer_certificate_pem = signer->certificate_pem();
       },
       "not issued by the project CA"},
  };
  for (const Case& c : cases) {
    CommandOutput out = VerifyTamperedExport(c.tamper);
    EXPECT_EQ(out.exit_code, 1) << c.what;
    EXPECT_THAT(out.stdout_text, HasSubstr(c.message)) << c.what;
  }
}

TEST_F(AuditTest, ReceiptWhoseEntryWasRemovedIsReportedMissing) {
  // Whoever holds the audit-signing key can rewrite the whole log without
  // one hospital's update, and the chain then verifies; the site's receipt
  // is what gives it away.
  auto key = ReadFileToString(Kit("coordinator", "audit-key.pem"));
  auto cert = ReadFileToString(Kit("coordinator", "audit-cert.pem"));
  ASSERT_THAT(key, IsOk());
  ASSERT_THAT(cert, IsOk());
  ASSERT_OK_AND_ASSIGN(auto signer, audit::AuditSigner::Create(*key, *cert));
  CommandOutput out = VerifyTamperedExport(
      [&](audit::ExportedLog* log) {
        std::vector<v1::AuditEntry> resealed;
        bool removed = false;
        for (const auto& entry : log->entries) {
          if (!removed && entry.action() == "update.received" && entry.actor() == "site-2") {
            removed = true;
            continue;
          }
          v1::AuditEntry draft = entry;
          auto sealed = signer->Seal(draft, resealed.empty() ? nullptr : &resealed.back());
          ASSERT_THAT(sealed, IsOk());
          resealed.push_back(*sealed);
        }
        ASSERT_TRUE(removed);
        log->entries = resealed;
        auto head = signer->SignHead(resealed.back());
        ASSERT_THAT(head, IsOk());
        log->head = *head;
      },
      absl::StrCat("--receipts ", Kit("site-2", "receipts")));
  EXPECT_EQ(out.exit_code, 1) << out.stdout_text;
  EXPECT_THAT(out.stdout_text, HasSubstr("receipt of site 'site-2'"));
  EXPECT_THAT(out.stdout_text, HasSubstr("missing from the log"));
}

TEST_F(AuditTest, TailDroppedAfterASitesHeadIsNamed) {
  // Whoever holds the audit key drops the end of the log and re-signs its
  // head: the log verifies alone, but the heads site-1 kept name what is gone.
  ASSERT_OK_AND_ASSIGN(std::vector<audit::HeldHead> heads,
                       audit::ReadHeldHeadsDir(audit::HeldHeadsDir(Kit("site-1", "receipts"))));
  ASSERT_FALSE(heads.empty());
  int64_t newest = 0;
  for (const audit::HeldHead& held : heads) newest = std::max(newest, held.head.seq());
  ASSERT_GT(newest, 3);
  ASSERT_OK_AND_ASSIGN(std::string key, ReadFileToString(Kit("coordinator", "audit-key.pem")));
  ASSERT_OK_AND_ASSIGN(std::string cert, ReadFileToString(Kit("coordinator", "audit-cert.pem")));
  ASSERT_OK_AND_ASSIGN(auto signer, audit::AuditSigner::Create(key, cert));
  CommandOutput out = VerifyTamperedExport(
      [&](audit::ExportedLog* log) {
        log->entries.resize(newest - 2);  // entries 1.. in order
        auto head = signer->SignHead(log->entries.back());
        ASSERT_THAT(head, IsOk());
        log->head = *head;
      },
      absl::StrCat("--receipts ", Kit("site-1", "receipts")));
  EXPECT_EQ(out.exit_code, 1) << out.stdout_text;
  EXPECT_THAT(out.stdout_text, HasSubstr(absl::StrCat("): entries ", newest - 1, "..", newest,
                                                      " are missing from the log, which ends at "
                                                      "entry ",
                                                      newest - 2)));
}

}  // namespace
}  // namespace fedmi
