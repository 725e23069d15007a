// Revocation of sites, admins and auditors through the Federation core, as
// the gRPC authenticator and the WatchRun adapter use it: no sockets. The
// adversary is a party whose key leaked: once revoked, by name or through
// the project CRL, its next call and its open watch are refused.
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/crypto/revocation_list.h"
#include "common/provision/kits.h"
#include "common/provision/project_ca.h"
#include "coordinator/audit_log.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

Caller Bob() { return CallerAs("bob", PartyRole::kAdmin); }
Caller Zoe() { return CallerAs("zoe", PartyRole::kAuditor); }

// The Caller the authenticator makes of a verified peer certificate.
Caller CallerOf(const std::string& cert_pem) {
  absl::StatusOr<CertificateInfo> info = ParseCertificatePem(cert_pem);
  EXPECT_THAT(info, IsOk());
  Caller caller;
  if (!info.ok()) return caller;
  caller.name = info->common_name;
  caller.role = ParsePartyRole(info->role_name).value_or(PartyRole::kCoordinator);
  caller.certificate_pem = cert_pem;
  caller.certificate_serial = info->serial_hex;
  return caller;
}

class FederationRevocationTest : public FederationTest {
 protected:
  absl::StatusOr<RevocationRecord> Revoke(const Caller& by, const std::string& name,
                                          std::optional<PartyRole> role,
                                          const std::string& reason = "key leaked") {
    return federation_->Revoke(by, name, role, reason);
  }
};

TEST_F(FederationRevocationTest, ARevokedAdminIsRefusedAtOnceNamingWhoAndWhy) {
  ASSERT_THAT(federation_->CheckNotRevoked(Bob()), IsOk());
  ASSERT_OK_AND_ASSIGN(RevocationRecord record,
                       Revoke(Admin(), "bob", PartyRole::kAdmin, "laptop stolen"));
  EXPECT_EQ(record.name, "bob");
  EXPECT_EQ(record.role, PartyRole::kAdmin);
  EXPECT_EQ(record.revoked_by, "alice");
  EXPECT_EQ(record.reason, "laptop stolen");
  EXPECT_GT(record.revoked_at, 0);

  EXPECT_THAT(federation_->CheckNotRevoked(Bob()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("admin 'bob' was revoked by alice: laptop stolen")));
  // A revoked admin cannot revoke anyone either (its call is refused before).
  EXPECT_THAT(federation_->CheckNotRevoked(Admin()), IsOk());
}

TEST_F(FederationRevocationTest, ARevokedAuditorIsRefused) {
  ASSERT_THAT(Revoke(Admin(), "zoe", PartyRole::kAuditor, "left the hospital"), IsOk());
  EXPECT_THAT(federation_->CheckNotRevoked(Zoe()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("auditor 'zoe' was revoked by alice: left the hospital")));
}

TEST_F(FederationRevocationTest, ARevokedWatcherIsCutOffMidStream) {
  const int64_t run = StartRun(Spec(1, 2));  // stays pending: no site connects
  int writes = 0;
  absl::Status watched = federation_->WatchRun(
      Bob(), run,
      [&](const v1::RunStatus&) {
        ++writes;
        // Revoked while its stream is open, between two updates.
        EXPECT_THAT(Revoke(Admin(), "bob", PartyRole::kAdmin), IsOk());
        return true;
      },
      [] { return false; });
  EXPECT_THAT(watched, StatusIs(absl::StatusCode::kPermissionDenied,
                                HasSubstr("admin 'bob' was revoked by alice")));
  EXPECT_EQ(writes, 1);
}

