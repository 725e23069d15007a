// The audit trail a whole run leaves, through Federation without sockets,
// checked with the same verifier `fedmi audit verify` uses.
#include "coordinator/audit_log.h"

#include <sqlite3.h>

#include <map>

#include "common/audit/audit.h"
#include "common/provision/project_ca.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

class AuditedFederationTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(auto signer,
                         audit::AuditSigner::Create(coordinator_.key_pem, coordinator_.cert_pem));
    ASSERT_OK_AND_ASSIGN(audit_, AuditLog::Open(storage_.get(), &clock_, std::move(signer)));
    options_.audit = audit_.get();
    FederationTest::SetUp();
  }

  // Upload as the transport does it, keeping the coordinator's receipt.
  absl::StatusOr<v1::UploadReceipt> UploadWithReceipt(const std::string& site, int64_t run,
                                                      int32_t round, const TensorBundle& bundle,
                                                      int64_t examples) {
    const v1::UpdateMetadata metadata = Metadata(site, run, round, examples);
    RETURN_IF_ERROR(federation_->BeginUpload(SiteCaller(site), metadata).status());
    ASSIGN_OR_RETURN(ReceivedUpdate update, Spool(metadata, bundle));
    return federation_->CompleteUpload(SiteCaller(site), std::move(update));
  }

  std::vector<v1::AuditEntry> Entries() {
    auto entries = audit_->List({});
    EXPECT_THAT(entries, IsOk());
    return entries.ok() ? *entries : std::vector<v1::AuditEntry>();
  }

  std::vector<v1::AuditEntry> OfAction(const std::string& action) {
    std::vector<v1::AuditEntry> out;
    for (const auto& entry : Entries()) {
      if (entry.action() == action) out.push_back(entry);
    }
    return out;
  }

  absl::Status Verify(const std::vector<v1::AuditEntry>& entries) {
    ASSIGN_OR_RETURN(v1::AuditInfo info, audit_->Info());
    return audit::VerifyLog(entries, info.head(), info.signer_certificate_pem(), ca_->ca_cert_pem())
        .status();
  }

  std::unique_ptr<ProjectCa> ca_;
  IssuedParty coordinator_;
  std::unique_ptr<AuditLog> audit_;
};

