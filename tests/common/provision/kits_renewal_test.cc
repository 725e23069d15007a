// Renewal and revocation in a project directory (kits.h: RenewParty,
// RevokeIssued, ProjectCrl): the adversary holds a party's old key, so the
// old serial must reach the CRL while no other kit changes.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/crypto/revocation_list.h"
#include "common/provision/kits.h"
#include "common/provision/project_layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Every file under `dir`, relative path to bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    files[std::filesystem::relative(entry.path(), dir).string()] = ReadOrDie(entry.path().string());
  }
  return files;
}

class KitsRenewalTest : public ScratchProjectTest {
 protected:
  void SetUp() override {
    ScratchProjectTest::SetUp();
    KitSettings coordinator;
    coordinator.coordinator_host = "fl.stmarys.example.org";
    IssueOptions with_ip;
    with_ip.ip_addresses = {"10.1.2.3"};
    ASSERT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, with_ip, coordinator),
                IsOk());
    ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, {}, {}), IsOk());
    ASSERT_THAT(AddParty(dir_.path(), "site-2", PartyRole::kSite, {}, {}), IsOk());
    ASSERT_THAT(AddParty(dir_.path(), "alice", PartyRole::kAdmin, {}, {}), IsOk());
  }

  absl::StatusOr<RevocationList> Crl() {
    ASSIGN_OR_RETURN(std::string pem, ProjectCrl(dir_.path()));
    return RevocationList::FromPem(pem, ca_->ca_cert_pem());
  }

  std::string Kit(const std::string& name, const std::string& file) {
    return dir_.Join("kits/" + name + "/" + file);
  }
};

TEST_F(KitsRenewalTest, RenewalReplacesKeyAndCertificateAndRevokesTheOldSerial) {
  const std::map<std::string, std::string> other_kits = Snapshot(dir_.Join("kits/site-2"));
  const std::map<std::string, std::string> admin_kit = Snapshot(dir_.Join("kits/alice"));
  const std::string old_key = ReadOrDie(Kit("site-1", "key.pem"));
  const std::string old_cert = ReadOrDie(Kit("site-1", "cert.pem"));
  const std::string config = ReadOrDie(Kit("site-1", "client.toml"));
  const std::string policy = ReadOrDie(Kit("site-1", "policy.toml"));
  ASSERT_OK_AND_ASSIGN(CertificateInfo old_info, ParseCertificatePem(old_cert));

  ASSERT_OK_AND_ASSIGN(IssuedParty renewed, RenewParty(dir_.path(), "site-1", 90));
  EXPECT_NE(renewed.info.serial_hex, old_info.serial_hex);
  EXPECT_NE(ReadOrDie(Kit("site-1", "key.pem")), old_key);
  EXPECT_EQ(ReadOrDie(Kit("site-1", "key.pem")), renewed.key_pem);
  EXPECT_EQ(ReadOrDie(Kit("site-1", "cert.pem")), renewed.cert_pem);
  EXPECT_EQ(FileMode(Kit("site-1", "key.pem")), 0600u);
  EXPECT_EQ(ReadOrDie(Kit("site-1", "client.toml")), config);
  EXPECT_EQ(ReadOrDie(Kit("site-1", "policy.toml")), policy);
  EXPECT_THAT(VerifyPartyCertificate(renewed.cert_pem, ca_->ca_cert_pem(), "site-1",
                                     PartyRole::kSite, absl::Now()),
              IsOk());
  EXPECT_EQ(Snapshot(dir_.Join("kits/site-2")), other_kits);
  EXPECT_EQ(Snapshot(dir_.Join("kits/alice")), admin_kit);

  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  // coordinator, coordinator-audit, site-1, site-2, alice, then the renewal.
  ASSERT_THAT(records, SizeIs(6));
  EXPECT_EQ(records[2].serial_hex, old_info.serial_hex);
  EXPECT_TRUE(records[2].revoked());
  EXPECT_THAT(records[2].revocation_reason, HasSubstr("renewed"));
  EXPECT_EQ(records[5].name, "site-1");
  EXPECT_EQ(records[5].serial_hex, renewed.info.serial_hex);
  EXPECT_FALSE(records[5].revoked());

  ASSERT_OK_AND_ASSIGN(RevocationList crl, Crl());
  EXPECT_EQ(crl.serials(), std::set<std::string>{old_info.serial_hex});
  EXPECT_THAT(crl.CheckCertificate(old_cert),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'site-1'")));
  EXPECT_THAT(crl.CheckCertificate(renewed.cert_pem), IsOk());

  // Renewed twice: both old serials are listed.
  ASSERT_THAT(RenewParty(dir_.path(), "site-1", 90), IsOk());
  ASSERT_OK_AND_ASSIGN(RevocationList later, Crl());
  EXPECT_THAT(later.serials(), SizeIs(2));
  EXPECT_TRUE(later.Lists(renewed.info.serial_hex));
}

TEST_F(KitsRenewalTest, ARenewedCoordinatorKeepsItsNamesAndPublishesItsNewFingerprint) {
  ASSERT_OK_AND_ASSIGN(CertificateInfo old_info,
                       ParseCertificatePem(ReadOrDie(Kit("coordinator", "cert.pem"))));
  const std::string config = ReadOrDie(Kit("coordinator", "coordinator.toml"));
  ASSERT_OK_AND_ASSIGN(IssuedParty renewed, RenewParty(dir_.path(), "coordinator", 365));
  EXPECT_EQ(renewed.info.dns_names, old_info.dns_names);
  EXPECT_EQ(renewed.info.ip_addresses, old_info.ip_addresses);
  EXPECT_TRUE(renewed.info.server_auth);
  EXPECT_EQ(ReadOrDie(Kit("coordinator", "coordinator.toml")), config);
  ASSERT_OK_AND_ASSIGN(std::optional<CoordinatorRecord> recorded,
                       ReadCoordinatorRecord(*Env::Default(), dir_.path()));
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->fingerprint, renewed.info.sha256_fingerprint);
  EXPECT_EQ(recorded->host, "fl.stmarys.example.org");
}

