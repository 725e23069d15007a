#include "common/crypto/pki.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

mode_t FileMode(const std::string& path) {
  struct stat info;
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 0777;
}

std::string ReadOrDie(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  EXPECT_THAT(contents, IsOk());
  return contents.value_or("");
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = ProjectCa::Create(dir_.path(), "stmarys");
    ASSERT_THAT(ca, IsOk());
    ca_ = std::move(ca).value();
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
};

TEST(PartyRoleTest, NamesRoundTrip) {
  for (PartyRole role :
       {PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin, PartyRole::kAuditor}) {
    ASSERT_OK_AND_ASSIGN(PartyRole parsed, ParsePartyRole(PartyRoleName(role)));
    EXPECT_EQ(parsed, role);
  }
  EXPECT_THAT(ParsePartyRole("root"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'root'")));
}

TEST(ReadFileToStringTest, MissingFileIsNotFoundNamingThePath) {
  EXPECT_THAT(ReadFileToString("/nonexistent/fedmi/ca.crt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/fedmi/ca.crt")));
}

TEST_F(PkiTest, CreatedCaOpensWithTheSameCertificate) {
  ASSERT_OK_AND_ASSIGN(auto opened, ProjectCa::Open(dir_.path()));
  EXPECT_EQ(opened->project(), "stmarys");
  EXPECT_EQ(opened->ca_cert_pem(), ca_->ca_cert_pem());
  EXPECT_EQ(FileMode(dir_.Join("ca/ca.key")), 0600u);

  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificatePem(ca_->ca_cert_pem()));
  EXPECT_EQ(info.common_name, "stmarys fedmi CA");
  EXPECT_EQ(info.project, "stmarys");
  EXPECT_EQ(info.issuer_common_name, "stmarys fedmi CA");
  EXPECT_NEAR(absl::ToDoubleHours(info.not_after - absl::Now()), 3650 * 24, 1);
  EXPECT_THAT(VerifyIssuedBy(ca_->ca_cert_pem(), ca_->ca_cert_pem(), absl::Now()), IsOk());
}

