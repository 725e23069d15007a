// The project CRL in secure aggregation (secagg_transcript.h): a site
// refuses the coordinator's admission and a peer's key advertisement signed
// with a certificate the CA has revoked, whatever the coordinator's
// database says. The adversary holds a revoked site or coordinator key.
#include "common/secagg/secagg_transcript.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto/revocation_list.h"
#include "common/provision/project_ca.h"
#include "common/secagg/secagg_participant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace secagg {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class SecAggRevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(scratch_.path(), "t"));
    ASSERT_OK_AND_ASSIGN(coordinator_, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    for (int i = 0; i < 4; ++i) {
      ASSERT_OK_AND_ASSIGN(IssuedParty site,
                           ca_->Issue("site-" + std::to_string(i), PartyRole::kSite, {}));
      sites_.push_back(site);
    }
    settings_ = Settings(0, 0);
    admission_ = SignedAdmission(coordinator_, TestRoundId(7, 3),
                                 {"site-0", "site-1", "site-2", "site-3"}, settings_);
  }

  RevocationList Crl(const std::vector<std::string>& serials) {
    std::vector<RevokedSerial> revoked;
    for (const std::string& serial : serials) revoked.push_back({serial, absl::Now()});
    absl::StatusOr<std::string> pem = ca_->SignCrl(revoked);
    EXPECT_THAT(pem, IsOk());
    absl::StatusOr<RevocationList> crl =
        RevocationList::FromPem(pem.value_or(""), ca_->ca_cert_pem());
    EXPECT_THAT(crl, IsOk());
    return crl.value_or(RevocationList());
  }

  absl::StatusOr<std::unique_ptr<SecAggParticipant>> Start(const IssuedParty& site,
                                                           const RevocationList& crl) {
    return SecAggParticipant::Start(admission_, settings_, SecAggFloor{}, site.name, site.key_pem,
                                    site.cert_pem, ca_->ca_cert_pem(), crl);
  }

  ScratchDir scratch_;
  std::unique_ptr<ProjectCa> ca_;
  IssuedParty coordinator_;
  std::vector<IssuedParty> sites_;
  v1::SecAggSettings settings_;
  v1::RoundAdmission admission_;
};

TEST_F(SecAggRevocationTest, AnAdmissionSignedWithARevokedCoordinatorCertificateIsRefused) {
  const RevocationList crl = Crl({coordinator_.info.serial_hex});
  EXPECT_THAT(VerifyAdmission(admission_, ca_->ca_cert_pem(), absl::Now()), IsOk());
  EXPECT_THAT(VerifyAdmission(admission_, ca_->ca_cert_pem(), absl::Now(), &crl),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("not signed by the project's coordinator"),
                             HasSubstr("revoked by the project CRL"))));
  EXPECT_THAT(Start(sites_[0], crl),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("project CRL")));
  EXPECT_THAT(Start(sites_[0], RevocationList()), IsOk());
}

TEST_F(SecAggRevocationTest, AKeyAdvertisementOfARevokedSiteIsRefused) {
  const RevocationList crl = Crl({sites_[3].info.serial_hex});
  ASSERT_OK_AND_ASSIGN(auto revoked_site, Start(sites_[3], RevocationList()));
  ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, revoked_site->Advertisement());
  ad.set_certificate_pem(sites_[3].cert_pem);  // as the coordinator relays it
  const RoundId id = RoundIdOf(admission_);
  EXPECT_THAT(VerifyAdvertisement(ad, id, ca_->ca_cert_pem(), absl::Now()), IsOk());
  EXPECT_THAT(VerifyAdvertisement(ad, id, ca_->ca_cert_pem(), absl::Now(), &crl),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("key advertisement of site 'site-3'"),
                             HasSubstr("revoked by the project CRL"))));
  // A site that holds the CRL will not even start with its own revoked
  // certificate, and the others start as usual.
  EXPECT_THAT(Start(sites_[3], crl),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("is not usable")));
  EXPECT_THAT(Start(sites_[0], crl), IsOk());
}

}  // namespace
}  // namespace secagg
}  // namespace fedmi
