// SiteSession in secure rounds (client/site_secagg.cc), without sockets
// (site_session_fixture.h): the secure-aggregation cases play the coordinator
// with the real SecAggSession and SecAggAggregator, routing keys and sealed
// shares between sessions, and cheat where the site must notice.
#include "client/site_secagg.h"

#include <cmath>
#include <cstdio>

#include "common/privacy/gaussian_noise.h"
#include "common/tensor/bundle_transfer.h"
#include "coordinator/site_dp_aggregator.h"
#include "tests/client/site_session_fixture.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(SiteSessionTest, ForgedPeerKeyIsReportedAsAProtocolViolationNamingTheSite) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  // `identity` is site-4's now; the session under test is site-1.
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::RoundAdmission admission = Admission(1, names);
  ASSERT_OK_AND_ASSIGN(
      auto round, SecAggSession::Create(secagg::RoundIdOf(admission), admission.params(), names,
                                        ca_->ca_cert_pem()));
  site.session.Deliver(SecureTrainTask(1, admission));
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  auto join = absl::MakeCleanup([&] {
    site.session.Stop();
    task_thread.join();
  });

  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement());
  ASSERT_THAT(round->OnAdvertisement("site-1", site.link.sent()[0].key_advertisement(),
                                     parties_["site-1"].cert_pem),
              IsOk());
  std::vector<std::unique_ptr<secagg::SecAggParticipant>> peers;
  for (const std::string name : {"site-2", "site-3", "site-4"}) {
    ASSERT_OK_AND_ASSIGN(auto peer, StartPeer(name, admission));
    ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, peer->Advertisement());
    ASSERT_THAT(round->OnAdvertisement(name, ad, parties_[name].cert_pem), IsOk());
    peers.push_back(std::move(peer));
  }
  ASSERT_OK_AND_ASSIGN(v1::PeerKeys keys, round->ClosePeerKeys());
  // A cheating coordinator swaps in a mask key of its own for site-2.
  for (v1::KeyAdvertisement& ad : *keys.mutable_sites()) {
    if (ad.site() == "site-2") ad.set_mask_public_key(std::string(32, '\x42'));
  }
  v1::CoordinatorMessage message;
  *message.mutable_peer_keys() = keys;
  site.session.Deliver(message);

  ASSERT_TRUE(AwaitTrue([&] { return site.link.sent().size() >= 2; }));
  const v1::SiteMessage failure = site.link.sent()[1];
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(), StartsWith("secure aggregation: "));
  EXPECT_THAT(failure.failure().reason(), HasSubstr("site-2"));
  // Nothing was shared, downloaded or uploaded.
  EXPECT_EQ(site.link.sent().size(), 2u);
  EXPECT_EQ(site.link.downloads(), 0);
  EXPECT_TRUE(site.link.uploads().empty());
}

