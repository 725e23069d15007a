#include "common/crypto/identity.h"

#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

class IdentityTest : public ScratchProjectTest {};

TEST(PartyRoleTest, NamesRoundTrip) {
  for (PartyRole role :
       {PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin, PartyRole::kAuditor}) {
    ASSERT_OK_AND_ASSIGN(PartyRole parsed, ParsePartyRole(PartyRoleName(role)));
    EXPECT_EQ(parsed, role);
  }
  EXPECT_THAT(ParsePartyRole("root"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'root'")));
}

TEST_F(IdentityTest, CertificateFromAnotherCaFailsVerification) {
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

TEST_F(IdentityTest, ExpiredCertificateFailsVerificationNamingTheDate) {
  IssueOptions options;
  options.days = 1;
  options.start_offset = absl::Hours(-400 * 24);
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, options));
  EXPECT_THAT(VerifyIssuedBy(site.cert_pem, ca_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("certificate 'site-1' expired at " +
                                 FormatCertificateTime(site.info.not_after))));
}

TEST_F(IdentityTest, NotYetValidCertificateFailsVerification) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, IssueOptions()));
  EXPECT_THAT(VerifyIssuedBy(site.cert_pem, ca_->ca_cert_pem(), absl::Now() - absl::Hours(1)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("is not valid before")));
}

TEST(VerifyIssuedByTest, GarbageIsInvalidArgument) {
  EXPECT_THAT(VerifyIssuedBy("not a certificate", "neither", absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM certificate")));
  EXPECT_THAT(ParseCertificatePem(""), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

}  // namespace
}  // namespace fedmi