TEST_F(PkiTest, CreateRefusesADirectoryThatHoldsACa) {
  const std::string key_before = ReadOrDie(dir_.Join("ca/ca.key"));
  EXPECT_THAT(ProjectCa::Create(dir_.path(), "other"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already holds a project CA")));
  EXPECT_EQ(ReadOrDie(dir_.Join("ca/ca.key")), key_before);
}

TEST(ProjectCaTest, OpenWithoutCaIsNotFound) {
  ScratchDir dir;
  EXPECT_THAT(ProjectCa::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("fedmi provision init")));
  EXPECT_THAT(ListIssued(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no project CA")));
}

TEST(ProjectCaTest, RejectsBadProjectNames) {
  ScratchDir dir;
  EXPECT_THAT(ProjectCa::Create(dir.path(), "a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("project name 'a/b'")));
}

TEST_F(PkiTest, SiteCertificateParsesBackAndVerifies) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, IssueOptions()));
  EXPECT_THAT(site.key_pem, HasSubstr("BEGIN PRIVATE KEY"));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificatePem(site.cert_pem));
  EXPECT_EQ(info.common_name, "site-1");
  EXPECT_EQ(info.role_name, "site");
  EXPECT_EQ(info.project, "stmarys");
  EXPECT_EQ(info.issuer_common_name, "stmarys fedmi CA");
  EXPECT_THAT(info.serial_hex, SizeIs(32));
  EXPECT_THAT(info.sha256_fingerprint, SizeIs(64));
  EXPECT_THAT(info.dns_names, IsEmpty());
  EXPECT_THAT(info.ip_addresses, IsEmpty());
  EXPECT_NEAR(absl::ToDoubleHours(info.not_after - absl::Now()), 365 * 24, 1);
  EXPECT_LT(info.not_before, absl::Now());
  EXPECT_EQ(info.sha256_fingerprint, site.info.sha256_fingerprint);
  EXPECT_THAT(VerifyIssuedBy(site.cert_pem, ca_->ca_cert_pem(), absl::Now()), IsOk());

  ASSERT_OK_AND_ASSIGN(IssuedParty again, ca_->Issue("site-1", PartyRole::kSite, IssueOptions()));
  EXPECT_NE(again.info.serial_hex, info.serial_hex);
}

TEST_F(PkiTest, CoordinatorCertificateCarriesLoopbackAndGivenNames) {
  IssueOptions options;
  options.days = 30;
  options.dns_names = {"coord.example.org"};
  options.ip_addresses = {"10.0.0.5", "::1"};
  ASSERT_OK_AND_ASSIGN(IssuedParty coordinator,
                       ca_->Issue("coordinator", PartyRole::kCoordinator, options));
  EXPECT_EQ(coordinator.info.role_name, "coordinator");
  EXPECT_THAT(coordinator.info.dns_names, ElementsAre("coord.example.org", "localhost"));
  EXPECT_THAT(coordinator.info.ip_addresses, ElementsAre("10.0.0.5", "::1", "127.0.0.1"));
  EXPECT_NEAR(absl::ToDoubleHours(coordinator.info.not_after - absl::Now()), 30 * 24, 1);
}

TEST_F(PkiTest, IssueRejectsBadNamesAndSans) {
  EXPECT_THAT(ca_->Issue("", PartyRole::kSite, IssueOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site name")));
  EXPECT_THAT(ca_->Issue("a b", PartyRole::kAdmin, IssueOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("admin name 'a b'")));
  EXPECT_THAT(ca_->Issue(std::string(65, 'x'), PartyRole::kSite, IssueOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 64")));
  IssueOptions bad_dns;
  bad_dns.dns_names = {"evil,IP:1.2.3.4"};
  EXPECT_THAT(ca_->Issue("coordinator", PartyRole::kCoordinator, bad_dns),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a DNS name")));
  IssueOptions bad_ip;
  bad_ip.ip_addresses = {"10.0.0.300"};
  EXPECT_THAT(ca_->Issue("coordinator", PartyRole::kCoordinator, bad_ip),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'10.0.0.300'")));
  IssueOptions too_long;
  too_long.days = 4000;
  EXPECT_THAT(ca_->Issue("site-1", PartyRole::kSite, too_long),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("after the project CA")));
}

TEST_F(PkiTest, CertificateFromAnotherCaFailsVerification) {
  ScratchDir other_dir;
  // Same project name, so the issuer names match and only the key differs.
  ASSERT_OK_AND_ASSIGN(auto other_ca, ProjectCa::Create(other_dir.path(), "stmarys"));
  ASSERT_OK_AND_ASSIGN(IssuedParty intruder,
                       other_ca->Issue("site-1", PartyRole::kSite, IssueOptions()));
  EXPECT_THAT(VerifyIssuedBy(intruder.cert_pem, ca_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("certificate 'site-1' was not issued by project CA 'stmarys'")));

  ScratchDir third_dir;
  ASSERT_OK_AND_ASSIGN(auto third_ca, ProjectCa::Create(third_dir.path(), "elsewhere"));
  ASSERT_OK_AND_ASSIGN(IssuedParty stranger,
                       third_ca->Issue("x", PartyRole::kAdmin, IssueOptions()));
  EXPECT_THAT(VerifyIssuedBy(stranger.cert_pem, ca_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("certificate 'x' was not issued by project CA 'stmarys'")));
  EXPECT_THAT(VerifyIssuedBy(third_ca->ca_cert_pem(), ca_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("was not issued by")));
}

TEST_F(PkiTest, ExpiredCertificateFailsVerificationNamingTheDate) {
  IssueOptions options;
  options.days = 1;
  options.start_offset = absl::Hours(-400 * 24);
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, options));
  EXPECT_THAT(VerifyIssuedBy(site.cert_pem, ca_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("certificate 'site-1' expired at " +
                                 FormatCertificateTime(site.info.not_after))));
}

TEST_F(PkiTest, NotYetValidCertificateFailsVerification) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, IssueOptions()));
  EXPECT_THAT(VerifyIssuedBy(site.cert_pem, ca_->ca_cert_pem(), absl::Now() - absl::Hours(1)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("is not valid before")));
}

TEST(VerifyIssuedByTest, GarbageIsInvalidArgument) {
  EXPECT_THAT(VerifyIssuedBy("not a certificate", "neither", absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM certificate")));
  EXPECT_THAT(ParseCertificatePem(""), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

TEST_F(PkiTest, SignaturesVerifyAndDetectTampering) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, IssueOptions()));
  ASSERT_OK_AND_ASSIGN(IssuedParty other, ca_->Issue("site-2", PartyRole::kSite, IssueOptions()));
  const std::string message = "round 3: public key 0123";
  ASSERT_OK_AND_ASSIGN(std::string signature, SignWithKeyPem(site.key_pem, message));
  EXPECT_THAT(VerifyWithCertificatePem(site.cert_pem, message, signature), IsOk());

  EXPECT_THAT(VerifyWithCertificatePem(site.cert_pem, "round 3: public key 0124", signature),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("signature does not match certificate 'site-1'")));
  std::string flipped = signature;
  flipped[flipped.size() / 2] ^= 0x01;
  EXPECT_THAT(VerifyWithCertificatePem(site.cert_pem, message, flipped),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  EXPECT_THAT(VerifyWithCertificatePem(site.cert_pem, message, ""),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  EXPECT_THAT(VerifyWithCertificatePem(other.cert_pem, message, signature),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'site-2'")));
  EXPECT_THAT(SignWithKeyPem("no key", message), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

TEST_F(PkiTest, AddPartyWritesKitAndIndex) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site,
                       AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}));
  const std::string kit = dir_.Join("kits/site-1");
  EXPECT_EQ(FileMode(kit + "/key.pem"), 0600u);
  EXPECT_EQ(ReadOrDie(kit + "/key.pem"), site.key_pem);
  EXPECT_EQ(ReadOrDie(kit + "/cert.pem"), site.cert_pem);
  EXPECT_EQ(ReadOrDie(kit + "/ca.pem"), ca_->ca_cert_pem());
  EXPECT_THAT(VerifyIssuedBy(ReadOrDie(kit + "/cert.pem"), ReadOrDie(kit + "/ca.pem"), absl::Now()),
              IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records[0].name, "site-1");
  EXPECT_EQ(records[0].role, PartyRole::kSite);
  EXPECT_EQ(records[0].serial_hex, site.info.serial_hex);
  EXPECT_EQ(records[0].sha256_fingerprint, site.info.sha256_fingerprint);
  EXPECT_EQ(records[0].not_after, site.info.not_after);
  EXPECT_EQ(records[0].kit, "kits/site-1");
}

TEST_F(PkiTest, AddingANameTwiceIsRefusedAndLeavesTheKitAlone) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site,
                       AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}));
  const std::string kit = dir_.Join("kits/site-1");
  const std::string key = ReadOrDie(kit + "/key.pem");
  const std::string cert = ReadOrDie(kit + "/cert.pem");
  const std::string config = ReadOrDie(kit + "/client.toml");
  const std::string ca_key = ReadOrDie(dir_.Join("ca/ca.key"));

  EXPECT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr("site 'site-1' is already provisioned (serial " +
                                       site.info.serial_hex),
                             HasSubstr("never re-keyed"))));
  // A different role does not get around it either.
  EXPECT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kAdmin, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("site 'site-1'")));
  EXPECT_EQ(ReadOrDie(kit + "/key.pem"), key);
  EXPECT_EQ(ReadOrDie(kit + "/cert.pem"), cert);
  EXPECT_EQ(ReadOrDie(kit + "/client.toml"), config);
  EXPECT_EQ(ReadOrDie(dir_.Join("ca/ca.key")), ca_key);
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  EXPECT_THAT(records, SizeIs(1));
}

