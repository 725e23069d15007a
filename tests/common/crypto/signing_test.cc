#include "common/crypto/signing.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

class SigningTest : public ScratchProjectTest {};

TEST_F(SigningTest, SignaturesVerifyAndDetectTampering) {
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

}  // namespace
}  // namespace fedmi
