// One secure-aggregation round end to end without sockets: five
// SecAggParticipants (the sites' side) and a SecAggSession plus
// SecAggAggregator (the coordinator's side) exchange exactly the messages of
// proto/fedmi/v1/secagg.proto.
#include "coordinator/secagg_session.h"

#include <cmath>
#include <random>

#include "common/base/status.h"
#include "common/provision/project_ca.h"
#include "common/secagg/secagg_participant.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "coordinator/secagg_aggregator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kRun = 7;
constexpr int32_t kRound = 3;

TensorBundle Model(const std::vector<float>& values) {
  return FloatBundle({{"w", DType::kFloat32, {static_cast<int64_t>(values.size())}}}, values);
}

class SecAggSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    for (int k = 1; k <= 5; ++k) {
      const std::string name = absl::StrCat("site-", k);
      ASSERT_OK_AND_ASSIGN(IssuedParty party, ca_->Issue(name, PartyRole::kSite, {}));
      names_.push_back(name);
      parties_[name] = party;
    }
    ASSERT_OK_AND_ASSIGN(coordinator_, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    settings_ = Settings(3, 4);
    settings_.set_clip(0.5);
    admission_ = SignedAdmission(coordinator_, TestRoundId(kRun, kRound), names_, settings_);
    params_ = admission_.params();
    std::mt19937 random(11);
    std::uniform_real_distribution<float> value(-1, 1), delta(-0.2f, 0.2f);
    std::vector<float> global(700);
    for (float& v : global) v = value(random);
    global_ = Model(global);
    for (const auto& name : names_) {
      std::vector<float> local = global;
      for (float& v : local) v += delta(random);
      local_[name] = Model(local);
    }
  }

  // Steps 1 and 2; sites in `silent` advertise keys but never share.
  void ExchangeKeysAndShares(const std::set<std::string>& silent = {}) {
    v1::PeerKeys peers;
    ASSERT_NO_FATAL_FAILURE(AdvertiseKeys(&peers));
    for (const auto& name : names_) {
      ASSERT_OK_AND_ASSIGN(v1::ShareBundle shares, participants_[name]->OnPeerKeys(peers));
      if (silent.count(name) == 0) {
        ASSERT_THAT(session_->OnShares(name, shares), IsOk());
      }
    }
    ASSERT_OK_AND_ASSIGN(auto relayed, session_->CloseSharing());
    EXPECT_EQ(relayed.size(), names_.size() - silent.size());
    for (const auto& [name, bundle] : relayed) {
      ASSERT_THAT(participants_[name]->OnRelayedShares(bundle), IsOk());
    }
  }

  // Step 1 for every site: a new session and participants, keys closed.
  void AdvertiseKeys(v1::PeerKeys* peers) {
    ASSERT_NO_FATAL_FAILURE(CreateSession());
    for (const auto& name : names_) {
      ASSERT_OK_AND_ASSIGN(participants_[name], StartParticipant(name));
      ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, participants_[name]->Advertisement());
      ASSERT_THAT(session_->OnAdvertisement(name, ad, parties_[name].cert_pem), IsOk());
    }
    ASSERT_TRUE(session_->AllAdvertised());
    ASSERT_OK_AND_ASSIGN(*peers, session_->ClosePeerKeys());
  }

  void RunAndCheck(const std::set<std::string>& missing,
                   const std::vector<std::string>& expected_dropped);

  void CreateSession() {
    ASSERT_OK_AND_ASSIGN(session_, SecAggSession::Create(secagg::RoundIdOf(admission_), params_,
                                                         names_, ca_->ca_cert_pem()));
  }

  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> StartParticipant(
      const std::string& name) {
    return secagg::SecAggParticipant::Start(admission_, settings_, secagg::SecAggFloor{}, name,
                                            parties_[name].key_pem, parties_[name].cert_pem,
                                            ca_->ca_cert_pem());
  }

  // Closes uploads and runs the consistency check with every uploader
  // signing; returns the unmask request.
  absl::StatusOr<v1::UnmaskRequest> SignedUnmaskRequest(const std::set<std::string>& uploaded) {
    ASSIGN_OR_RETURN(v1::SurvivorSet set, session_->CloseUploads(uploaded));
    for (const auto& name : uploaded) {
      ASSIGN_OR_RETURN(v1::SurvivorSignature signature, participants_[name]->SignSurvivors(set));
      RETURN_IF_ERROR(session_->OnSurvivorSignature(name, signature));
    }
    return session_->CloseConsistency();
  }

  // 150..350 examples: unequal weights exercise the weighted mean.
  int64_t Examples(const std::string& name) const { return 100 + 50 * (name.back() - '0'); }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  std::vector<std::string> names_;
  std::map<std::string, IssuedParty> parties_;
  IssuedParty coordinator_;
  v1::SecAggSettings settings_;
  v1::RoundAdmission admission_;
  v1::SecAggParams params_;
  TensorBundle global_;
  std::map<std::string, TensorBundle> local_;
  std::unique_ptr<SecAggSession> session_;
  std::map<std::string, std::unique_ptr<secagg::SecAggParticipant>> participants_;
};