// Distributed site-level DP noise is sized for expected_sites shares. A
// cheating coordinator that admits five sites but relays the keys of only
// four (each CA-verified, so it cannot invent the fifth) would leave the sum
// short of one share: the site refuses before sharing anything.
TEST_F(SiteSessionTest, DistributedDpNoiseRefusesKeysFromFewerSitesThanItsSharesNeed) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4", "site-5"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::RoundAdmission admission = Admission(1, names);
  ASSERT_OK_AND_ASSIGN(
      auto round, SecAggSession::Create(secagg::RoundIdOf(admission), admission.params(), names,
                                        ca_->ca_cert_pem()));
  v1::CoordinatorMessage task = SecureTrainTask(1, admission);
  *task.mutable_train()->mutable_spec()->mutable_dp() =
      CompletedSiteDp(/*clip=*/0.01, /*noise_multiplier=*/1.0, v1::DP_NOISE_DISTRIBUTED,
                      /*expected_sites=*/5);
  site.session.Deliver(task);
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  auto join = absl::MakeCleanup([&] {
    site.session.Stop();
    task_thread.join();
  });

  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement())
      << site.link.sent()[0].ShortDebugString();
  ASSERT_THAT(round->OnAdvertisement("site-1", site.link.sent()[0].key_advertisement(),
                                     parties_["site-1"].cert_pem),
              IsOk());
  std::vector<std::unique_ptr<secagg::SecAggParticipant>> peers;
  for (const std::string name : {"site-2", "site-3", "site-4"}) {  // site-5's keys withheld
    ASSERT_OK_AND_ASSIGN(auto peer, StartPeer(name, admission));
    ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, peer->Advertisement());
    ASSERT_THAT(round->OnAdvertisement(name, ad, parties_[name].cert_pem), IsOk());
    peers.push_back(std::move(peer));
  }
  ASSERT_OK_AND_ASSIGN(v1::PeerKeys keys, round->ClosePeerKeys());
  ASSERT_EQ(keys.sites_size(), 4);
  v1::CoordinatorMessage message;
  *message.mutable_peer_keys() = keys;
  site.session.Deliver(message);

  ASSERT_TRUE(AwaitTrue([&] { return site.link.sent().size() >= 2; }));
  const v1::SiteMessage failure = site.link.sent()[1];
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(),
              AllOf(HasSubstr("only 4 sites advertised keys"), HasSubstr("shared among 5")));
  EXPECT_EQ(site.link.sent().size(), 2u) << "no share left the site";
  EXPECT_TRUE(site.link.uploads().empty());
}

TEST_F(SiteSessionTest, SecureRoundSumsTheSurvivorsWhenASiteDropsOutAfterSharing) {
  constexpr int32_t kRound = 2;
  // Five sites: 4 neighbours each and t = 3, so one may drop and t + 1 remain.
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4", "site-5"};
  const std::string dropout = "site-2";
  std::map<std::string, std::string> certs;
  std::map<std::string, std::unique_ptr<Site>> sites;
  ASSERT_NO_FATAL_FAILURE(EnrollSites(names, std::nullopt, &certs, &sites));
  const v1::RoundAdmission admission = Admission(kRound, names);
  const v1::SecAggParams& params = admission.params();
  ASSERT_OK_AND_ASSIGN(auto round, SecAggSession::Create(secagg::RoundIdOf(admission), params,
                                                         names, ca_->ca_cert_pem()));
  sites[dropout]->crash.Arm(FaultPoint::kSiteBeforeMaskedUpload);
  FakeSecAggCoordinator coordinator(std::move(round), certs);
  RunningSites running(sites, coordinator, kRound, global_, SecureTrainTask(kRound, admission));

  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::Open(dir_.Join("models")));
  ASSERT_OK_AND_ASSIGN(std::string global_path, WriteBundleFile(store->dir(), global_));
  secagg::QuantizationOptions quantization;
  quantization.clip = params.clip();
  quantization.max_sites = params.max_sites();
  ASSERT_OK_AND_ASSIGN(auto aggregator, SecAggAggregator::Create(quantization));
  ASSERT_THAT(aggregator->Begin(kRound, global_.specs, global_path), IsOk());
  std::set<std::string> uploaded;
  for (const std::string& name : names) {
    if (name == dropout) continue;
    ASSERT_TRUE(AwaitTrue([&] { return !sites[name]->link.uploads().empty(); })) << name;
    const FakeLink::ReceivedUpload upload = sites[name]->link.uploads()[0];
    EXPECT_EQ(upload.metadata.examples(), 100 * SyntheticSiteIndex(name));
    // The default policy withholds this site's own training metrics beside
    // its masked update; the example count stays, for the weight.
    EXPECT_FALSE(upload.metadata.has_train_metrics()) << name;
    ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), upload.bundle));
    ASSERT_OK_AND_ASSIGN(auto reader, BundleFileReader::Open(path));
    const double weight = static_cast<double>(upload.metadata.examples()) / params.max_examples();
    ASSERT_THAT(aggregator->Accept(name, weight, *reader), IsOk());
    uploaded.insert(name);
  }
  EXPECT_EQ(sites[dropout]->crash.crashed_in_round(), kRound);
  EXPECT_TRUE(sites[dropout]->link.uploads().empty());

  v1::UnmaskRequest request;
  ASSERT_OK_AND_ASSIGN(UnmaskingInput input, coordinator.CloseAndUnmask(uploaded, sites, &request));
  EXPECT_THAT(request.dropped(), ElementsAre(dropout));
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store, input));
  ASSERT_OK_AND_ASSIGN(std::string model_path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadBundleFile(model_path));

  // Survivors 1, 3, 4, 5 add k/256 with weight k/10: the mean delta is
  // (1 + 9 + 16 + 25) / (1 + 3 + 4 + 5) / 256 = (51 / 13) / 256. With site-2
  // it would be (55 / 15) / 256, far outside the codec's bound.
  ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
  const double bound = codec.ErrorBound(4) / 1.3 + 1e-6;
  ASSERT_LT(bound, (51.0 / 13 - 55.0 / 15) / 256);
  const std::vector<float> base = FloatsOf(global_);
  const std::vector<float> got = FloatsOf(result);
  ASSERT_EQ(got.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_NEAR(got[i], base[i] + (51.0 / 13) / 256, bound) << i;
  }
}

