// Securely aggregated rounds through Federation and RoundManager, without
// sockets: each site is a real SecAggParticipant fed the messages its
// recording channel received, so the coordinator's step logic (who gets
// peer keys, relayed shares, unmask requests; dropouts; violations) runs as
// in a deployment.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "common/provision/project_ca.h"
#include "common/secagg/secagg_participant.h"
#include "common/secagg/secagg_transcript.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class SecureRoundTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    options_.ca_pem = ca_->ca_cert_pem();
    ASSERT_OK_AND_ASSIGN(IssuedParty coordinator,
                         ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    options_.identity_key_pem = coordinator.key_pem;
    options_.identity_cert_pem = coordinator.cert_pem;
    FederationTest::SetUp();
    for (int k = 1; k <= 5; ++k) {
      const std::string name = absl::StrCat("site-", k);
      ASSERT_OK_AND_ASSIGN(parties_[name], ca_->Issue(name, PartyRole::kSite, {}));
      names_.push_back(name);
    }
  }

  v1::RunSpec SecureSpec(int32_t rounds) {
    v1::RunSpec spec = Spec(rounds, /*min_sites=*/3);
    spec.set_secure_aggregation(true);
    spec.mutable_secagg()->set_clip(0.5);
    return spec;
  }

  Caller WithCertificate(const std::string& site) {
    Caller caller = SiteCaller(site);
    caller.certificate_pem = parties_.at(site).cert_pem;
    return caller;
  }

  absl::Status Send(const std::string& site, const v1::SiteMessage& message) {
    return federation_->OnSiteMessage(WithCertificate(site), message);
  }

  // The message of `kind` the site got last.
  v1::CoordinatorMessage Last(const std::string& site, Kind kind) {
    auto messages = Channel(site).Of(kind);
    EXPECT_THAT(messages, ::testing::Not(IsEmpty())) << site << " got no message of kind " << kind;
    return messages.empty() ? v1::CoordinatorMessage() : messages.back();
  }

  // Step 1 at every site in `sites`: a participant started from its
  // TrainTask, and its advertisement sent.
  void Advertise(const std::vector<std::string>& sites) {
    for (const auto& site : sites) {
      const v1::TrainTask task = Last(site, Kind::kTrain).train();
      ASSERT_TRUE(task.has_secagg()) << site;
      ASSERT_OK_AND_ASSIGN(participants_[site], StartParticipant(site, task));
      v1::SiteMessage message;
      ASSERT_OK_AND_ASSIGN(*message.mutable_key_advertisement(),
                           participants_[site]->Advertisement());
      ASSERT_THAT(Send(site, message), IsOk());
    }
  }

  // Three-site rounds give each site 2 neighbours, below the default floor.
  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> StartParticipant(
      const std::string& site, const v1::TrainTask& task) {
    return secagg::SecAggParticipant::Start(
        task.admission(), task.spec().secagg(), secagg::SecAggFloor{2, 0.5}, site,
        parties_[site].key_pem, parties_[site].cert_pem, ca_->ca_cert_pem());
  }

  // The consistency check at every site in `sites`: each signs the survivor
  // set it was sent.
  void SignSurvivors(const std::vector<std::string>& sites) {
    for (const auto& site : sites) {
      v1::SiteMessage message;
      ASSERT_OK_AND_ASSIGN(
          *message.mutable_survivor_signature(),
          participants_[site]->SignSurvivors(Last(site, Kind::kSurvivorSet).survivor_set()));
      ASSERT_THAT(Send(site, message), IsOk());
    }
  }

  void Share(const std::vector<std::string>& sites) {
    for (const auto& site : sites) {
      v1::SiteMessage message;
      ASSERT_OK_AND_ASSIGN(*message.mutable_shares(), participants_[site]->OnPeerKeys(
                                                          Last(site, Kind::kPeerKeys).peer_keys()));
      ASSERT_THAT(Send(site, message), IsOk());
    }
  }

  // The site's local model for round `round`: global + its own delta.
  TensorBundle LocalModel(const std::string& site, const TensorBundle& global) {
    std::vector<float> values = FloatsOf(global);
    const int k = site.back() - '0';
    for (size_t i = 0; i < values.size(); ++i) values[i] += 0.01f * k * (i % 3 == 0 ? -1 : 1);
    return Model(values);
  }
  int64_t Examples(const std::string& site) const { return 20 * (site.back() - '0'); }

  void UploadMasked(const std::vector<std::string>& sites, int64_t run, int32_t round,
                    const TensorBundle& global) {
    for (const auto& site : sites) {
      ASSERT_THAT(
          participants_[site]->OnRelayedShares(Last(site, Kind::kRelayedShares).relayed_shares()),
          IsOk());
      ASSERT_OK_AND_ASSIGN(
          TensorBundle masked,
          participants_[site]->MaskUpdate(global, LocalModel(site, global), Examples(site)));
      ASSERT_THAT(Upload(site, run, round, masked, Examples(site)), IsOk()) << site;
    }
  }

  void Unmask(const std::vector<std::string>& sites) {
    for (const auto& site : sites) {
      v1::SiteMessage message;
      ASSERT_OK_AND_ASSIGN(
          *message.mutable_unmask_response(),
          participants_[site]->OnUnmaskRequest(Last(site, Kind::kUnmaskRequest).unmask_request()));
      ASSERT_THAT(Send(site, message), IsOk());
    }
  }

  // Weighted FedAvg of the sites' (unclipped: deltas are below the clip)
  // deltas, and the codec's documented bound for them.
  void ExpectFedAvgWithinBound(const TensorBundle& global, const TensorBundle& result,
                               const std::vector<std::string>& sites, int64_t max_examples,
                               int max_sites) {
    const std::vector<float> base = FloatsOf(global);
    const std::vector<float> got = FloatsOf(result);
    ASSERT_EQ(got.size(), base.size());
    double total_weight = 0;
    std::vector<double> sum(base.size(), 0);
    for (const auto& site : sites) {
      const double weight = std::min(1.0, static_cast<double>(Examples(site)) / max_examples);
      const std::vector<float> local = FloatsOf(LocalModel(site, global));
      for (size_t i = 0; i < base.size(); ++i) sum[i] += weight * (local[i] - base[i]);
      total_weight += weight;
    }
    secagg::QuantizationOptions quantization;
    quantization.clip = 0.5;
    quantization.max_sites = max_sites;
    ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
    const double bound = codec.ErrorBound(static_cast<int>(sites.size())) / total_weight + 1e-6;
    for (size_t i = 0; i < base.size(); ++i) {
      EXPECT_NEAR(got[i], base[i] + sum[i] / total_weight, bound) << "parameter " << i;
    }
  }

  std::unique_ptr<ProjectCa> ca_;
  std::vector<std::string> names_;
  std::map<std::string, IssuedParty> parties_;
  std::map<std::string, std::unique_ptr<secagg::SecAggParticipant>> participants_;
};