TEST_F(FederationRevocationTest, ARevokedWatcherOnAnotherThreadWakesUpAndEnds) {
  const int64_t run = StartRun(Spec(1, 2));
  absl::Notification first_write;
  absl::Status watched;
  std::thread watcher([&] {
    watched = federation_->WatchRun(
        Zoe(), run,
        [&](const v1::RunStatus&) {
          if (!first_write.HasBeenNotified()) first_write.Notify();
          return true;
        },
        [] { return false; });
  });
  first_write.WaitForNotification();
  ASSERT_THAT(Revoke(Admin(), "zoe", PartyRole::kAuditor), IsOk());
  watcher.join();
  EXPECT_THAT(watched, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'zoe'")));
}

TEST_F(FederationRevocationTest, AWatchOfAnUnrevokedCallerEndsWithTheRun) {
  const int64_t run = StartRun(Spec(1, 2));
  ASSERT_THAT(federation_->AbortRun(Admin(), run, "enough"), IsOk());
  std::vector<std::string> states;
  EXPECT_THAT(federation_->WatchRun(
                  Bob(), run,
                  [&](const v1::RunStatus& status) {
                    states.push_back(status.state());
                    return true;
                  },
                  [] { return false; }),
              IsOk());
  EXPECT_EQ(states, std::vector<std::string>{"aborted"});
}

TEST_F(FederationRevocationTest, RevocationsSurviveARestart) {
  Connect("site-1");
  ASSERT_THAT(Revoke(Admin(), "bob", PartyRole::kAdmin), IsOk());
  ASSERT_THAT(Revoke(Admin(), "site-1", std::nullopt, "decommissioned"), IsOk());
  Restart();
  EXPECT_THAT(federation_->CheckNotRevoked(Bob()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'bob'")));
  EXPECT_THAT(federation_->CheckNotRevoked(SiteCaller("site-1")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-1' was revoked by alice: decommissioned")));
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> all, federation_->ListRevocations());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "bob");
  EXPECT_EQ(all[0].role, PartyRole::kAdmin);
  EXPECT_EQ(all[1].name, "site-1");
  EXPECT_EQ(all[1].role, PartyRole::kSite);
  EXPECT_EQ(all[1].reason, "decommissioned");
}

TEST_F(FederationRevocationTest, ASiteIsRevokedByNameAndItsStreamClosed) {
  Connect("site-1");
  ASSERT_OK_AND_ASSIGN(RevocationRecord record, Revoke(Admin(), "site-1", std::nullopt));
  EXPECT_EQ(record.role, PartyRole::kSite);
  EXPECT_TRUE(Channel("site-1").closed());
  // The site's own stream says who revoked it and why (docs/security.md).
  EXPECT_THAT(Channel("site-1").close_status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-1' was revoked by alice: key leaked")));
}

TEST_F(FederationRevocationTest, AnAdminCannotRevokeItself) {
  EXPECT_THAT(Revoke(Admin(), "alice", PartyRole::kAdmin),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("cannot revoke itself"), HasSubstr("another admin"))));
  EXPECT_THAT(federation_->CheckNotRevoked(Admin()), IsOk());
}

TEST_F(FederationRevocationTest, OnlyAnAdminMayRevoke) {
  EXPECT_THAT(Revoke(Zoe(), "bob", PartyRole::kAdmin),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("only an admin")));
  EXPECT_THAT(Revoke(SiteCaller("site-1"), "bob", PartyRole::kAdmin),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(federation_->CheckNotRevoked(Bob()), IsOk());
}

TEST_F(FederationRevocationTest, TheRoleMustBeKnownOrGiven) {
  Connect("site-1");
  EXPECT_THAT(Revoke(Admin(), "bobb", std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'bobb' is not a site this coordinator knows")));
  EXPECT_THAT(Revoke(Admin(), "site-1", PartyRole::kAuditor),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'site-1' is a registered site, not an auditor")));
  EXPECT_THAT(Revoke(Admin(), "coordinator", PartyRole::kCoordinator),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("renew")));
  EXPECT_THAT(Revoke(Admin(), "bad name!", PartyRole::kAdmin),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> all, federation_->ListRevocations());
  EXPECT_TRUE(all.empty());
}

TEST_F(FederationRevocationTest, RevokingTwiceIsRefusedAndKeepsTheFirst) {
  ASSERT_THAT(Revoke(Admin(), "bob", PartyRole::kAdmin, "first"), IsOk());
  EXPECT_THAT(Revoke(CallerAs("carol", PartyRole::kAdmin), "bob", PartyRole::kAuditor, "second"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already revoked")));
  EXPECT_THAT(federation_->CheckNotRevoked(Bob()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("alice: first")));
}

TEST_F(FederationRevocationTest, RevocationIsAuditedAsPartyRevoked) {
  ASSERT_OK_AND_ASSIGN(auto ca, ProjectCa::Create(dir_.Join("pki"), "t"));
  ASSERT_OK_AND_ASSIGN(IssuedParty coordinator,
                       ca->Issue("coordinator", PartyRole::kCoordinator, {}));
  ASSERT_OK_AND_ASSIGN(auto signer,
                       audit::AuditSigner::Create(coordinator.key_pem, coordinator.cert_pem));
  ASSERT_OK_AND_ASSIGN(auto audit, AuditLog::Open(storage_.get(), &clock_, std::move(signer)));
  options_.audit = audit.get();
  Restart();
  Connect("site-1");
  ASSERT_THAT(Revoke(Admin(), "zoe", PartyRole::kAuditor, "left"), IsOk());
  ASSERT_THAT(Revoke(Admin(), "site-1", std::nullopt, "closed"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, audit->List({}));
  std::vector<std::string> revocations;
  for (const v1::AuditEntry& entry : entries) {
    if (entry.action() == "party.revoked" || entry.action() == "site.revoked") {
      revocations.push_back(entry.action() + " by " + entry.actor() + " " + entry.detail_json());
    }
  }
  ASSERT_EQ(revocations.size(), 2u);
  EXPECT_THAT(revocations[0], AllOf(HasSubstr("party.revoked by alice"), HasSubstr("\"zoe\""),
                                    HasSubstr("\"auditor\""), HasSubstr("\"left\"")));
  EXPECT_THAT(revocations[1], AllOf(HasSubstr("site.revoked by alice"), HasSubstr("closed")));
  federation_.reset();  // before the audit log it records to
}

// --- The project CRL ----------------------------------------------------------

class FederationCrlTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(project_.path(), "stmarys"));
    FederationTest::SetUp();
  }

  // Restarts the coordinator with a CRL listing `revoked`.
  void RestartWithCrl(const std::vector<std::string>& revoked) {
    std::vector<RevokedSerial> serials;
    for (const std::string& serial : revoked) serials.push_back({serial, absl::Now()});
    ASSERT_OK_AND_ASSIGN(std::string crl_pem, ca_->SignCrl(serials));
    ASSERT_OK_AND_ASSIGN(options_.crl, RevocationList::FromPem(crl_pem, ca_->ca_cert_pem()));
    Restart();
  }

  ScratchDir project_;
  std::unique_ptr<ProjectCa> ca_;
};

TEST_F(FederationCrlTest, ACertificateOnTheCrlIsRefusedWhateverItsName) {
  ASSERT_OK_AND_ASSIGN(IssuedParty bob, ca_->Issue("bob", PartyRole::kAdmin, {}));
  ASSERT_OK_AND_ASSIGN(IssuedParty carol, ca_->Issue("carol", PartyRole::kAdmin, {}));
  RestartWithCrl({bob.info.serial_hex});
  EXPECT_THAT(federation_->CheckNotRevoked(CallerOf(bob.cert_pem)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("'bob'"), HasSubstr(bob.info.serial_hex),
                             HasSubstr("revoked by the project CRL"))));
  EXPECT_THAT(federation_->CheckNotRevoked(CallerOf(carol.cert_pem)), IsOk());
}

TEST_F(FederationCrlTest, ARenewedSiteReconnectsWithItsNewCertificateAlone) {
  ASSERT_THAT(AddParty(project_.path(), "site-1", PartyRole::kSite, {}, {}), IsOk());
  const std::string old_cert = ReadFileToString(project_.Join("kits/site-1/cert.pem")).value();
  ASSERT_THAT(RenewParty(project_.path(), "site-1", 30), IsOk());
  const std::string new_cert = ReadFileToString(project_.Join("kits/site-1/cert.pem")).value();
  ASSERT_OK_AND_ASSIGN(std::string crl_pem, ProjectCrl(project_.path()));
  ASSERT_OK_AND_ASSIGN(options_.crl, RevocationList::FromPem(crl_pem, ca_->ca_cert_pem()));
  Restart();

  // The coordinator knows sites by CN: nothing changes at it but the CRL.
  EXPECT_THAT(federation_->CheckNotRevoked(CallerOf(old_cert)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("project CRL")));
  const Caller renewed = CallerOf(new_cert);
  ASSERT_THAT(federation_->CheckNotRevoked(renewed), IsOk());
  v1::Hello hello;
  hello.set_site("site-1");
  EXPECT_THAT(federation_->SiteConnected(renewed, hello, std::make_shared<RecordingChannel>()),
              IsOk());
}

}  // namespace
}  // namespace fedmi