TEST_F(PkiTest, AddPartyRefusesAStrayKitFolder) {
  std::filesystem::create_directories(dir_.Join("kits/site-9"));
  EXPECT_THAT(AddParty(dir_.path(), "site-9", PartyRole::kSite, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not in issued.json")));
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  EXPECT_THAT(records, IsEmpty());
}

TEST_F(PkiTest, SiteKitBeforeAnyCoordinatorHasAPlaceholderAddress) {
  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  const std::string config = ReadOrDie(dir_.Join("kits/site-1/client.toml"));
  EXPECT_THAT(config, HasSubstr("coordinator = \"HOST:7000\""));
  EXPECT_THAT(config, HasSubstr("replace HOST"));
  EXPECT_THAT(ReadOrDie(dir_.Join("kits/site-1/policy.toml")),
              HasSubstr("coordinator_fingerprint = \"\""));
}

TEST_F(PkiTest, KitConfigsNameTheCoordinatorAndRelativeFiles) {
  KitSettings settings;
  settings.coordinator_host = "coord.example.org";
  settings.coordinator_port = 7443;
  IssueOptions coordinator_options;
  coordinator_options.ip_addresses = {"10.0.0.5"};
  ASSERT_OK_AND_ASSIGN(
      IssuedParty coordinator,
      AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, coordinator_options, settings));
  EXPECT_THAT(coordinator.info.dns_names, ElementsAre("coord.example.org", "localhost"));
  EXPECT_THAT(coordinator.info.ip_addresses, ElementsAre("10.0.0.5", "127.0.0.1"));

  const std::string coordinator_config = ReadOrDie(dir_.Join("kits/coordinator/coordinator.toml"));
  EXPECT_THAT(coordinator_config, HasSubstr("listen = \"0.0.0.0:7443\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("db = \"state/coordinator.db\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("cert = \"cert.pem\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("key = \"key.pem\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("ca = \"ca.pem\"\n"));
  EXPECT_EQ(FileMode(dir_.Join("kits/coordinator/key.pem")), 0600u);

  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  const std::string client = ReadOrDie(dir_.Join("kits/site-1/client.toml"));
  EXPECT_THAT(client, HasSubstr("coordinator = \"coord.example.org:7443\"\n"));
  EXPECT_THAT(client, HasSubstr("site = \"site-1\"\n"));
  EXPECT_THAT(client, HasSubstr("cert = \"cert.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("key = \"key.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("ca = \"ca.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("policy = \"policy.toml\"\n"));
  EXPECT_THAT(client, HasSubstr("# data = \"/path/to/images\"\n"));
  const std::string policy = ReadOrDie(dir_.Join("kits/site-1/policy.toml"));
  EXPECT_THAT(policy, HasSubstr("allowed_models = [\"cnn\", \"resnet18\"]\n"));
  EXPECT_THAT(policy, HasSubstr("max_local_epochs = 10\n"));
  EXPECT_THAT(policy, HasSubstr("require_secure_aggregation = false\n"));
  EXPECT_THAT(policy, HasSubstr("require_differential_privacy = false\n"));
  EXPECT_THAT(policy, HasSubstr("coordinator_fingerprint = \"" +
                                coordinator.info.sha256_fingerprint + "\"\n"));

  ASSERT_THAT(AddParty(dir_.path(), "alice", PartyRole::kAdmin, IssueOptions(), {}), IsOk());
  ASSERT_THAT(AddParty(dir_.path(), "bob", PartyRole::kAuditor, IssueOptions(), {}), IsOk());
  for (const char* name : {"alice", "bob"}) {
    const std::string config = ReadOrDie(dir_.Join(std::string("kits/") + name + "/fedmi.toml"));
    EXPECT_THAT(config, HasSubstr("coordinator = \"coord.example.org:7443\"\n"));
    EXPECT_THAT(config, HasSubstr("cert = \"cert.pem\"\n"));
    EXPECT_THAT(config, HasSubstr("key = \"key.pem\"\n"));
    EXPECT_THAT(config, HasSubstr("ca = \"ca.pem\"\n"));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(4));
  EXPECT_EQ(records[0].role, PartyRole::kCoordinator);
  EXPECT_EQ(records[3].name, "bob");
  EXPECT_EQ(records[3].role, PartyRole::kAuditor);

  EXPECT_THAT(
      AddParty(dir_.path(), "coordinator-2", PartyRole::kCoordinator, IssueOptions(), settings),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already has coordinator")));
}

TEST_F(PkiTest, CoordinatorNeedsAHost) {
  EXPECT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host")));
  KitSettings ipv6;
  ipv6.coordinator_host = "fd00::5";
  ASSERT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), ipv6),
              IsOk());
  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  EXPECT_THAT(ReadOrDie(dir_.Join("kits/site-1/client.toml")),
              HasSubstr("coordinator = \"[fd00::5]:7000\""));
}

}  // namespace
}  // namespace fedmi