TEST_F(SecureRoundTest, RoundRunsEveryStepAndCommitsWeightedFedAvgWithinTheBound) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  const TensorBundle global = Model({0, 0, 0, 0, 0, 0});
  for (const auto& site : names_) {
    const v1::TrainTask task = Last(site, Kind::kTrain).train();
    ASSERT_TRUE(task.has_secagg());
    EXPECT_EQ(task.secagg().threshold(), 3) << "default: 2 * 4 neighbours / 3 + 1";
    EXPECT_EQ(task.secagg().neighbours(), 4) << "default: complete graph";
    EXPECT_EQ(task.secagg().max_sites(), 5);
    EXPECT_EQ(task.secagg().max_examples(), 100) << "largest train_examples said in hello";
    EXPECT_DOUBLE_EQ(task.secagg().clip(), 0.5);
    // The coordinator signs what it admits; the params are the ones it signed.
    EXPECT_THAT(secagg::VerifyAdmission(task.admission(), ca_->ca_cert_pem(), absl::Now()), IsOk());
    EXPECT_EQ(task.admission().attempt(), 1);
    EXPECT_THAT(task.admission().sites(), ::testing::ElementsAreArray(names_));
    EXPECT_EQ(task.admission().params().SerializeAsString(), task.secagg().SerializeAsString());
  }
  // No plaintext update is taken while keys are being exchanged.
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-1"), Metadata("site-1", run, 1, 20)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("advertising keys")));

  Advertise({"site-1", "site-2", "site-3", "site-4"});
  EXPECT_THAT(Channel("site-1").Of(Kind::kPeerKeys), IsEmpty()) << "site-5 has not advertised";
  EXPECT_THAT(Status(run).rounds(0).state(), HasSubstr("advertising keys"));
  Advertise({"site-5"});
  for (const auto& site : names_) {
    EXPECT_THAT(Channel(site).Of(Kind::kPeerKeys), SizeIs(1));
  }
  Share(names_);
  for (const auto& site : names_) {
    ASSERT_THAT(Channel(site).Of(Kind::kRelayedShares), SizeIs(1));
    EXPECT_THAT(Last(site, Kind::kRelayedShares).relayed_shares().shares(), SizeIs(4))
        << "one share from each other site";
  }
  // A plaintext float32 update no longer fits: only masked int32 words do.
  EXPECT_THAT(Upload("site-1", run, 1, global, 20),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int32")));
  UploadMasked(names_, run, 1, global);
  for (const auto& site : names_) {
    ASSERT_THAT(Channel(site).Of(Kind::kSurvivorSet), SizeIs(1));
    EXPECT_THAT(Channel(site).Of(Kind::kUnmaskRequest), IsEmpty()) << "not before signatures";
  }
  EXPECT_THAT(Status(run).rounds(0).state(), HasSubstr("checking survivors"));
  SignSurvivors(names_);
  for (const auto& site : names_) {
    ASSERT_THAT(Channel(site).Of(Kind::kUnmaskRequest), SizeIs(1));
    EXPECT_THAT(Last(site, Kind::kUnmaskRequest).unmask_request().dropped(), IsEmpty());
    EXPECT_THAT(Last(site, Kind::kUnmaskRequest).unmask_request().signatures(), SizeIs(5));
  }
  Unmask(names_);

  EXPECT_EQ(Status(run).phase(), "evaluating");
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadModel(run, 1));
  ExpectFedAvgWithinBound(global, result, names_, 100, 5);
}