// The audit key lives in the coordinator's kit beside the TLS key: renewing
// one must never overwrite the other.
TEST_F(KitsRenewalTest, AnAuditSignerIsRenewedIntoItsOwnFilesOnly) {
  const std::string tls_key = ReadOrDie(Kit("coordinator", "key.pem"));
  const std::string tls_cert = ReadOrDie(Kit("coordinator", "cert.pem"));
  const std::string old_audit_cert = ReadOrDie(Kit("coordinator", "audit-cert.pem"));
  ASSERT_OK_AND_ASSIGN(IssuedParty renewed, RenewParty(dir_.path(), "coordinator-audit", 365));
  EXPECT_EQ(renewed.role, PartyRole::kAuditSigner);
  EXPECT_EQ(ReadOrDie(Kit("coordinator", "audit-key.pem")), renewed.key_pem);
  EXPECT_EQ(ReadOrDie(Kit("coordinator", "audit-cert.pem")), renewed.cert_pem);
  EXPECT_EQ(ReadOrDie(Kit("coordinator", "key.pem")), tls_key);
  EXPECT_EQ(ReadOrDie(Kit("coordinator", "cert.pem")), tls_cert);
  EXPECT_THAT(VerifyPartyCertificate(renewed.cert_pem, ca_->ca_cert_pem(), "coordinator-audit",
                                     PartyRole::kAuditSigner, absl::Now()),
              IsOk());
  ASSERT_OK_AND_ASSIGN(RevocationList crl, Crl());
  EXPECT_THAT(crl.CheckCertificate(old_audit_cert), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(KitsRenewalTest, RenewalNeedsAProvisionedNameAndItsKit) {
  EXPECT_THAT(RenewParty(dir_.path(), "site-9", 30),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'site-9' was never provisioned")));
  std::filesystem::remove_all(dir_.Join("kits/site-2"));
  const std::string index = ReadOrDie(dir_.Join("issued.json"));
  EXPECT_THAT(RenewParty(dir_.path(), "site-2", 30),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("holds no cert.pem")));
  EXPECT_EQ(ReadOrDie(dir_.Join("issued.json")), index);
}

TEST_F(KitsRenewalTest, AFailedRenewalLeavesIndexAndKitAsTheyWere) {
  FaultInjectionEnv env;
  const std::map<std::string, std::string> before = Snapshot(dir_.path());
  env.FailCommitsTo(Kit("site-1", "cert.pem"), absl::InternalError("Input/output error"));
  EXPECT_THAT(RenewParty(dir_.path(), "site-1", 30, env),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("Input/output error")));
  std::map<std::string, std::string> after = Snapshot(dir_.path());
  after.erase(".provision.lock");
  std::map<std::string, std::string> expected = before;
  expected.erase(".provision.lock");
  EXPECT_EQ(after, expected);
}

TEST_F(KitsRenewalTest, RevokeMarksTheCurrentCertificateOnce) {
  ASSERT_OK_AND_ASSIGN(CertificateInfo alice,
                       ParseCertificatePem(ReadOrDie(Kit("alice", "cert.pem"))));
  ASSERT_OK_AND_ASSIGN(RevocationList empty, Crl());
  EXPECT_TRUE(empty.serials().empty());

  ASSERT_OK_AND_ASSIGN(IssuedRecord record, RevokeIssued(dir_.path(), "alice", "laptop stolen"));
  EXPECT_EQ(record.serial_hex, alice.serial_hex);
  EXPECT_TRUE(record.revoked());
  EXPECT_EQ(record.revocation_reason, "laptop stolen");
  ASSERT_OK_AND_ASSIGN(RevocationList crl, Crl());
  EXPECT_EQ(crl.serials(), std::set<std::string>{alice.serial_hex});

  EXPECT_THAT(RevokeIssued(dir_.path(), "alice", "again"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("already"), HasSubstr("fedmi provision renew alice"))));
  EXPECT_THAT(RevokeIssued(dir_.path(), "nobody", ""), StatusIs(absl::StatusCode::kNotFound));
  // Renewing a revoked party issues a fresh, unrevoked certificate.
  ASSERT_OK_AND_ASSIGN(IssuedParty renewed, RenewParty(dir_.path(), "alice", 30));
  ASSERT_OK_AND_ASSIGN(RevocationList after, Crl());
  EXPECT_FALSE(after.Lists(renewed.info.serial_hex));
  EXPECT_TRUE(after.Lists(alice.serial_hex));
}

TEST_F(KitsRenewalTest, AnIndexWrittenBeforeRevocationExistedStillReads) {
  const std::string index = dir_.Join("issued.json");
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), index,
                                  R"({"version": 1, "parties": [{"name": "old-site", "role": "site",
                                      "serial": "0a1b", "not_before": "2026-01-01T00:00:00Z",
                                      "not_after": "2027-01-01T00:00:00Z", "fingerprint": "ab",
                                      "kit": "kits/old-site"}]})"),
              IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_FALSE(records[0].revoked());
  ASSERT_THAT(RevokeIssued(dir_.path(), "old-site", "retired"), IsOk());
  ASSERT_OK_AND_ASSIGN(records, ListIssued(dir_.path()));
  EXPECT_TRUE(records[0].revoked());
  EXPECT_EQ(records[0].revocation_reason, "retired");
  EXPECT_THAT(ReadOrDie(index), HasSubstr("\"revoked_at\""));
}

}  // namespace
}  // namespace fedmi