TEST_F(AuditedFederationTest, WholeRunIsRecordedSignedAndMatchesReceiptsAndModels) {
  Connect("site-a");
  Connect("site-b");
  const int64_t run = StartRun(Spec(/*rounds=*/2, /*min_sites=*/2));
  std::vector<v1::UploadReceipt> receipts;
  ASSERT_OK_AND_ASSIGN(receipts.emplace_back(),
                       UploadWithReceipt("site-a", run, 0, Model({0, 0, 0, 0, 0, 0}), 1));
  for (int round = 1; round <= 2; ++round) {
    ASSERT_OK_AND_ASSIGN(receipts.emplace_back(),
                         UploadWithReceipt("site-a", run, round, Model({1, 1, 1, 1, 1, 1}), 10));
    ASSERT_OK_AND_ASSIGN(receipts.emplace_back(),
                         UploadWithReceipt("site-b", run, round, Model({3, 3, 3, 3, 3, 3}), 30));
    ASSERT_THAT(Report("site-a", run, round, EvalMetrics(20, 0.5, 0.8, 0.9)), IsOk());
    ASSERT_THAT(Report("site-b", run, round, EvalMetrics(20, 0.4, 0.9, 0.95)), IsOk());
  }
  const v1::RunStatus status = Status(run);
  ASSERT_EQ(status.state(), "done");

  // Who started it, with which spec.
  const auto started = OfAction("run.started");
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].actor(), "alice");
  EXPECT_EQ(started[0].run_id(), run);
  const nlohmann::json spec = nlohmann::json::parse(started[0].detail_json());
  EXPECT_EQ(spec["spec_sha256"], HexEncode(status.spec_sha256()));
  EXPECT_EQ(spec["secure_aggregation"], false);

  // One update.received per site per round, matching its receipt.
  const auto received = OfAction("update.received");
  ASSERT_EQ(received.size(), 5u);
  for (size_t i = 0; i < receipts.size(); ++i) {
    EXPECT_EQ(receipts[i].audit_seq(), received[i].seq());
    EXPECT_FALSE(receipts[i].signature().empty());
    const nlohmann::json detail = nlohmann::json::parse(received[i].detail_json());
    EXPECT_EQ(detail["site"], receipts[i].site());
    EXPECT_EQ(detail["sha256"], HexEncode(receipts[i].sha256()));
    EXPECT_EQ(received[i].actor(), receipts[i].site()) << "the site that sent it";
  }

  // Aggregation entries name the stored models.
  const auto aggregated = OfAction("round.aggregated");
  ASSERT_EQ(aggregated.size(), 3u) << "round 0 (initial model), 1 and 2";
  for (int round = 1; round <= 2; ++round) {
    EXPECT_EQ(aggregated[round].round(), round);
    EXPECT_EQ(nlohmann::json::parse(aggregated[round].detail_json())["model_sha256"],
              HexEncode(status.rounds(round - 1).model_sha256()));
  }
  EXPECT_EQ(OfAction("round.opened").size(), 2u);
  EXPECT_EQ(OfAction("round.evaluated").size(), 2u);
  ASSERT_EQ(OfAction("run.finished").size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(OfAction("run.finished")[0].detail_json())["state"], "done");
  EXPECT_EQ(OfAction("coordinator.started").size(), 1u);
  EXPECT_EQ(OfAction("site.registered").size(), 2u);

  const std::vector<v1::AuditEntry> entries = Entries();
  EXPECT_THAT(Verify(entries), IsOk());
  EXPECT_THAT(audit::VerifyReceipts(receipts, entries, coordinator_.cert_pem), IsOk());

  // Every task and receipt carried the log's signed head, and a site that
  // kept them finds each one in the log.
  std::vector<audit::HeldHead> heads;
  auto hold = [&](const v1::SignedAuditHead& head, const char* via) {
    EXPECT_EQ(head.signer_certificate_pem(), coordinator_.cert_pem) << via;
    heads.push_back(audit::HeldHead{head.head(), "", via});
  };
  for (const auto& message : Channel("site-a").Of(Kind::kTrain)) {
    hold(message.train().audit_head(), "train task");
  }
  for (const auto& message : Channel("site-a").Of(Kind::kEval)) {
    hold(message.eval().audit_head(), "eval task");
  }
  for (const auto& receipt : receipts) {
    EXPECT_GE(receipt.audit_head().head().seq(), receipt.audit_seq());
    hold(receipt.audit_head(), "receipt");
  }
  ASSERT_EQ(heads.size(), 2u + 2u + 5u);
  const audit::HeadsReport held = audit::CheckHeldHeads(heads, entries, coordinator_.cert_pem);
  EXPECT_THAT(held.problems, ::testing::IsEmpty());
  EXPECT_GT(held.newest_seq, receipts.back().audit_seq());

  // A coordinator that drops one hospital's record is caught by its receipt.
  std::vector<v1::AuditEntry> without = entries;
  without.erase(std::remove_if(without.begin(), without.end(),
                               [&](const v1::AuditEntry& entry) {
                                 return entry.seq() == receipts[3].audit_seq();
                               }),
                without.end());
  EXPECT_THAT(audit::VerifyReceipts(receipts, without, coordinator_.cert_pem),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("missing from the log")));
}

// An auditor can tell whose update a robust strategy set aside: Multi-Krum
// names the sites it left out, norm-bounded FedAvg every site's change norm
// and those it scaled down.
TEST_F(AuditedFederationTest, RoundEntriesNameTheSitesAStrategySetAside) {
  for (const char* site : {"site-a", "site-b", "site-c"}) Connect(site);
  auto aggregated_detail = [&](const v1::RunSpec& spec, const std::vector<float>& far) {
    const int64_t run = StartRun(spec);
    EXPECT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0}), 1), IsOk());
    EXPECT_THAT(Upload("site-a", run, 1, Model({1, 0, 0, 0, 0, 0}), 10), IsOk());
    EXPECT_THAT(Upload("site-b", run, 1, Model({0, 1, 0, 0, 0, 0}), 10), IsOk());
    EXPECT_THAT(Upload("site-c", run, 1, Model(far), 10), IsOk());
    const auto aggregated = OfAction("round.aggregated");
    EXPECT_FALSE(aggregated.empty());
    return aggregated.empty() ? nlohmann::json()
                              : nlohmann::json::parse(aggregated.back().detail_json());
  };
  v1::RunSpec multikrum = Spec(/*rounds=*/1, /*min_sites=*/3);
  multikrum.set_strategy("multikrum");
  multikrum.mutable_robust()->set_byzantine_sites(0);
  multikrum.mutable_robust()->set_multikrum_selected(2);
  const nlohmann::json krum = aggregated_detail(multikrum, {30, 40, 0, 0, 0, 0});
  EXPECT_EQ(krum["left_out"], nlohmann::json({"site-c"}));
  EXPECT_FALSE(krum.contains("change_norms"));

  v1::RunSpec bounded = Spec(/*rounds=*/1, /*min_sites=*/3);
  bounded.set_strategy("norm_bounded");
  bounded.mutable_robust()->set_norm_bound(2);
  const nlohmann::json norms = aggregated_detail(bounded, {3, 4, 0, 0, 0, 0});
  EXPECT_EQ(norms["norm_bound"], 2.0);
  EXPECT_EQ(norms["change_norms"],
            nlohmann::json({{"site-a", 1.0}, {"site-b", 1.0}, {"site-c", 5.0}}));
  EXPECT_EQ(norms["scaled_down"], nlohmann::json({"site-c"}));
  EXPECT_FALSE(norms.contains("left_out"));
}