TEST_F(SecureRoundTest, SiteThatDropsAfterSharingLeavesTheExactSumOfTheOthers) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  const TensorBundle global = Model({0, 0, 0, 0, 0, 0});
  Advertise(names_);
  Share(names_);
  Disconnect("site-3");
  const std::vector<std::string> survivors = {"site-1", "site-2", "site-4", "site-5"};
  UploadMasked(survivors, run, 1, global);
  SignSurvivors(survivors);
  const v1::UnmaskRequest request = Last("site-1", Kind::kUnmaskRequest).unmask_request();
  EXPECT_THAT(request.dropped(), ::testing::ElementsAre("site-3"));
  EXPECT_THAT(request.survivors(), SizeIs(4));
  Unmask(survivors);
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadModel(run, 1));
  ExpectFedAvgWithinBound(global, result, survivors, 100, 5);
  v1::RunStatus status = Status(run);
  ASSERT_THAT(status.rounds(), SizeIs(1));
  bool site3_dropped = false;
  for (const auto& part : status.rounds(0).sites()) {
    if (part.site() == "site-3") site3_dropped = part.state() == "dropped";
  }
  EXPECT_TRUE(site3_dropped);
}

TEST_F(SecureRoundTest, SurvivorLeavingDuringUnmaskingIsCoveredByTheOthersShares) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  const TensorBundle global = Model({0, 0, 0, 0, 0, 0});
  Advertise(names_);
  Share(names_);
  UploadMasked(names_, run, 1, global);
  Disconnect("site-5");  // its update is in the sum; 4 >= t reveal its self seed
  SignSurvivors({"site-1", "site-2", "site-3", "site-4"});
  Unmask({"site-1", "site-2", "site-3", "site-4"});
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadModel(run, 1));
  ExpectFedAvgWithinBound(global, result, names_, 100, 5);
}

TEST_F(SecureRoundTest, BelowThresholdTheRoundFailsCleanlyAndTheRunStops) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  Advertise(names_);
  Share(names_);
  // t = 3: three of five sites leave before uploading.
  Disconnect("site-3");
  Disconnect("site-4");
  Disconnect("site-5");
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(), HasSubstr("round 1"));
  size_t stored = 0;
  for (const auto& entry : std::filesystem::directory_iterator(models_->dir())) {
    stored += entry.is_regular_file();
  }
  EXPECT_EQ(stored, 1u) << "only the initial model; nothing of the round was kept";
  EXPECT_EQ(SpoolFileCount(), 0u);
}

