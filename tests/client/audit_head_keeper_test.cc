#include "client/audit_head_keeper.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/provision/project_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Channel = AuditHeadKeeper::Channel;

class AuditHeadKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    ASSERT_OK_AND_ASSIGN(IssuedParty audit,
                         ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(audit_signer_, audit::AuditSigner::Create(audit.key_pem, audit.cert_pem));
    ASSERT_OK_AND_ASSIGN(IssuedParty tls, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    ASSERT_OK_AND_ASSIGN(tls_signer_, audit::AuditSigner::Create(tls.key_pem, tls.cert_pem));
    ca_file_ = dir_.Join("ca.pem");
    ASSERT_THAT(WriteFileAtomically(*Env::Default(), ca_file_, ca_->ca_cert_pem()), IsOk());
  }

  // The head of entry `seq` whose hash is `hash_digit` repeated, signed by `signer`.
  static v1::SignedAuditHead Head(const audit::AuditSigner& signer, int64_t seq,
                                  char hash_digit = 'a') {
    v1::AuditEntry last;
    last.set_seq(seq);
    last.set_hash(std::string(64, hash_digit));
    v1::SignedAuditHead head;
    absl::StatusOr<v1::AuditHead> signed_head = signer.SignHead(last);
    EXPECT_THAT(signed_head, IsOk());
    *head.mutable_head() = signed_head.value_or(v1::AuditHead());
    head.set_signer_certificate_pem(signer.certificate_pem());
    return head;
  }
  v1::SignedAuditHead Head(int64_t seq, char hash_digit = 'a') const {
    return Head(*audit_signer_, seq, hash_digit);
  }

  std::unique_ptr<AuditHeadKeeper> Keeper() {
    return std::make_unique<AuditHeadKeeper>(HeadsDir(), ca_file_, *Env::Default(), clock_);
  }
  std::string HeadsDir() const { return audit::HeldHeadsDir(dir_.Join("receipts")); }
  std::vector<audit::HeldHead> Held() const {
    absl::StatusOr<std::vector<audit::HeldHead>> held = audit::ReadHeldHeadsDir(HeadsDir());
    return held.value_or(std::vector<audit::HeldHead>());
  }

  ScratchDir dir_;
  FakeClock clock_;
  std::unique_ptr<ProjectCa> ca_;
  std::unique_ptr<audit::AuditSigner> audit_signer_;
  std::unique_ptr<audit::AuditSigner> tls_signer_;
  std::string ca_file_;
};

TEST_F(AuditHeadKeeperTest, KeepsEachDistinctHeadOnce) {
  auto keeper = Keeper();
  EXPECT_THAT(keeper->Keep(Head(3), Channel::kTask, "train task run 1 round 1"), IsOk());
  EXPECT_THAT(keeper->Keep(Head(5), Channel::kReceipt, "receipt run 1 round 1"), IsOk());
  EXPECT_THAT(keeper->Keep(Head(5), Channel::kTask, "eval task run 1 round 1"), IsOk());
  std::vector<audit::HeldHead> held = Held();
  ASSERT_THAT(held, SizeIs(2));
  EXPECT_EQ(held[0].head.seq(), 3);
  EXPECT_EQ(held[0].via, "train task run 1 round 1");
  EXPECT_EQ(held[0].received_at, audit::FormatTime(clock_.Now()));
  EXPECT_EQ(held[1].via, "receipt run 1 round 1");
}

TEST_F(AuditHeadKeeperTest, NothingToKeepWithoutAHeadOrAFolder) {
  EXPECT_THAT(Keeper()->Keep(v1::SignedAuditHead(), Channel::kTask, "train task"), IsOk());
  AuditHeadKeeper without_folder("", ca_file_, *Env::Default(), clock_);
  EXPECT_THAT(without_folder.Keep(Head(3), Channel::kTask, "train task"), IsOk());
  EXPECT_FALSE(std::filesystem::exists(HeadsDir()));
}

TEST_F(AuditHeadKeeperTest, HeadSignedWithTheTlsKeyIsAViolationAndNotKept) {
  EXPECT_THAT(Keeper()->Keep(Head(*tls_signer_, 4), Channel::kTask, "train task run 1 round 2"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("with train task run 1 round 2: the log's signer certificate "
                                 "'coordinator' has role 'coordinator'")));
  v1::SignedAuditHead forged = Head(4);
  forged.mutable_head()->set_hash(std::string(64, 'f'));
  EXPECT_THAT(Keeper()->Keep(forged, Channel::kTask, "train task run 1 round 2"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("bad signature")));
  EXPECT_THAT(Held(), IsEmpty());
}

TEST_F(AuditHeadKeeperTest, SeqGoingBackwardsOnOneChannelIsAViolationAndIsKept) {
  auto keeper = Keeper();
  ASSERT_THAT(keeper->Keep(Head(8), Channel::kTask, "eval task run 1 round 2"), IsOk());
  // A receipt may overtake the task stream: no violation across channels.
  EXPECT_THAT(keeper->Keep(Head(6), Channel::kReceipt, "receipt run 1 round 2"), IsOk());
  EXPECT_THAT(keeper->Keep(Head(7), Channel::kTask, "train task run 1 round 3"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the audit head seq 7 with train task run 1 round 3 goes "
                                 "backwards: this site was shown entry 8 before")));
  EXPECT_THAT(Held(), SizeIs(3));
}

TEST_F(AuditHeadKeeperTest, TwoHashesForOneSeqAreAViolationEvenAfterARestart) {
  ASSERT_THAT(Keeper()->Keep(Head(9, 'a'), Channel::kTask, "train task run 1 round 3"), IsOk());
  // A new process (the site restarted) still holds the first head.
  EXPECT_THAT(Keeper()->Keep(Head(9, 'b'), Channel::kTask, "train task run 1 round 3"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the coordinator signed two different logs")));
  EXPECT_THAT(Held(), SizeIs(2));
}

}  // namespace
}  // namespace fedmi
