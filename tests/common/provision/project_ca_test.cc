#include "common/provision/project_ca.h"

#include <filesystem>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ProjectCaTest : public ScratchProjectTest {};

TEST_F(ProjectCaTest, CreatedCaOpensWithTheSameCertificate) {
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

TEST_F(ProjectCaTest, CreateRefusesADirectoryThatHoldsACa) {
  const std::string key_before = ReadOrDie(dir_.Join("ca/ca.key"));
  EXPECT_THAT(ProjectCa::Create(dir_.path(), "other"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already holds a project CA")));
  EXPECT_EQ(ReadOrDie(dir_.Join("ca/ca.key")), key_before);
}

TEST_F(ProjectCaTest, RejectsBadProjectNames) {
  ScratchDir dir;
  EXPECT_THAT(ProjectCa::Create(dir.path(), "a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("project name 'a/b'")));
}

TEST_F(ProjectCaTest, SiteCertificateParsesBackAndVerifies) {
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

TEST_F(ProjectCaTest, CoordinatorCertificateCarriesLoopbackAndGivenNames) {
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

TEST_F(ProjectCaTest, IssueRejectsBadNamesAndSans) {
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

TEST(ProjectCaFaultTest, ACaWhoseCertificateCannotBeWrittenLeavesNoKeyBehind) {
  ScratchDir dir;
  FaultInjectionEnv env;
  env.FailCommitsTo(dir.Join("ca/ca.crt"), absl::ResourceExhaustedError("No space left"));
  EXPECT_THAT(ProjectCa::Create(dir.path(), "stmarys", 3650, env),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(dir.Join("ca/ca.crt"))));
  EXPECT_FALSE(std::filesystem::exists(dir.Join("ca/ca.key")));
  env.Heal();
  EXPECT_THAT(ProjectCa::Create(dir.path(), "stmarys", 3650, env), IsOk());
}

}  // namespace
}  // namespace fedmi
