// Securely aggregated rounds through Federation and RoundManager, without
// sockets: each site is a real SecAggParticipant fed the messages its
// recording channel received, so the coordinator's step logic (who gets
// peer keys, relayed shares, unmask requests; dropouts; violations) runs as
// in a deployment.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include "common/privacy/dp_plan.h"
#include "common/provision/project_ca.h"
#include "common/secagg/secagg_participant.h"
#include "common/secagg/secagg_transcript.h"
#include "common/tensor/bundle_transfer.h"
#include "tests/common/privacy/dp_settings_fixture.h"
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

  // The site's local model for round `round`: global (all of it, or the
  // tensors the round trains) + its own delta.
  TensorBundle LocalModel(const std::string& site, const TensorBundle& global) {
    std::vector<float> values = FloatsOf(global);
    const int k = site.back() - '0';
    for (size_t i = 0; i < values.size(); ++i) values[i] += 0.01f * k * (i % 3 == 0 ? -1 : 1);
    return FloatBundle(global.specs, values);
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

// Transfer learning: a round with frozen tensors masks, sums and unmasks
// the trained ones only; the unmasked aggregate is the FedAvg of those, and
// the frozen ones come back bit for bit. A site that masks another tensor
// set than the round's (the whole model in a frozen round, the frozen
// round's subset after unfreezing) is refused, and the round goes on.
TEST_F(SecureRoundTest, FrozenTensorsStayOutOfTheMaskedSumAndComeBackUnchanged) {
  v1::RunSpec spec = SecureSpec(/*rounds=*/2);
  spec.mutable_transfer()->add_freeze_prefixes("fc.w");
  spec.mutable_transfer()->set_unfreeze_after_round(1);
  const TensorBundle initial = Model({0.25f, -0.5f, 0.75f, 1, 0.125f, -0.25f});
  const int64_t run = StartTraining(spec, names_, initial);
  ASSERT_OK_AND_ASSIGN(const TensorBundle trained, SelectTensors(initial, {"fc.bias"}));
  ASSERT_OK_AND_ASSIGN(const TensorBundle frozen, SelectTensors(initial, {"fc.weight"}));
  Advertise(names_);
  Share(names_);
  // site-1 masks the whole model (its frozen tensors unchanged) first.
  ASSERT_THAT(participants_["site-1"]->OnRelayedShares(
                  Last("site-1", Kind::kRelayedShares).relayed_shares()),
              IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle whole, participants_["site-1"]->MaskUpdate(
                                               initial, LocalModel("site-1", initial), 20));
  EXPECT_THAT(Upload("site-1", run, 1, whole, 20),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor #0 is named 'fc.weight', expected 'fc.bias'")));
  EXPECT_EQ(Status(run).state(), "running");
  ASSERT_OK_AND_ASSIGN(TensorBundle right, participants_["site-1"]->MaskUpdate(
                                               trained, LocalModel("site-1", trained), 20));
  ASSERT_THAT(Upload("site-1", run, 1, right, 20), IsOk());
  UploadMasked({"site-2", "site-3", "site-4", "site-5"}, run, 1, trained);
  SignSurvivors(names_);
  Unmask(names_);
  ASSERT_OK_AND_ASSIGN(TensorBundle first, ReadModel(run, 1));
  EXPECT_EQ(first.specs, ModelSpecs());
  ASSERT_OK_AND_ASSIGN(TensorBundle first_frozen, SelectTensors(first, {"fc.weight"}));
  EXPECT_EQ(first_frozen.body, frozen.body) << "frozen tensors come back bit for bit";
  ASSERT_OK_AND_ASSIGN(TensorBundle first_trained, SelectTensors(first, {"fc.bias"}));
  ExpectFedAvgWithinBound(trained, first_trained, names_, 100, 5);
  const std::vector<float> bias = FloatsOf(first_trained);
  std::printf("round 1: fc.bias %.6f %.6f from 0.125 -0.25 (FedAvg %.6f %.6f)\n", bias[0], bias[1],
              0.125 - 0.01 * 55.0 / 15, -0.25 + 0.01 * 55.0 / 15);

  for (const auto& site : names_) {
    ASSERT_THAT(Report(site, run, 1, EvalMetrics(20, 0.5, 0.75, 0.8)), IsOk()) << site;
  }
  ASSERT_THAT(Last("site-1", Kind::kTrain).train().round(), 2);
  Advertise(names_);
  Share(names_);
  // Round 2 trains everything: a mask over round 1's subset is refused.
  ASSERT_THAT(participants_["site-2"]->OnRelayedShares(
                  Last("site-2", Kind::kRelayedShares).relayed_shares()),
              IsOk());
  ASSERT_OK_AND_ASSIGN(const TensorBundle stale_global, SelectTensors(first, {"fc.bias"}));
  ASSERT_OK_AND_ASSIGN(
      TensorBundle stale,
      participants_["site-2"]->MaskUpdate(stale_global, LocalModel("site-2", stale_global), 40));
  EXPECT_THAT(Upload("site-2", run, 2, stale, 40),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor #0 is named 'fc.bias', expected 'fc.weight'")));
  ASSERT_OK_AND_ASSIGN(TensorBundle right2,
                       participants_["site-2"]->MaskUpdate(first, LocalModel("site-2", first), 40));
  ASSERT_THAT(Upload("site-2", run, 2, right2, 40), IsOk());
  UploadMasked({"site-1", "site-3", "site-4", "site-5"}, run, 2, first);
  SignSurvivors(names_);
  Unmask(names_);
  ASSERT_OK_AND_ASSIGN(TensorBundle second, ReadModel(run, 2));
  ExpectFedAvgWithinBound(first, second, names_, 100, 5);
}

// Site-level DP-FedAvg with distributed noise and a frozen prefix: every
// site weighs 1, the unmasked sum of the trained tensors is divided by the
// expected sites, the frozen ones come back bit for bit, and the run's
// epsilon is that of 5 contributing sites, as without freezing. (The sites
// here add no noise share of their own, so the sum is exact up to the
// codec.)
TEST_F(SecureRoundTest, SiteLevelDpDividesOnlyTheTrainedSumAndKeepsTheFrozenTensors) {
  v1::RunSpec spec = SecureSpec(/*rounds=*/1);
  spec.mutable_transfer()->add_freeze_prefixes("fc.w");
  *spec.mutable_dp() = CompletedSiteDp(/*clip=*/0.5, /*noise_multiplier=*/1.0,
                                       v1::DP_NOISE_DISTRIBUTED, /*expected_sites=*/5);
  spec.mutable_secagg()->clear_clip();  // wide enough for the sites' noise shares
  const TensorBundle initial = Model({0.25f, -0.5f, 0.75f, 1, 0.125f, -0.25f});
  const int64_t run = StartTraining(spec, names_, initial);
  ASSERT_OK_AND_ASSIGN(const TensorBundle trained, SelectTensors(initial, {"fc.bias"}));
  const double clip = Last("site-1", Kind::kTrain).train().secagg().clip();
  Advertise(names_);
  Share(names_);
  for (const auto& site : names_) {
    ASSERT_THAT(
        participants_[site]->OnRelayedShares(Last(site, Kind::kRelayedShares).relayed_shares()),
        IsOk());
    ASSERT_OK_AND_ASSIGN(TensorBundle masked, participants_[site]->MaskUpdate(
                                                  trained, LocalModel(site, trained),
                                                  Examples(site), secagg::Weighting::kUniform));
    v1::UpdateMetadata metadata = Metadata(site, run, 1, Examples(site));
    metadata.set_dp_epsilon_spent(0.5);
    ASSERT_OK_AND_ASSIGN(ExpectedUpload expected,
                         federation_->BeginUpload(SiteCaller(site), metadata));
    // Masked words say nothing about values: nothing to scan them against.
    EXPECT_THAT(expected.global_model_path, IsEmpty()) << site;
    ASSERT_OK_AND_ASSIGN(ReceivedUpdate update, Spool(metadata, masked));
    ASSERT_THAT(federation_->CompleteUpload(SiteCaller(site), std::move(update)), IsOk()) << site;
  }
  SignSurvivors(names_);
  Unmask(names_);
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadModel(run, 1));
  ASSERT_OK_AND_ASSIGN(TensorBundle result_frozen, SelectTensors(result, {"fc.weight"}));
  ASSERT_OK_AND_ASSIGN(TensorBundle frozen, SelectTensors(initial, {"fc.weight"}));
  EXPECT_EQ(result_frozen.body, frozen.body) << "frozen tensors come back bit for bit";
  // Deltas -0.01 k and +0.01 k of sites 1..5 sum to -/+0.15.
  secagg::QuantizationOptions quantization;
  quantization.clip = clip;
  quantization.max_sites = 5;
  ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
  const double bound = codec.ErrorBound(5) / 5 + 1e-6;
  const std::vector<float> got = FloatsOf(result);
  EXPECT_NEAR(got[4], 0.125 - 0.15 / 5, bound);
  EXPECT_NEAR(got[5], -0.25 + 0.15 / 5, bound);
  std::printf("site-level DP round: fc.bias %.6f %.6f, want %.6f %.6f within %.2g\n", got[4],
              got[5], 0.125 - 0.03, -0.25 + 0.03, bound);
  const v1::RunStatus status = Status(run);
  ASSERT_OK_AND_ASSIGN(privacy::PrivacySpent spent, privacy::EpsilonOfRounds(spec.dp(), {5}));
  EXPECT_EQ(status.privacy().rounds_accounted(), 1);
  EXPECT_DOUBLE_EQ(status.privacy().epsilon_spent(), spent.epsilon);
}

TEST_F(FederationTest, SecureAggregationNeedsTheProjectCa) {
  v1::RunSpec spec = Spec(1, 3);
  spec.set_secure_aggregation(true);
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs mutual TLS")));
}

}  // namespace
}  // namespace fedmi
