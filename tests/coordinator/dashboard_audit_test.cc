// The dashboard's audit page: the filter from the query string, the
// verification `fedmi audit verify` does, on a real signed log, and
// escaping of details that came from parties.
#include "coordinator/dashboard_audit.h"

#include "common/audit/audit.h"
#include "common/base/clock.h"
#include "common/provision/project_ca.h"
#include "coordinator/audit_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNow = 1796585400;

v1::AuditEntry Entry(int64_t seq, const std::string& actor, const std::string& action,
                     int64_t run) {
  v1::AuditEntry entry;
  entry.set_seq(seq);
  entry.set_actor(actor);
  entry.set_action(action);
  entry.set_run_id(run);
  entry.set_round(-1);
  entry.set_detail_json("{}");
  return entry;
}

TEST(AuditFilterTest, ParsesTheQueryAndMatchesKindActorAndRun) {
  const AuditFilter filter = ParseAuditFilter({{"kind", "run"}, {"actor", "ALI"}, {"run", "2"}});
  EXPECT_EQ(filter.kind, "run");
  EXPECT_EQ(filter.actor, "ALI");
  EXPECT_EQ(filter.run_id, 2);
  EXPECT_TRUE(filter.error.empty());
  EXPECT_TRUE(Matches(filter, Entry(1, "alice", "run.started", 2)));
  EXPECT_FALSE(Matches(filter, Entry(2, "alice", "run.started", 3))) << "another run";
  EXPECT_FALSE(Matches(filter, Entry(3, "bob", "run.started", 2))) << "another actor";
  EXPECT_FALSE(Matches(filter, Entry(4, "alice", "round.opened", 2))) << "another kind";
  EXPECT_FALSE(Matches(filter, Entry(5, "alice", "runner.x", 2))) << "a kind is a dotted part";

  EXPECT_TRUE(
      Matches(ParseAuditFilter({{"kind", "run.started"}}), Entry(1, "a", "run.started", 0)));
  EXPECT_TRUE(Matches(ParseAuditFilter({}), Entry(1, "a", "anything", 9)));

  const AuditFilter bad = ParseAuditFilter({{"run", "x1"}});
  EXPECT_EQ(bad.run_id, 0);
  EXPECT_THAT(bad.error, HasSubstr("'x1' is not a run id"));
}

TEST(AuditPageTest, ListsMatchingEntriesNewestFirstAndEscapesDetails) {
  std::vector<v1::AuditEntry> entries = {Entry(1, "coordinator", "coordinator.started", 0),
                                         Entry(2, "alice", "run.started", 1),
                                         Entry(3, "<b>mallory</b>", "auth.denied", 0)};
  entries[2].set_detail_json(R"({"reason":"<script>alert(1)</script>"})");
  AuditVerification intact;
  intact.outcome = AuditVerification::Outcome::kIntact;
  intact.entries = 3;
  intact.signer = "coordinator-audit";
  const std::string page = AuditPage(entries, AuditFilter{}, intact, kNow);
  EXPECT_THAT(page, HasSubstr("data-intact=\"1\""));
  EXPECT_THAT(page, HasSubstr("3 entries, hash chain and signatures intact"));
  EXPECT_THAT(page, HasSubstr("3 of 3 entries match"));
  EXPECT_LT(page.find("data-seq=\"3\""), page.find("data-seq=\"1\""));
  EXPECT_THAT(page, Not(HasSubstr("<script>alert")));
  EXPECT_THAT(page, Not(HasSubstr("<b>mallory")));
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(page, HasSubstr("&lt;b&gt;mallory&lt;/b&gt;"));
  EXPECT_THAT(page, HasSubstr("<a href=\"/runs/1\">1</a>"));
  EXPECT_THAT(page, HasSubstr("<main data-live=\"0\">"));

  AuditFilter runs;
  runs.kind = "run";
  const std::string filtered = AuditPage(entries, runs, intact, kNow);
  EXPECT_THAT(filtered, HasSubstr("1 of 3 entries match"));
  EXPECT_THAT(filtered, Not(HasSubstr("data-seq=\"3\"")));
  EXPECT_THAT(filtered, HasSubstr("<option value=\"run\" selected>run.*</option>"));

  AuditVerification broken;
  broken.message = "entry 2: bad signature";
  EXPECT_THAT(AuditPage(entries, AuditFilter{}, broken, kNow),
              HasSubstr("verification FAILED: entry 2: bad signature"));
}

class AuditVerificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    ASSERT_OK_AND_ASSIGN(IssuedParty signer_kit,
                         ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(auto signer,
                         audit::AuditSigner::Create(signer_kit.key_pem, signer_kit.cert_pem));
    ASSERT_OK_AND_ASSIGN(log_, AuditLog::Open(storage_.get(), &clock_, std::move(signer)));
    for (int i = 0; i < 3; ++i) {
      ASSERT_THAT(log_->Append("alice", audit::Action::kRunStarted, i + 1, -1, {{"n", i}}), IsOk());
    }
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  FakeClock clock_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditVerificationTest, AnIntactLogVerifiesAndATamperedOneDoesNot) {
  ASSERT_OK_AND_ASSIGN(v1::AuditInfo info, log_->Info());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, log_->List({}));
  const AuditVerification ok =
      VerifyAudit(entries, info.head(), info.signer_certificate_pem(), ca_->ca_cert_pem(), true);
  EXPECT_EQ(ok.outcome, AuditVerification::Outcome::kIntact) << ok.message;
  EXPECT_EQ(ok.entries, 3);
  EXPECT_EQ(ok.signer, "coordinator-audit");

  // An entry appended after the head was read is left out, not a failure.
  ASSERT_THAT(log_->Append("bob", audit::Action::kRunAborted, 1, -1, {}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> grown, log_->List({}));
  EXPECT_EQ(VerifyAudit(grown, info.head(), info.signer_certificate_pem(), ca_->ca_cert_pem(), true)
                .outcome,
            AuditVerification::Outcome::kIntact);

  std::vector<v1::AuditEntry> tampered = entries;
  tampered[1].set_actor("mallory");
  const AuditVerification broken =
      VerifyAudit(tampered, info.head(), info.signer_certificate_pem(), ca_->ca_cert_pem(), true);
  EXPECT_EQ(broken.outcome, AuditVerification::Outcome::kBroken);
  EXPECT_THAT(broken.message, HasSubstr("entry 2"));

  ASSERT_OK_AND_ASSIGN(auto other, ProjectCa::Create(dir_.Join("other"), "t"));
  EXPECT_EQ(
      VerifyAudit(entries, info.head(), info.signer_certificate_pem(), other->ca_cert_pem(), true)
          .outcome,
      AuditVerification::Outcome::kBroken)
      << "a signer of another CA";
  EXPECT_EQ(VerifyAudit(entries, info.head(), "", "", false).outcome,
            AuditVerification::Outcome::kUnsigned);
}

// The page reuses a verification while the log is unchanged; an entry
// rewritten under the same head (a database edited behind the
// coordinator's back) is a changed log, not a cached "verified".
TEST_F(AuditVerificationTest, TheCacheVerifiesAgainWhenAnEntryChangesUnderTheSameHead) {
  ASSERT_OK_AND_ASSIGN(v1::AuditInfo info, log_->Info());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, log_->List({}));
  AuditVerificationCache cache;
  const auto verify = [&](const std::vector<v1::AuditEntry>& list) {
    return cache.Verify(list, info.head(), info.signer_certificate_pem(), ca_->ca_cert_pem(), true);
  };
  EXPECT_EQ(verify(entries).outcome, AuditVerification::Outcome::kIntact);
  EXPECT_EQ(verify(entries).outcome, AuditVerification::Outcome::kIntact);
  std::vector<v1::AuditEntry> tampered = entries;
  tampered[1].set_actor("mallory");
  const AuditVerification broken = verify(tampered);
  EXPECT_EQ(broken.outcome, AuditVerification::Outcome::kBroken);
  EXPECT_THAT(broken.message, HasSubstr("entry 2"));
  EXPECT_EQ(verify(entries).outcome, AuditVerification::Outcome::kIntact);
}

}  // namespace
}  // namespace fedmi::dashboard