TEST_F(AuditedFederationTest, RefusalsAndDenialsAreRecordedWithTheActor) {
  // A site may not start runs; an admin cannot act as a site.
  EXPECT_FALSE(federation_->StartRun(SiteCaller("site-a"), Spec(1, 1)).ok());
  Caller admin = Admin();
  v1::Hello hello;
  hello.set_site("alice");
  EXPECT_FALSE(federation_->SiteConnected(admin, hello, std::make_shared<RecordingChannel>()).ok());
  const auto denied = OfAction("auth.denied");
  ASSERT_GE(denied.size(), 2u);
  EXPECT_EQ(denied[0].actor(), "site-a");
  EXPECT_THAT(denied[0].detail_json(), HasSubstr("StartRun"));
  EXPECT_EQ(OfAction("site.refused").size(), 1u);
  EXPECT_THAT(Verify(Entries()), IsOk());
}

TEST_F(AuditedFederationTest, SiteRefusalsAndRevocationsAreRecorded) {
  Connect("site-a");
  Connect("site-b");
  const int64_t run = StartRun(Spec(1, 2));
  ASSERT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  v1::SiteMessage refusal;
  refusal.mutable_refusal()->set_run_id(run);
  refusal.mutable_refusal()->set_round(1);
  refusal.mutable_refusal()->set_reason("site policy: model 'cnn' is not in allowed_models []");
  ASSERT_THAT(federation_->OnSiteMessage(SiteCaller("site-b"), refusal), IsOk());
  ASSERT_THAT(federation_->RevokeSite(Admin(), "site-b", "laptop stolen"), IsOk());
  const auto refused = OfAction("site.refused_task");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0].detail_json(), HasSubstr("allowed_models"));
  const auto revoked = OfAction("site.revoked");
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(revoked[0].actor(), "alice");
  EXPECT_THAT(revoked[0].detail_json(), HasSubstr("laptop stolen"));
}

TEST(AuditLogReopenTest, EntriesRemovedFromTheEndAreRecordedWhenTheCoordinatorRestarts) {
  ScratchDir dir;
  ASSERT_OK_AND_ASSIGN(auto ca, ProjectCa::Create(dir.Join("pki"), "t"));
  ASSERT_OK_AND_ASSIGN(IssuedParty coordinator,
                       ca->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
  const std::string db = dir.Join("coordinator.db");
  FakeClock clock;
  {
    ASSERT_OK_AND_ASSIGN(auto storage, OpenSqliteStorage(db));
    ASSERT_OK_AND_ASSIGN(auto signer,
                         audit::AuditSigner::Create(coordinator.key_pem, coordinator.cert_pem));
    ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(storage.get(), &clock, std::move(signer)));
    for (int i = 0; i < 5; ++i) {
      ASSERT_THAT(log->Append("admin-1", audit::Action::kRunStarted, i + 1, -1, {{"n", i}}),
                  IsOk());
    }
  }
  // Someone with the database file deletes the last two entries.
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(handle, "DELETE FROM audit WHERE seq > 3", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(handle);

  ASSERT_OK_AND_ASSIGN(auto storage, OpenSqliteStorage(db));
  ASSERT_OK_AND_ASSIGN(auto signer,
                       audit::AuditSigner::Create(coordinator.key_pem, coordinator.cert_pem));
  ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Open(storage.get(), &clock, std::move(signer)));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, log->List({}));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries.back().action(), "audit.tail_missing");
  EXPECT_THAT(entries.back().detail_json(), HasSubstr("\"head_seq\":5"));
  ASSERT_OK_AND_ASSIGN(v1::AuditInfo info, log->Info());
  EXPECT_THAT(
      audit::VerifyLog(entries, info.head(), info.signer_certificate_pem(), ca->ca_cert_pem()),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 4")));
}

}  // namespace
}  // namespace fedmi