// Runs steps 3 to 5 with every site but `missing` uploading, and checks the
// new global model against weighted FedAvg of the uploads' clipped deltas.
TEST_F(SecAggSessionTest, SumOfSurvivorsIsRecoveredWhenOneSiteDropsAfterSharing) {
  ExchangeKeysAndShares();
  RunAndCheck({"site-3"}, {"site-3"});
}

TEST_F(SecAggSessionTest, SiteThatNeverSharedIsLeftOutOfEveryMask) {
  // site-5 advertised keys but went silent before sharing: nobody masks with
  // it, and there is nothing of it to unmask.
  ExchangeKeysAndShares({"site-5"});
  EXPECT_FALSE(session_->MayUpload("site-5"));
  RunAndCheck({"site-5"}, {});
}

void SecAggSessionTest::RunAndCheck(const std::set<std::string>& missing,
                                    const std::vector<std::string>& expected_dropped) {
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::Open(dir_.Join("models")));
  ASSERT_OK_AND_ASSIGN(std::string global_path, WriteBundleFile(store->dir(), global_));
  secagg::QuantizationOptions quantization;
  quantization.clip = params_.clip();
  quantization.max_sites = params_.max_sites();
  ASSERT_OK_AND_ASSIGN(auto aggregator, SecAggAggregator::Create(quantization));
  ASSERT_THAT(aggregator->Begin(kRound, global_.specs, global_path), IsOk());

  std::set<std::string> uploaded;
  const std::vector<float> global = FloatsOf(global_);
  std::vector<double> weighted(global.size(), 0);
  double total_weight = 0;
  for (const auto& name : names_) {
    if (missing.count(name) > 0) continue;
    ASSERT_TRUE(session_->MayUpload(name));
    ASSERT_OK_AND_ASSIGN(TensorBundle masked,
                         participants_[name]->MaskUpdate(global_, local_[name], Examples(name)));
    ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), masked));
    ASSERT_OK_AND_ASSIGN(auto reader, BundleFileReader::Open(path));
    const double weight = participants_[name]->Weight(Examples(name));
    ASSERT_THAT(aggregator->Accept(name, weight, *reader), IsOk());
    uploaded.insert(name);
    const std::vector<float> local = FloatsOf(local_[name]);
    for (size_t i = 0; i < global.size(); ++i) {
      const double delta =
          std::clamp<double>(local[i] - global[i], -params_.clip(), params_.clip());
      weighted[i] += weight * delta;
    }
    total_weight += weight;
  }
  ASSERT_OK_AND_ASSIGN(v1::UnmaskRequest request, SignedUnmaskRequest(uploaded));
  EXPECT_THAT(request.dropped(), ::testing::ElementsAreArray(expected_dropped));
  EXPECT_EQ(request.signatures_size(), static_cast<int>(uploaded.size()));
  for (const auto& name : uploaded) {
    ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response,
                         participants_[name]->OnUnmaskRequest(request));
    ASSERT_THAT(session_->OnUnmaskResponse(name, response), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(UnmaskingInput input, session_->Unmasking());
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store, input));
  ASSERT_OK_AND_ASSIGN(std::string model_path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadBundleFile(model_path));

  ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
  const double bound = codec.ErrorBound(static_cast<int>(uploaded.size())) / total_weight + 1e-6;
  const std::vector<float> got = FloatsOf(result);
  double worst = 0;
  for (size_t i = 0; i < global.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - (global[i] + weighted[i] / total_weight)));
  }
  EXPECT_LE(worst, bound);
}