TEST_F(SecureRoundTest, FailedRoundIsRetriedWithFreshKeysWhenConfigured) {
  v1::RunSpec spec = SecureSpec(1);
  spec.set_max_round_retries(1);
  spec.set_min_sites(3);
  const int64_t run = StartTraining(spec, names_);
  Advertise(names_);
  Share(names_);
  Disconnect("site-3");
  Disconnect("site-4");
  Disconnect("site-5");
  // Everyone who held the round's task hears it is abandoned...
  EXPECT_EQ(Last("site-1", Kind::kCancel).cancel().round(), 1);
  EXPECT_EQ(Status(run).state(), "running");
  // ...and the round starts afresh, with new keys, once enough sites are back.
  Channel("site-1").Clear();
  Connect("site-3");
  const std::vector<std::string> sites = {"site-1", "site-2", "site-3"};
  const TensorBundle global = Model({0, 0, 0, 0, 0, 0});
  ASSERT_THAT(Channel("site-1").Of(Kind::kTrain), SizeIs(1));
  EXPECT_EQ(Last("site-1", Kind::kTrain).train().secagg().max_sites(), 3);
  // A new attempt, with a nonce of its own.
  EXPECT_EQ(Last("site-1", Kind::kTrain).train().admission().attempt(), 2);
  Advertise(sites);
  Share(sites);
  UploadMasked(sites, run, 1, global);
  SignSurvivors(sites);
  Unmask(sites);
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadModel(run, 1));
  ExpectFedAvgWithinBound(global, result, sites, 100, 3);
}

TEST_F(SecureRoundTest, ForgedAdvertisementFailsTheRoundNamingTheSite) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  Advertise({"site-1", "site-2", "site-3", "site-4"});
  const v1::TrainTask task = Last("site-5", Kind::kTrain).train();
  ASSERT_OK_AND_ASSIGN(auto participant, StartParticipant("site-5", task));
  v1::SiteMessage message;
  ASSERT_OK_AND_ASSIGN(*message.mutable_key_advertisement(), participant->Advertisement());
  // Swapped after signing, as a man in the middle would.
  message.mutable_key_advertisement()->set_mask_public_key(std::string(32, '\x42'));
  EXPECT_THAT(Send("site-5", message),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-5")));
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(), HasSubstr("site 'site-5'"));
  EXPECT_THAT(Channel("site-1").Of(Kind::kPeerKeys), IsEmpty());
}

TEST_F(SecureRoundTest, ReportedProtocolViolationFailsTheRoundWithTheCulprit) {
  const int64_t run = StartTraining(SecureSpec(1), names_);
  Advertise(names_);
  Share(names_);
  v1::SiteMessage message;
  message.mutable_failure()->set_run_id(run);
  message.mutable_failure()->set_round(1);
  message.mutable_failure()->set_protocol_violation(true);
  message.mutable_failure()->set_reason(
      "secure aggregation: secret share from site 'site-4' failed authentication");
  ASSERT_THAT(Send("site-2", message), IsOk());
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(), HasSubstr("site 'site-2' reports"));
  EXPECT_THAT(status.error(), HasSubstr("secret share from site 'site-4' failed authentication"));
}

TEST_F(SecureRoundTest, SpecsThatCannotBeSecurelyAggregatedAreRefused) {
  struct Case {
    std::function<void(v1::RunSpec*)> mutate;
    const char* message;
  };
  const std::vector<Case> cases = {
      {[](v1::RunSpec* s) { s->set_strategy("median"); },
       "strategy 'median' needs each site's individual update"},
      {[](v1::RunSpec* s) { s->set_strategy("trimmed_mean"); },
       "strategy 'trimmed_mean' needs each site's individual update"},
      {[](v1::RunSpec* s) { s->set_strategy("krum"); },
       "strategy 'krum' needs each site's individual update"},
      {[](v1::RunSpec* s) { s->set_strategy("multikrum"); },
       "strategy 'multikrum' needs each site's individual update"},
      {[](v1::RunSpec* s) { s->set_min_sites(2); }, "min_sites of at least 3"},
      {[](v1::RunSpec* s) { s->mutable_secagg()->set_threshold(3); },
       "threshold must be between 2 and min_sites - 1"},
      {[](v1::RunSpec* s) { s->mutable_secagg()->set_neighbours(1); }, "neighbours must be"},
      {[](v1::RunSpec* s) { s->mutable_secagg()->set_clip(-1); }, "clip must be positive"},
  };
  for (const Case& c : cases) {
    v1::RunSpec spec = SecureSpec(1);
    c.mutate(&spec);
    EXPECT_THAT(federation_->StartRun(Admin(), spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << spec.ShortDebugString();
  }
  v1::RunSpec median = SecureSpec(1);
  median.set_strategy("median");
  median.set_secure_aggregation(false);
  EXPECT_THAT(federation_->StartRun(Admin(), median), IsOk()) << "median is fine in plaintext";
}

TEST_F(FederationTest, SecureAggregationNeedsTheProjectCa) {
  v1::RunSpec spec = Spec(1, 3);
  spec.set_secure_aggregation(true);
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs mutual TLS")));
}

}  // namespace
}  // namespace fedmi
