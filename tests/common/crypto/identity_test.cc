#include "common/crypto/identity.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

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
  for (PartyRole role : {PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin,
                         PartyRole::kAuditor, PartyRole::kAuditSigner}) {
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

// Whether OpenSSL, as a TLS stack does, accepts the certificate for `purpose`.
bool TlsAccepts(const std::string& cert_pem, int purpose) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const bool accepted = cert != nullptr && X509_check_purpose(cert, purpose, 0) == 1;
  X509_free(cert);
  return accepted;
}

TEST_F(IdentityTest, AuditSignerCertificateSignsTheLogButCannotSpeakTls) {
  ASSERT_OK_AND_ASSIGN(IssuedParty signer,
                       ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, IssueOptions()));
  EXPECT_EQ(signer.info.role_name, "audit-signer");
  EXPECT_TRUE(signer.info.audit_signing);
  EXPECT_FALSE(signer.info.client_auth);
  EXPECT_FALSE(signer.info.server_auth);
  EXPECT_FALSE(TlsAccepts(signer.cert_pem, X509_PURPOSE_SSL_CLIENT));
  EXPECT_FALSE(TlsAccepts(signer.cert_pem, X509_PURPOSE_SSL_SERVER));
  const absl::Time now = absl::Now();
  EXPECT_THAT(
      VerifyPartyCertificate(signer.cert_pem, ca_->ca_cert_pem(), "", PartyRole::kAuditSigner, now),
      IsOk());
  for (PartyRole tls_role : {PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAuditor}) {
    EXPECT_THAT(VerifyPartyCertificate(signer.cert_pem, ca_->ca_cert_pem(), "", tls_role, now),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("audit-signer role")));
  }

  // And the coordinator's TLS certificate is no audit signer.
  ASSERT_OK_AND_ASSIGN(IssuedParty coordinator,
                       ca_->Issue("coordinator", PartyRole::kCoordinator, IssueOptions()));
  EXPECT_FALSE(coordinator.info.audit_signing);
  EXPECT_TRUE(TlsAccepts(coordinator.cert_pem, X509_PURPOSE_SSL_SERVER));
  EXPECT_THAT(VerifyPartyCertificate(coordinator.cert_pem, ca_->ca_cert_pem(), "",
                                     PartyRole::kAuditSigner, now),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("coordinator role")));
}

TEST(VerifyIssuedByTest, GarbageIsInvalidArgument) {
  EXPECT_THAT(VerifyIssuedBy("not a certificate", "neither", absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM certificate")));
  EXPECT_THAT(ParseCertificatePem(""), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

}  // namespace
}  // namespace fedmi
