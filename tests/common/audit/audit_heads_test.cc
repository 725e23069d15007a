// The heads sites keep, and the attacker the separate audit key is for: the
// coordinator's operator, who holds the TLS key and the database.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/audit/audit.h"
#include "common/crypto/sha256.h"
#include "common/provision/project_ca.h"
#include "tests/test_util.h"

namespace fedmi::audit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

// One run of two rounds, as the coordinator records it; site-1 took part in
// round 1 (entry 5 is its update), site-2 in round 2.
struct Event {
  const char* actor;
  const char* action;
  int round;
};
constexpr Event kHistory[] = {
    {"coordinator", "coordinator.started", -1},  // 1
    {"site-1", "site.connected", -1},            // 2
    {"admin", "run.started", -1},                // 3
    {"coordinator", "round.opened", 1},          // 4: site-1 gets its train task
    {"site-1", "update.received", 1},            // 5: and its receipt
    {"coordinator", "round.aggregated", 1},      // 6: its eval task
    {"coordinator", "round.evaluated", 1},       // 7
    {"coordinator", "round.opened", 2},          // 8: train task of round 2
    {"site-2", "update.received", 2},            // 9
    {"coordinator", "round.aggregated", 2},      // 10: eval task of round 2
    {"coordinator", "round.evaluated", 2},       // 11
    {"coordinator", "run.finished", -1},         // 12
};
constexpr int64_t kEvaluatedRound1 = 7;

// The SHA-256 every site's update has here.
std::string SiteDigest() { return Sha256::Digest("update"); }

v1::AuditEntry DraftOf(const Event& event, int index) {
  v1::AuditEntry draft;
  draft.set_time(audit::FormatTime(absl::FromUnixSeconds(1796000000) + absl::Seconds(index)));
  draft.set_actor(event.actor);
  draft.set_action(event.action);
  draft.set_run_id(index >= 2 ? 1 : 0);  // from run.started on
  draft.set_round(event.round);
  draft.set_detail_json(draft.action() == kUpdateReceivedAction
                            ? UpdateReceivedDetail(event.actor, 1000, HexEncode(SiteDigest()), 50)
                            : absl::StrCat("{\"n\":", index, "}"));
  return draft;
}

class AuditHeadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    ASSERT_OK_AND_ASSIGN(tls_, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    ASSERT_OK_AND_ASSIGN(audit_cert_, ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(audit_key_,
                         AuditSigner::Create(audit_cert_.key_pem, audit_cert_.cert_pem));
    ASSERT_OK_AND_ASSIGN(tls_key_, AuditSigner::Create(tls_.key_pem, tls_.cert_pem));
    for (int i = 0; i < static_cast<int>(std::size(kHistory)); ++i) {
      log_.push_back(
          Sealed(*audit_key_, DraftOf(kHistory[i], i), log_.empty() ? nullptr : &log_.back()));
    }
  }

  static v1::AuditEntry Sealed(const AuditSigner& signer, v1::AuditEntry draft,
                               const v1::AuditEntry* previous) {
    absl::StatusOr<v1::AuditEntry> entry = signer.Seal(std::move(draft), previous);
    EXPECT_THAT(entry, IsOk());
    return entry.value_or(v1::AuditEntry());
  }

  // The head of entry `seq` as the coordinator sent it to site-1.
  HeldHead HeadAt(int64_t seq, const std::vector<v1::AuditEntry>& log,
                  const AuditSigner& signer) const {
    HeldHead held;
    absl::StatusOr<v1::AuditHead> head = signer.SignHead(log[seq - 1]);
    EXPECT_THAT(head, IsOk());
    held.head = head.value_or(v1::AuditHead());
    held.received_at = audit::FormatTime(absl::FromUnixSeconds(1796000000) + absl::Seconds(seq));
    held.via = absl::StrCat("task at entry ", seq);
    return held;
  }
  HeldHead HeadAt(int64_t seq) const { return HeadAt(seq, log_, *audit_key_); }

  // What site-1 keeps: the heads of its tasks and its receipt (entries 4, 5,
  // 6, 8 and 10), and the receipt itself.
  std::vector<HeldHead> SiteHeads() const {
    return {HeadAt(4), HeadAt(5), HeadAt(6), HeadAt(8), HeadAt(10)};
  }
  v1::UploadReceipt SiteReceipt() const {
    const v1::AuditEntry& entry = log_[4];
    v1::UploadReceipt receipt;
    receipt.set_run_id(1);
    receipt.set_round(1);
    receipt.set_site("site-1");
    receipt.set_sha256(SiteDigest());
    receipt.set_bytes_received(1000);
    receipt.set_examples(50);
    receipt.set_audit_seq(entry.seq());
    receipt.set_audit_hash(entry.hash());
    receipt.set_time(entry.time());
    EXPECT_THAT(audit_key_->SignReceipt(&receipt), IsOk());
    return receipt;
  }

  // The operator's rewrite: round 1's evaluation changed, the chain re-sealed
  // from it with `signer`, and every entry after `keep` dropped.
  std::vector<v1::AuditEntry> Rewritten(const AuditSigner& signer, int64_t keep) const {
    std::vector<v1::AuditEntry> forged(log_.begin(), log_.begin() + keep);
    forged[kEvaluatedRound1 - 1].set_detail_json("{\"auc\":0.99}");
    for (size_t i = kEvaluatedRound1 - 1; i < forged.size(); ++i) {
      forged[i] = Sealed(signer, forged[i], &forged[i - 1]);
    }
    return forged;
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  IssuedParty tls_;
  IssuedParty audit_cert_;
  std::unique_ptr<AuditSigner> audit_key_;
  std::unique_ptr<AuditSigner> tls_key_;
  std::vector<v1::AuditEntry> log_;
};

TEST_F(AuditHeadsTest, HonestLogHoldsEveryHead) {
  HeadsReport report = CheckHeldHeads(SiteHeads(), log_, audit_cert_.cert_pem);
  EXPECT_THAT(report.problems, IsEmpty());
  EXPECT_EQ(report.heads, 5);
  EXPECT_EQ(report.newest_seq, 10);
  // The same head kept twice is one head.
  std::vector<HeldHead> twice = {HeadAt(8), HeadAt(8)};
  EXPECT_EQ(CheckHeldHeads(twice, log_, audit_cert_.cert_pem).heads, 1);
}

// The attack of issue 11 item 8: the operator holds the coordinator's TLS key
// and its database, rewrites an entry after site-1's last receipt and drops
// the tail, then re-signs the chain with what it has.
TEST_F(AuditHeadsTest, OperatorWithTheTlsKeyCannotProduceALogThatVerifies) {
  const std::vector<v1::AuditEntry> forged = Rewritten(*tls_key_, /*keep=*/8);
  ASSERT_OK_AND_ASSIGN(v1::AuditHead forged_head, tls_key_->SignHead(forged.back()));

  // Presented as signed by the TLS certificate: refused by role.
  EXPECT_THAT(VerifyLog(forged, forged_head, tls_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("has role 'coordinator', not 'audit-signer'")));
  // Presented as the audit signer's: the re-sealed entries do not verify.
  EXPECT_THAT(VerifyLog(forged, forged_head, audit_cert_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kDataLoss, "entry 7: bad signature"));
  // Even a whole log signed with the TLS key from entry 1 is refused.
  std::vector<v1::AuditEntry> resigned;
  for (int i = 0; i < static_cast<int>(std::size(kHistory)); ++i) {
    resigned.push_back(
        Sealed(*tls_key_, DraftOf(kHistory[i], i), resigned.empty() ? nullptr : &resigned.back()));
  }
  ASSERT_OK_AND_ASSIGN(v1::AuditHead resigned_head, tls_key_->SignHead(resigned.back()));
  EXPECT_THAT(VerifyLog(resigned, resigned_head, tls_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("only a separate")));
  // And no coordinator starts signing with it.
  const std::string kit = dir_.Join("pki");
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), kit + "/tls-key.pem", tls_.key_pem), IsOk());
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), kit + "/tls-cert.pem", tls_.cert_pem), IsOk());
  EXPECT_THAT(LoadAuditSigner(kit + "/tls-key.pem", kit + "/tls-cert.pem", kit + "/ca/ca.crt"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("tls-cert.pem")));
  EXPECT_THAT(LoadAuditSigner("", "", kit + "/ca/ca.crt"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--audit-key")));
}

// The same rewrite by someone who holds the audit key too (both keys, or the
// audit key alone): the log verifies, site-1's receipt (entry 5) still
// matches, and only the heads site-1 kept name what was done.
TEST_F(AuditHeadsTest, HeadsNameTheRewrittenAndTheDroppedEntries) {
  const std::vector<v1::AuditEntry> forged = Rewritten(*audit_key_, /*keep=*/8);
  ASSERT_OK_AND_ASSIGN(v1::AuditHead forged_head, audit_key_->SignHead(forged.back()));
  ASSERT_THAT(VerifyLog(forged, forged_head, audit_cert_.cert_pem, ca_->ca_cert_pem()), IsOk());
  ASSERT_THAT(VerifyReceipts({SiteReceipt()}, forged, audit_cert_.cert_pem), IsOk());

  HeadsReport report = CheckHeldHeads(SiteHeads(), forged, audit_cert_.cert_pem);
  ASSERT_THAT(report.problems, SizeIs(2));
  EXPECT_THAT(report.problems[0],
              HasSubstr("entries 7..8: at least one was rewritten: the log's entry 8 has hash"));
  EXPECT_THAT(report.problems[0], HasSubstr("entries up to 6 match head seq 6"));
  EXPECT_EQ(report.problems[1],
            absl::StrCat("head seq 10 (received ", HeadAt(10).received_at,
                         ", with task at entry 10): entries 9..10 are missing from the log, "
                         "which ends at entry 8"));
}

TEST_F(AuditHeadsTest, AHeadOnTheRewrittenEntryNamesItAlone) {
  const std::vector<v1::AuditEntry> forged = Rewritten(*audit_key_, /*keep=*/12);
  std::vector<HeldHead> heads = {HeadAt(6), HeadAt(7), HeadAt(10)};
  HeadsReport report = CheckHeldHeads(heads, forged, audit_cert_.cert_pem);
  ASSERT_THAT(report.problems, SizeIs(1));  // head 10 follows from head 7
  EXPECT_THAT(report.problems[0], HasSubstr("entry 7 was rewritten: the log's entry 7 has hash"));
}

TEST_F(AuditHeadsTest, EntriesAfterTheNewestHeadCanStillBeDropped) {
  // The limit docs/audit.md states: nothing a site holds covers 11 and 12.
  std::vector<v1::AuditEntry> shorter(log_.begin(), log_.begin() + 10);
  EXPECT_THAT(CheckHeldHeads(SiteHeads(), shorter, audit_cert_.cert_pem).problems, IsEmpty());
}

TEST_F(AuditHeadsTest, TwoSignedHeadsForOneEntryProveAFork) {
  const std::vector<v1::AuditEntry> forked = Rewritten(*audit_key_, /*keep=*/12);
  std::vector<HeldHead> heads = {HeadAt(8), HeadAt(8, forked, *audit_key_)};
  HeadsReport report = CheckHeldHeads(heads, log_, audit_cert_.cert_pem);
  // The head that differs from this log is a rewrite as well.
  EXPECT_THAT(report.problems,
              UnorderedElementsAre(HasSubstr("signed two different heads for entry 8"),
                                   HasSubstr("at least one was rewritten")));
}

TEST_F(AuditHeadsTest, AHeadNotSignedByTheLogsSignerProvesNothing) {
  std::vector<HeldHead> heads = {HeadAt(4), HeadAt(8, log_, *tls_key_)};
  HeadsReport report = CheckHeldHeads(heads, log_, audit_cert_.cert_pem);
  EXPECT_THAT(report.problems, ElementsAre(HasSubstr("head seq 8 (received")));
  EXPECT_THAT(report.problems[0], HasSubstr("not signed by the log's signer"));
  EXPECT_EQ(report.heads, 1);
}

TEST_F(AuditHeadsTest, HeldHeadFilesRoundTrip) {
  const std::string heads_dir = HeldHeadsDir(dir_.Join("receipts"));
  EXPECT_THAT(ReadHeldHeadsDir(heads_dir),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("head folder")));
  std::filesystem::create_directories(heads_dir);
  const std::vector<HeldHead> kept = SiteHeads();
  for (const HeldHead& held : kept) {
    const std::string name = HeldHeadFileName(held.head);
    EXPECT_THAT(name, StartsWith(absl::StrFormat("head-%012d-", held.head.seq())));
    ASSERT_THAT(WriteFileAtomically(*Env::Default(), heads_dir + "/" + name, HeldHeadToJson(held)),
                IsOk());
  }
  ASSERT_OK_AND_ASSIGN(std::vector<HeldHead> read, ReadHeldHeadsDir(heads_dir));
  ASSERT_THAT(read, SizeIs(5));
  EXPECT_EQ(read[4].head.SerializeAsString(), kept[4].head.SerializeAsString());
  EXPECT_EQ(read[4].received_at, kept[4].received_at);
  EXPECT_EQ(read[4].via, "task at entry 10");
  EXPECT_THAT(CheckHeldHeads(read, log_, audit_cert_.cert_pem).problems, IsEmpty());

  EXPECT_THAT(HeldHeadFromJson("{\"seq\":1}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'hash'")));
}

}  // namespace
}  // namespace fedmi::audit
