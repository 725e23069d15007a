// The project CRL as parties read it: issue -> revoke -> CRL -> refuse. The
// adversary holds a revoked key, or a CRL it made with a CA of its own.
#include "common/crypto/revocation_list.h"

#include <string>

#include "absl/time/clock.h"
#include "common/crypto/identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class RevocationListTest : public ScratchProjectTest {
 protected:
  void SetUp() override {
    ScratchProjectTest::SetUp();
    ASSERT_OK_AND_ASSIGN(revoked_, ca_->Issue("site-1", PartyRole::kSite, {}));
    ASSERT_OK_AND_ASSIGN(kept_, ca_->Issue("site-2", PartyRole::kSite, {}));
  }

  IssuedParty revoked_;
  IssuedParty kept_;
};

TEST_F(RevocationListTest, ARevokedCertificateIsRefusedAndAnotherAccepted) {
  ASSERT_OK_AND_ASSIGN(std::string pem, ca_->SignCrl({{revoked_.info.serial_hex, absl::Now()}}));
  EXPECT_THAT(pem, HasSubstr("-----BEGIN X509 CRL-----"));
  ASSERT_OK_AND_ASSIGN(RevocationList crl, RevocationList::FromPem(pem, ca_->ca_cert_pem()));
  EXPECT_TRUE(crl.Lists(revoked_.info.serial_hex));
  EXPECT_FALSE(crl.Lists(kept_.info.serial_hex));
  EXPECT_LE(crl.issued_at(), absl::Now());
  EXPECT_GT(crl.issued_at(), absl::Now() - absl::Minutes(5));

  EXPECT_THAT(crl.CheckCertificate(revoked_.cert_pem),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("certificate 'site-1'"), HasSubstr(revoked_.info.serial_hex),
                             HasSubstr("project CRL"))));
  EXPECT_THAT(crl.CheckCertificate(kept_.cert_pem), IsOk());
  // The same check inside the identity verification sites use for peers.
  EXPECT_THAT(VerifyPartyCertificate(revoked_.cert_pem, ca_->ca_cert_pem(), "site-1",
                                     PartyRole::kSite, absl::Now(), &crl),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("project CRL")));
  EXPECT_THAT(VerifyPartyCertificate(revoked_.cert_pem, ca_->ca_cert_pem(), "site-1",
                                     PartyRole::kSite, absl::Now()),
              IsOk());
  EXPECT_THAT(VerifyPartyCertificate(kept_.cert_pem, ca_->ca_cert_pem(), "site-2", PartyRole::kSite,
                                     absl::Now(), &crl),
              IsOk());
}

TEST_F(RevocationListTest, AnEmptyCrlListsNothing) {
  ASSERT_OK_AND_ASSIGN(std::string pem, ca_->SignCrl({}));
  ASSERT_OK_AND_ASSIGN(RevocationList crl, RevocationList::FromPem(pem, ca_->ca_cert_pem()));
  EXPECT_TRUE(crl.serials().empty());
  EXPECT_THAT(crl.CheckCertificate(revoked_.cert_pem), IsOk());
}

TEST_F(RevocationListTest, ACrlSignedByAnotherCaIsRefused) {
  ScratchDir other_dir;
  ASSERT_OK_AND_ASSIGN(auto other, ProjectCa::Create(other_dir.path(), "mallory"));
  ASSERT_OK_AND_ASSIGN(std::string pem, other->SignCrl({{kept_.info.serial_hex, absl::Now()}}));
  EXPECT_THAT(RevocationList::FromPem(pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not signed by project CA 'stmarys'")));
}

TEST_F(RevocationListTest, ACrlFromAnImpostorCaOfTheSameNameIsRefused) {
  // Same subject as the real CA, different key: only the signature tells.
  ScratchDir other_dir;
  ASSERT_OK_AND_ASSIGN(auto impostor, ProjectCa::Create(other_dir.path(), "stmarys"));
  ASSERT_OK_AND_ASSIGN(std::string pem, impostor->SignCrl({{kept_.info.serial_hex, absl::Now()}}));
  EXPECT_THAT(RevocationList::FromPem(pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not signed")));
}

TEST_F(RevocationListTest, WhatIsNotACrlIsInvalidArgument) {
  EXPECT_THAT(RevocationList::FromPem("not a crl", ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM CRL")));
  EXPECT_THAT(RevocationList::FromPem(kept_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(std::string pem, ca_->SignCrl({}));
  EXPECT_THAT(RevocationList::FromPem(pem, "no CA"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("project CA")));
  EXPECT_THAT(ca_->SignCrl({{"xyz", absl::Now()}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'xyz' is not")));
}

TEST_F(RevocationListTest, LoadingAtStartNamesTheFile) {
  ASSERT_OK_AND_ASSIGN(std::string pem, ca_->SignCrl({{revoked_.info.serial_hex, absl::Now()}}));
  const std::string crl_path = dir_.Join("crl.pem");
  const std::string ca_path = dir_.Join("ca/ca.crt");
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), crl_path, pem), IsOk());
  ASSERT_OK_AND_ASSIGN(RevocationList crl, LoadRevocationList(crl_path, ca_path));
  EXPECT_TRUE(crl.Lists(revoked_.info.serial_hex));

  EXPECT_THAT(LoadRevocationList(dir_.Join("missing.pem"), ca_path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.pem")));
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), crl_path, "garbage"), IsOk());
  EXPECT_THAT(LoadRevocationList(crl_path, ca_path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("CRL '" + crl_path + "'"), HasSubstr("not a PEM CRL"))));
  EXPECT_THAT(LoadRevocationList(crl_path, ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--insecure")));
}

}  // namespace
}  // namespace fedmi