// Transfer learning in a secure round with site-level DP (central noise):
// each session trains the whole synthetic model (site-k adds k/256 to every
// element, the frozen backbone's included, as training moves frozen
// BatchNorm statistics), clips the change of the head alone to S, and masks
// the head alone towards its neighbours. The test is the coordinator: its
// real SecAggAggregator over the head sums the masked uploads, and the
// unmasked mean must be that of the head's changes clipped by their own
// norms. A clip measured over the whole model, or a mask over another
// tensor set, fails it.
TEST_F(SiteSessionTest, FrozenTensorsAreNeitherClippedWithNorMaskedInASecureSiteDpRound) {
  constexpr int32_t kRound = 1;
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4"};
  const TensorBundle global =
      FloatBundle({{"backbone.w", DType::kFloat32, {4}}, {"head.w", DType::kFloat32, {2}}},
                  {0.5f, -0.25f, 1, 2, 0.75f, -1.5f});
  ASSERT_OK_AND_ASSIGN(const TensorBundle head, SelectTensors(global, {"head.w"}));
  constexpr double kClip = 0.02;  // site-4's head moves by 0.0221, its model by 0.0383
  SitePolicy policy = SitePolicy::Defaults();
  policy.allowed_models = {"synthetic"};
  policy.allow_central_dp_noise = true;
  std::map<std::string, std::string> certs;
  std::map<std::string, std::unique_ptr<Site>> sites;
  ASSERT_NO_FATAL_FAILURE(EnrollSites(names, policy, &certs, &sites));
  const v1::RoundAdmission admission = Admission(kRound, names);
  const v1::SecAggParams& params = admission.params();
  ASSERT_OK_AND_ASSIGN(auto round, SecAggSession::Create(secagg::RoundIdOf(admission), params,
                                                         names, ca_->ca_cert_pem()));
  FakeSecAggCoordinator coordinator(std::move(round), certs);
  v1::CoordinatorMessage task = SecureTrainTask(kRound, admission);
  v1::RunSpec& spec = *task.mutable_train()->mutable_spec();
  spec.mutable_transfer()->add_freeze_prefixes("backbone.");
  *spec.mutable_dp() = CompletedSiteDp(kClip, /*noise_multiplier=*/1.0, v1::DP_NOISE_CENTRAL,
                                       /*expected_sites=*/4);
  RunningSites running(sites, coordinator, kRound, global, task);

  // The coordinator's aggregator of the round's trained tensors, with
  // central noise it draws from a seeded source.
  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::Open(dir_.Join("models")));
  ASSERT_OK_AND_ASSIGN(std::string head_path, WriteBundleFile(store->dir(), head));
  secagg::QuantizationOptions quantization;
  quantization.clip = params.clip();
  quantization.max_sites = params.max_sites();
  ASSERT_OK_AND_ASSIGN(auto aggregator, SecAggAggregator::Create(quantization));
  ASSERT_THAT(aggregator->Begin(kRound, head.specs, head_path), IsOk());
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(51);
  aggregator->UseSiteDp(SiteDpSum::ForRound(spec.dp(), kClip, noise.get()));
  std::set<std::string> uploaded;
  for (const std::string& name : names) {
    ASSERT_TRUE(AwaitTrue([&] { return !sites[name]->link.uploads().empty(); })) << name;
    const FakeLink::ReceivedUpload upload = sites[name]->link.uploads()[0];
    const std::vector<TensorSpec> masked_head = {{"head.w", DType::kInt32, {2}}};
    EXPECT_EQ(upload.bundle.specs, masked_head) << name << " masks the head alone";
    EXPECT_GT(upload.metadata.dp_epsilon_spent(), 0) << name;
    ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), upload.bundle));
    ASSERT_OK_AND_ASSIGN(auto reader, BundleFileReader::Open(path));
    ASSERT_THAT(aggregator->Accept(name, 1.0, *reader), IsOk()) << name;
    uploaded.insert(name);
  }
  v1::UnmaskRequest request;
  ASSERT_OK_AND_ASSIGN(UnmaskingInput input, coordinator.CloseAndUnmask(uploaded, sites, &request));
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store, input));
  ASSERT_OK_AND_ASSIGN(std::string model_path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadBundleFile(model_path));

  // Site k's head change (k, k) / 256 has norm sqrt(2) k / 256: sites 1-3
  // are within S = 0.02, site 4 is scaled to S. Measured over the whole
  // model (norm sqrt(6) k / 256), sites 3 and 4 would both be scaled, which
  // moves the mean by 2.4e-3 (0.0070 instead of 0.0094), far beyond the
  // codec's bound.
  double sum = 0;
  for (int k = 1; k <= 4; ++k) {
    sum += std::min(1.0, kClip / (std::sqrt(2.0) * k / 256)) * k / 256;
  }
  ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
  const double bound = codec.ErrorBound(4) / 4 + 1e-6;
  std::unique_ptr<privacy::NoiseSource> replay = privacy::MakeSeededNoiseSource(51);
  const double stddev = 1.0 * kClip;  // sigma S, drawn for the head's two elements only
  const std::vector<float> got = FloatsOf(result);
  ASSERT_EQ(got.size(), 2u);
  const std::vector<double> base = {0.75, -1.5};
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(got[i], base[i] + (sum + stddev * replay->Normal()) / 4, bound) << i;
  }
  std::printf(
      "head.w %.6f %.6f: mean clipped change %.6f (sites 1-3 whole, site-4 scaled by "
      "%.4f), codec bound %.2g\n",
      got[0], got[1], sum / 4, kClip / (std::sqrt(2.0) * 4 / 256), bound);
}