TEST_F(SecAggSessionTest, ForgedAdvertisementIsRefusedNamingTheSite) {
  ASSERT_NO_FATAL_FAILURE(CreateSession());
  ASSERT_OK_AND_ASSIGN(auto honest, StartParticipant("site-2"));
  ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, honest->Advertisement());
  // A man in the middle swaps in its own mask key after site-2 signed.
  v1::KeyAdvertisement forged = ad;
  forged.set_mask_public_key(std::string(32, '\x42'));
  EXPECT_THAT(session_->OnAdvertisement("site-2", forged, parties_["site-2"].cert_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-2")));
  // Signed by another site's certificate.
  EXPECT_THAT(session_->OnAdvertisement("site-2", ad, parties_["site-4"].cert_pem),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-2")));
  EXPECT_THAT(session_->OnAdvertisement("site-2", ad, parties_["site-2"].cert_pem), IsOk());
  EXPECT_THAT(session_->OnAdvertisement("site-2", ad, parties_["site-2"].cert_pem),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("site-2")));
}

TEST_F(SecAggSessionTest, TooFewRevealedSharesFailCleanlyNamingTheSite) {
  ExchangeKeysAndShares();
  std::set<std::string> uploaded = {"site-1", "site-2", "site-4", "site-5"};
  ASSERT_OK_AND_ASSIGN(v1::UnmaskRequest request, SignedUnmaskRequest(uploaded));
  // Only two survivors answer: below the threshold of three.
  for (const std::string name : {"site-1", "site-2"}) {
    ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response,
                         participants_[name]->OnUnmaskRequest(request));
    ASSERT_THAT(session_->OnUnmaskResponse(name, response), IsOk());
  }
  EXPECT_THAT(session_->Unmasking(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("need 3")));
}

TEST_F(SecAggSessionTest, TooFewUploadsFailTheRoundBeforeAnythingIsRevealed) {
  ExchangeKeysAndShares();
  EXPECT_THAT(session_->CloseUploads({"site-1", "site-2"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("need 4 (threshold + 1) to unmask")));
}

TEST_F(SecAggSessionTest, SurvivorSignaturesAreCheckedAndCounted) {
  ExchangeKeysAndShares();
  const std::set<std::string> uploaded = {"site-1", "site-2", "site-3", "site-4"};
  ASSERT_OK_AND_ASSIGN(v1::SurvivorSet set, session_->CloseUploads(uploaded));
  ASSERT_OK_AND_ASSIGN(v1::SurvivorSignature signature,
                       participants_["site-1"]->SignSurvivors(set));
  // Passed off as another survivor's, or made over another set.
  v1::SurvivorSignature misattributed = signature;
  misattributed.set_site("site-2");
  EXPECT_THAT(session_->OnSurvivorSignature("site-2", misattributed),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-2")));
  EXPECT_THAT(session_->OnSurvivorSignature("site-5", signature),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("site-5")));
  ASSERT_THAT(session_->OnSurvivorSignature("site-1", signature), IsOk());
  // One good signature is fewer than t = 3: nothing is requested.
  EXPECT_THAT(session_->CloseConsistency(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("only 1 of 4 survivors signed the survivor set, need 3")));
}

TEST_F(SecAggSessionTest, SharesMustGoToNeighboursAndComeFromTheSender) {
  v1::PeerKeys peers;
  ASSERT_NO_FATAL_FAILURE(AdvertiseKeys(&peers));
  ASSERT_OK_AND_ASSIGN(v1::ShareBundle shares, participants_["site-1"]->OnPeerKeys(peers));
  v1::ShareBundle spoofed = shares;
  spoofed.mutable_shares(0)->set_sender("site-5");
  EXPECT_THAT(session_->OnShares("site-1", spoofed),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-1")));
  EXPECT_THAT(session_->OnShares("site-1", shares), IsOk());
}

TEST_F(SecAggSessionTest, ForgedRevealedShareIsRefusedNamingTheRevealer) {
  ExchangeKeysAndShares();
  ASSERT_OK_AND_ASSIGN(v1::UnmaskRequest request,
                       SignedUnmaskRequest({"site-1", "site-2", "site-3", "site-4", "site-5"}));
  ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response,
                       participants_["site-1"]->OnUnmaskRequest(request));
  ASSERT_GT(response.shares_size(), 0);
  // site-1 passes off a share it holds as if site-2 had revealed it.
  EXPECT_THAT(session_->OnUnmaskResponse("site-2", response),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site 'site-2' revealed")));
  EXPECT_THAT(session_->OnUnmaskResponse("site-1", response), IsOk());
}

TEST(SecAggSessionCreateTest, RefusesAThresholdItCannotHonour) {
  v1::SecAggParams params;
  params.set_threshold(4);
  params.set_neighbours(2);
  EXPECT_THAT(SecAggSession::Create(TestRoundId(1, 1), params, {"a", "b", "c", "d", "e"}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds the neighbour")));
  params.set_threshold(1);
  EXPECT_THAT(SecAggSession::Create(TestRoundId(1, 1), params, {"a", "b"}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 2")));
}

}  // namespace
}  // namespace fedmi