TEST_F(SiteSessionTest, SecureRoundBelowThePolicyFloorIsARefusalNotAViolation) {
  // Three sites give each 2 neighbours; the default policy wants 3.
  const std::vector<std::string> names = {"site-1", "site-2", "site-3"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  site.session.Deliver(SecureTrainTask(1, Admission(1, names)));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage refusal = site.link.sent()[0];
  ASSERT_TRUE(refusal.has_refusal()) << refusal.ShortDebugString();
  EXPECT_THAT(refusal.refusal().reason(),
              HasSubstr("site policy: secure aggregation would mask with 2 neighbours"));
  EXPECT_EQ(site.link.downloads(), 0);
}

TEST_F(SiteSessionTest, AdmissionReusingTheNonceOfACancelledAttemptIsAViolation) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::CoordinatorMessage task = SecureTrainTask(1, Admission(1, names));
  site.session.Deliver(task);
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement());
  // The attempt is abandoned while the site waits for the peer keys...
  site.session.Deliver(Cancel(1));
  task_thread.join();
  // ...and "retried" with the very same admission, so that the cancelled
  // attempt's advertisements and shares would count again.
  site.session.Deliver(task);
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  const v1::SiteMessage failure = site.link.sent().back();
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(), HasSubstr("reuses the nonce of an earlier attempt"));
  EXPECT_EQ(site.link.downloads(), 0);
}

}  // namespace
}  // namespace fedmi
