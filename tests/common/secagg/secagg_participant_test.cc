#include "common/secagg/secagg_participant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/provision/project_ca.h"
#include "common/secagg/secagg.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace secagg {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int64_t kRun = 7;
constexpr int32_t kRound = 3;
constexpr int kSites = 5;

// The coordinator's unmasking request of this round, without signatures.
v1::UnmaskRequest UnmaskRequestFor(const std::vector<std::string>& survivors,
                                   const std::vector<std::string>& dropped) {
  v1::UnmaskRequest request;
  request.set_run_id(kRun);
  request.set_round(kRound);
  request.set_attempt(1);
  for (const std::string& site : survivors) request.add_survivors(site);
  for (const std::string& site : dropped) request.add_dropped(site);
  return request;
}

std::vector<uint32_t> WordsOf(const TensorBundle& bundle) {
  std::vector<uint32_t> words(bundle.body.size() / sizeof(uint32_t));
  std::memcpy(words.data(), bundle.body.data(), bundle.body.size());
  return words;
}

v1::SurvivorSet SurvivorSetOf(const std::vector<std::string>& survivors) {
  v1::SurvivorSet set;
  set.set_run_id(kRun);
  set.set_round(kRound);
  set.set_attempt(1);
  for (const std::string& site : survivors) set.add_survivors(site);
  return set;
}

// Lets sparse test graphs (2 neighbours) through; the default floor is
// tested on its own.
SecAggFloor PermissiveFloor() { return SecAggFloor{2, 0.5}; }

// Five sites with certificates from a throwaway project CA, and a hand-written
// relay standing in for the coordinator.
class SecAggParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(scratch_.path(), "t"));
    ASSERT_OK_AND_ASSIGN(coordinator_, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    for (int i = 0; i < kSites; ++i) {
      ASSERT_OK_AND_ASSIGN(IssuedParty party,
                           ca_->Issue("site-" + std::to_string(i), PartyRole::kSite, {}));
      parties_.push_back(party);
    }
    specs_ = {TensorSpec{"fc.weight", DType::kFloat32, {4, 50}},
              TensorSpec{"fc.bias", DType::kFloat32, {50}}};
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> weights(-1.0f, 1.0f);
    std::uniform_real_distribution<float> deltas(-0.3f, 0.3f);
    global_.resize(250);
    for (float& v : global_) v = weights(rng);
    for (int i = 0; i < kSites; ++i) {
      std::vector<float> local = global_;
      for (float& v : local) v += deltas(rng);
      locals_.push_back(local);
      examples_.push_back(200 * (i + 1));
    }
  }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const IssuedParty& party : parties_) names.push_back(party.name);
    return names;
  }

  // The coordinator admits every site to attempt `attempt` and each starts.
  void StartAll(const v1::SecAggSettings& settings, int32_t attempt = 1) {
    settings_ = settings;
    admission_ =
        SignedAdmission(coordinator_, TestRoundId(kRun, kRound, attempt), Names(), settings);
    params_ = admission_.params();
    participants_.clear();
    for (const IssuedParty& party : parties_) {
      ASSERT_OK_AND_ASSIGN(auto participant, Start(party));
      participants_.push_back(std::move(participant));
    }
  }

  absl::StatusOr<std::unique_ptr<SecAggParticipant>> Start(
      const IssuedParty& party, SecAggFloor floor = PermissiveFloor()) const {
    return SecAggParticipant::Start(admission_, settings_, floor, party.name, party.key_pem,
                                    party.cert_pem, ca_->ca_cert_pem());
  }

  // The consistency check as an honest coordinator runs it: the sites of
  // `survivors` sign the set, and the request carries their signatures.
  v1::UnmaskRequest SignedUnmaskRequest(const std::vector<int>& survivors,
                                        const std::vector<int>& dropped) {
    std::vector<std::string> survivor_names, dropped_names;
    for (int i : survivors) survivor_names.push_back(parties_[i].name);
    for (int i : dropped) dropped_names.push_back(parties_[i].name);
    v1::UnmaskRequest request = UnmaskRequestFor(survivor_names, dropped_names);
    request.set_attempt(admission_.attempt());
    v1::SurvivorSet set = SurvivorSetOf(survivor_names);
    set.set_attempt(admission_.attempt());
    for (int i : survivors) {
      absl::StatusOr<v1::SurvivorSignature> signature = participants_[i]->SignSurvivors(set);
      EXPECT_THAT(signature, IsOk());
      if (signature.ok()) *request.add_signatures() = *signature;
    }
    return request;
  }

  // The coordinator's step 1: advertisements with certificates from "TLS",
  // sorted by site, and the graph seed.
  v1::PeerKeys CollectPeerKeys() {
    v1::PeerKeys peers;
    peers.set_run_id(kRun);
    peers.set_round(kRound);
    peers.set_attempt(admission_.attempt());
    *peers.mutable_params() = params_;
    for (int i = 0; i < kSites; ++i) {
      absl::StatusOr<v1::KeyAdvertisement> ad = participants_[i]->Advertisement();
      EXPECT_THAT(ad, IsOk());
      EXPECT_TRUE(ad->certificate_pem().empty());
      ad->set_certificate_pem(parties_[i].cert_pem);
      *peers.add_sites() = *ad;
    }
    ReseedGraph(&peers);
    return peers;
  }

  static void ReseedGraph(v1::PeerKeys* peers) {
    std::vector<v1::KeyAdvertisement> ads(peers->sites().begin(), peers->sites().end());
    peers->set_graph_seed(GraphSeed(ads));
  }

  // Steps 2-3: every site answers the peer keys; the relay routes each share
  // to its recipient. Returns the bundle each recipient gets.
  std::map<std::string, v1::ShareBundle> ShareAll(const v1::PeerKeys& peers) {
    std::map<std::string, v1::ShareBundle> inbox;
    for (int i = 0; i < kSites; ++i) {
      absl::StatusOr<v1::ShareBundle> out = participants_[i]->OnPeerKeys(peers);
      EXPECT_THAT(out, IsOk());
      if (!out.ok()) continue;
      EXPECT_EQ(out->shares_size(), static_cast<int>(participants_[i]->neighbours().size()));
      for (const v1::EncryptedShare& share : out->shares()) {
        EXPECT_EQ(share.sender(), parties_[i].name);
        v1::ShareBundle& bundle = inbox[share.recipient()];
        bundle.set_run_id(kRun);
        bundle.set_round(kRound);
        bundle.set_attempt(admission_.attempt());
        *bundle.add_shares() = share;
      }
    }
    return inbox;
  }

  // A whole round in which the sites in `dropped` vanish after sharing; checks
  // that the unmasked sum equals the weighted sum of the survivors' deltas.
  void RunRoundAndCheck(const v1::SecAggSettings& settings, const std::set<int>& dropped) {
    StartAll(settings);
    const v1::SecAggParams params = params_;
    const v1::PeerKeys peers = CollectPeerKeys();
    std::map<std::string, v1::ShareBundle> inbox = ShareAll(peers);
    for (int i = 0; i < kSites; ++i) {
      ASSERT_THAT(participants_[i]->OnRelayedShares(inbox[parties_[i].name]), IsOk());
    }

    ASSERT_OK_AND_ASSIGN(std::vector<std::vector<int>> graph,
                         NeighbourGraph(kSites, params.neighbours(), peers.graph_seed()));
    for (int i = 0; i < kSites; ++i) {
      EXPECT_EQ(participants_[i]->index(), i);
      EXPECT_EQ(participants_[i]->sites()[i], parties_[i].name);
      EXPECT_THAT(participants_[i]->neighbours(), ElementsAreArray(graph[i]));
      EXPECT_THAT(participants_[i]->SharingNeighbours(), ElementsAreArray(graph[i]));
    }

    // Step 4: survivors upload; the coordinator sums mod 2^32.
    const size_t count = global_.size();
    std::vector<uint32_t> sum(count, 0);
    std::vector<double> expected(count, 0.0);
    std::vector<int> survivors;
    std::vector<int> dropped_list(dropped.begin(), dropped.end());
    for (int i = 0; i < kSites; ++i) {
      if (dropped.count(i) > 0) continue;
      survivors.push_back(i);
      ASSERT_OK_AND_ASSIGN(TensorBundle masked, participants_[i]->MaskUpdate(
                                                    FloatBundle(specs_, global_),
                                                    FloatBundle(specs_, locals_[i]), examples_[i]));
      const std::vector<uint32_t> words = WordsOf(masked);
      ASSERT_EQ(words.size(), count);
      const double weight = participants_[i]->Weight(examples_[i]);
      EXPECT_DOUBLE_EQ(weight, std::min(1.0, examples_[i] / 1000.0));
      for (size_t e = 0; e < count; ++e) {
        sum[e] += words[e];
        expected[e] += weight * (static_cast<double>(locals_[i][e]) - global_[e]);
      }
    }

    // Steps 5-6: survivors sign the survivor set, then reveal shares; the
    // coordinator reconstructs.
    const v1::UnmaskRequest request = SignedUnmaskRequest(survivors, dropped_list);
    std::map<std::string, std::vector<Share>> seed_shares;
    std::map<std::string, std::vector<Share>> key_shares;
    for (int i : survivors) {
      ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response, participants_[i]->OnUnmaskRequest(request));
      for (const v1::RevealedShare& revealed : response.shares()) {
        ASSERT_OK_AND_ASSIGN(Share share, ParseShare(revealed.share()));
        // x = the holder's index + 1.
        EXPECT_EQ(share.x, i + 1);
        const bool owner_dropped = std::find(request.dropped().begin(), request.dropped().end(),
                                             revealed.owner()) != request.dropped().end();
        EXPECT_EQ(revealed.self_seed(), !owner_dropped) << revealed.owner();
        (revealed.self_seed() ? seed_shares : key_shares)[revealed.owner()].push_back(share);
      }
    }
    std::vector<std::string> mask_public_keys;
    for (const v1::KeyAdvertisement& ad : peers.sites()) {
      mask_public_keys.push_back(ad.mask_public_key());
    }
    UnmaskingSecrets secrets;
    secrets.self_seed = [&](int survivor) -> absl::StatusOr<std::string> {
      return ShamirReconstruct(seed_shares[parties_[survivor].name], params.threshold());
    };
    secrets.pairwise_seed = [&](int gone, int survivor) -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(std::string mask_key,
                       ShamirReconstruct(key_shares[parties_[gone].name], params.threshold()));
      ASSIGN_OR_RETURN(std::string secret, AgreeSharedSecret(mask_key, mask_public_keys[survivor]));
      return DerivePairwiseMaskSeed(secret, participants_[0]->round_id());
    };
    ASSERT_THAT(RemoveMasks(graph, survivors, dropped_list, secrets, sum.data(), count), IsOk());

    QuantizationOptions options;
    options.clip = params.clip();
    options.max_sites = params.max_sites();
    ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create(options));
    std::vector<double> decoded(count);
    const int n = static_cast<int>(survivors.size());
    ASSERT_THAT(codec.Decode(sum.data(), count, n, decoded.data()), IsOk());
    // Codec bound plus float32 rounding of the deltas.
    const double bound = codec.ErrorBound(n) + 1e-6;
    for (size_t e = 0; e < count; ++e) {
      ASSERT_NEAR(decoded[e], expected[e], bound) << "element " << e;
    }
  }

  ScratchDir scratch_;
  std::unique_ptr<ProjectCa> ca_;
  IssuedParty coordinator_;
  std::vector<IssuedParty> parties_;
  v1::SecAggSettings settings_;
  v1::RoundAdmission admission_;
  v1::SecAggParams params_;
  std::vector<std::unique_ptr<SecAggParticipant>> participants_;
  std::vector<TensorSpec> specs_;
  std::vector<float> global_;
  std::vector<std::vector<float>> locals_;
  std::vector<int64_t> examples_;
};

TEST_F(SecAggParticipantTest, RoundWithoutDropoutOnCompleteGraph) {
  RunRoundAndCheck(Settings(3, 4), {});
}

TEST_F(SecAggParticipantTest, RoundWithoutDropoutOnSparseGraph) {
  RunRoundAndCheck(Settings(2, 2), {});
}

TEST_F(SecAggParticipantTest, SiteDroppingAfterSharingIsUnmaskedFromItsMaskKey) {
  RunRoundAndCheck(Settings(3, 4), {2});
}

TEST_F(SecAggParticipantTest, GraphSeedIsHashOfAdvertisementsInOrder) {
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  std::vector<v1::KeyAdvertisement> ads(peers.sites().begin(), peers.sites().end());
  const std::string seed = GraphSeed(ads);
  EXPECT_EQ(seed.size(), kKeySize);
  std::swap(ads[0], ads[1]);
  EXPECT_NE(GraphSeed(ads), seed);
  // The signature and certificate are not part of it.
  ads = std::vector<v1::KeyAdvertisement>(peers.sites().begin(), peers.sites().end());
  ads[0].clear_certificate_pem();
  ads[0].clear_signature();
  EXPECT_EQ(GraphSeed(ads), seed);

  peers.set_graph_seed(std::string(kKeySize, 'x'));
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("graph seed")));
}

TEST_F(SecAggParticipantTest, AdvertisementSignedByAnotherSiteIsRefused) {
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  v1::KeyAdvertisement* ad = peers.mutable_sites(3);
  ASSERT_OK_AND_ASSIGN(
      std::string forged,
      SignKeyAdvertisement(parties_[4].key_pem, participants_[0]->round_id(), ad->site(),
                           ad->cipher_public_key(), ad->mask_public_key()));
  ad->set_signature(forged);
  EXPECT_THAT(
      VerifyAdvertisement(*ad, participants_[0]->round_id(), ca_->ca_cert_pem(), absl::Now()),
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr("key advertisement of site 'site-3' has a bad signature")));
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site 'site-3'")));
}

TEST_F(SecAggParticipantTest, MaskKeySwappedAfterSigningIsRefused) {
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  ASSERT_OK_AND_ASSIGN(KeyPair coordinator_keys, GenerateKeyPair());
  peers.mutable_sites(3)->set_mask_public_key(coordinator_keys.public_key);
  ReseedGraph(&peers);  // a consistent seed: only the signature can catch it
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("key advertisement of site 'site-3' has a bad signature")));
  // Nothing was shared, so a correct retry still works.
  EXPECT_THAT(participants_[0]->OnPeerKeys(CollectPeerKeys()), IsOk());
}

TEST_F(SecAggParticipantTest, AdvertisementWithAnotherSitesCertificateIsRefused) {
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  peers.mutable_sites(3)->set_certificate_pem(parties_[4].cert_pem);
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-3' has an unacceptable certificate: certificate "
                                 "'site-4' does not name 'site-3'")));
}

TEST_F(SecAggParticipantTest, AdvertisementFromForeignCaIsRefused) {
  ScratchDir other_dir;
  ASSERT_OK_AND_ASSIGN(auto other_ca, ProjectCa::Create(other_dir.path(), "other"));
  ASSERT_OK_AND_ASSIGN(IssuedParty impostor, other_ca->Issue("site-3", PartyRole::kSite, {}));
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  v1::KeyAdvertisement* ad = peers.mutable_sites(3);
  ASSERT_OK_AND_ASSIGN(
      std::string signature,
      SignKeyAdvertisement(impostor.key_pem, participants_[0]->round_id(), ad->site(),
                           ad->cipher_public_key(), ad->mask_public_key()));
  ad->set_signature(signature);
  ad->set_certificate_pem(impostor.cert_pem);
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-3' has an unacceptable certificate: certificate "
                                 "'site-3' was not issued by project CA")));
}

TEST_F(SecAggParticipantTest, RefusesTooFewSitesOrMissingSelf) {
  StartAll(Settings(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  v1::PeerKeys two = peers;
  two.mutable_sites()->DeleteSubrange(2, 3);
  ReseedGraph(&two);
  EXPECT_THAT(participants_[0]->OnPeerKeys(two),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("threshold")));
  v1::PeerKeys without_me = peers;
  without_me.mutable_sites()->DeleteSubrange(0, 1);
  ReseedGraph(&without_me);
  EXPECT_THAT(participants_[0]->OnPeerKeys(without_me),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing")));
  v1::PeerKeys wrong_round = peers;
  wrong_round.set_round(kRound + 1);
  EXPECT_THAT(participants_[0]->OnPeerKeys(wrong_round),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("round")));
}

TEST_F(SecAggParticipantTest, CorruptedShareIsDataLossNamingSender) {
  StartAll(Settings(3, 4));
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  v1::ShareBundle bundle = inbox["site-0"];
  bool corrupted = false;
  for (v1::EncryptedShare& share : *bundle.mutable_shares()) {
    if (share.sender() == "site-2") {
      std::string* ciphertext = share.mutable_ciphertext();
      (*ciphertext)[ciphertext->size() / 2] ^= 0x01;
      corrupted = true;
    }
  }
  ASSERT_TRUE(corrupted);
  EXPECT_THAT(participants_[0]->OnRelayedShares(bundle),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("secret share from site 'site-2' failed authentication")));
  // Nothing was kept; the intact bundle is then accepted.
  EXPECT_TRUE(participants_[0]->SharingNeighbours().empty());
  EXPECT_THAT(participants_[0]->OnRelayedShares(inbox["site-0"]), IsOk());
  EXPECT_EQ(participants_[0]->SharingNeighbours().size(), 4u);
}

TEST_F(SecAggParticipantTest, ShareForAnotherSiteOrFromNonNeighbourIsRefused) {
  StartAll(Settings(2, 2));
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  // site-1's share handed to site-0.
  v1::ShareBundle misrouted = inbox["site-1"];
  EXPECT_THAT(participants_[0]->OnRelayedShares(misrouted),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("addressed to")));
  // With k = 2 of 5 sites, site-0 has two non-neighbours.
  const std::vector<int>& mine = participants_[0]->neighbours();
  int stranger = -1;
  for (int j = 1; j < kSites && stranger < 0; ++j) {
    if (std::find(mine.begin(), mine.end(), j) == mine.end()) stranger = j;
  }
  ASSERT_GE(stranger, 0);
  v1::ShareBundle spoofed = inbox["site-0"];
  spoofed.mutable_shares(0)->set_sender(parties_[stranger].name);
  EXPECT_THAT(participants_[0]->OnRelayedShares(spoofed),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("'" + parties_[stranger].name + "', which is not a neighbour")));
}

TEST_F(SecAggParticipantTest, NeverRevealsBothSecretsOfOneSite) {
  StartAll(Settings(3, 4));
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  for (int i = 0; i < kSites; ++i) {
    ASSERT_THAT(participants_[i]->OnRelayedShares(inbox[parties_[i].name]), IsOk());
  }
  v1::UnmaskRequest both = SignedUnmaskRequest({0, 1, 2, 3}, {4});
  both.add_dropped("site-1");
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(both),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site-1")));

  const v1::UnmaskRequest first = SignedUnmaskRequest({0, 1, 2, 3}, {4});
  ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response, participants_[0]->OnUnmaskRequest(first));
  // Seed shares of 1, 2, 3 (its own is not held by site-0) and the mask key
  // share of the dropped site-4.
  ASSERT_EQ(response.shares_size(), 4);
  for (const v1::RevealedShare& share : response.shares()) {
    EXPECT_EQ(share.self_seed(), share.owner() != "site-4") << share.owner();
  }
  // Asking again for the same secrets is harmless.
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(first), IsOk());
}

TEST_F(SecAggParticipantTest, StartRefusesCertificateOfAnotherSite) {
  StartAll(Settings(3, 4));
  IssuedParty wrong_key = parties_[0];
  wrong_key.key_pem = parties_[1].key_pem;
  EXPECT_THAT(Start(wrong_key), StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-0")));
  IssuedParty wrong_cert = parties_[0];
  wrong_cert.cert_pem = parties_[1].cert_pem;
  EXPECT_THAT(Start(wrong_cert),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-0")));
}

TEST_F(SecAggParticipantTest, MaskUpdateNeedsSharesAndPositiveExamples) {
  StartAll(Settings(3, 4));
  EXPECT_THAT(participants_[0]->MaskUpdate(FloatBundle(specs_, global_),
                                           FloatBundle(specs_, locals_[0]), 100),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("peer keys")));
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  EXPECT_THAT(participants_[0]->MaskUpdate(FloatBundle(specs_, global_),
                                           FloatBundle(specs_, locals_[0]), 100),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("threshold")));
  ASSERT_THAT(participants_[0]->OnRelayedShares(inbox["site-0"]), IsOk());
  EXPECT_THAT(participants_[0]->MaskUpdate(FloatBundle(specs_, global_),
                                           FloatBundle(specs_, locals_[0]), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("example")));
  EXPECT_DOUBLE_EQ(participants_[0]->Weight(5000), 1.0);
  EXPECT_DOUBLE_EQ(participants_[0]->Weight(250), 0.25);
  EXPECT_DOUBLE_EQ(participants_[0]->Weight(0), 0.0);
}

// --- The malicious coordinator ------------------------------------------------
// Each test plays a coordinator that breaks the protocol to learn one site's
// update (issue 11's attacks a-e) and shows the honest sites refuse, naming
// why. docs/secure-aggregation.md states the guarantee these back.

TEST_F(SecAggParticipantTest, AttackSplitSurvivorListsRevealsNoSecondSecret) {
  StartAll(Settings(0, 0));  // defaults: 4 neighbours, t = 3
  ASSERT_EQ(params_.threshold(), 3);
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  for (int i = 0; i < kSites; ++i) {
    ASSERT_THAT(participants_[i]->OnRelayedShares(inbox[parties_[i].name]), IsOk());
  }
  // The lie: site-4 "survived" for sites 0, 1 and 4 (so that they reveal its
  // self-mask seed) and "dropped" for sites 2 and 3 (so that they reveal its
  // mask key). Each honest site signs the one story it was told.
  const v1::SurvivorSet all = SurvivorSetOf(Names());
  const v1::SurvivorSet without_4 = SurvivorSetOf({"site-0", "site-1", "site-2", "site-3"});
  std::vector<v1::SurvivorSignature> signatures;
  for (int i : {0, 1, 4}) {
    ASSERT_OK_AND_ASSIGN(v1::SurvivorSignature signature, participants_[i]->SignSurvivors(all));
    signatures.push_back(signature);
  }
  for (int i : {2, 3}) {
    ASSERT_OK_AND_ASSIGN(v1::SurvivorSignature signature,
                         participants_[i]->SignSurvivors(without_4));
    signatures.push_back(signature);
  }
  // A site signs one story per attempt.
  EXPECT_THAT(participants_[2]->SignSurvivors(all),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("refusing to sign a second, different survivor set")));

  // Asking site-2 for site-4's mask key: only 2 signatures (its own and
  // site-3's) are over the set it signed, fewer than t.
  v1::UnmaskRequest for_mask_key =
      UnmaskRequestFor({"site-0", "site-1", "site-2", "site-3"}, {"site-4"});
  for (const auto& signature : signatures) *for_mask_key.add_signatures() = signature;
  for (int i : {2, 3}) {
    EXPECT_THAT(participants_[i]->OnUnmaskRequest(for_mask_key),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         HasSubstr("carries 2 valid survivor signatures over the set this site "
                                   "signed, fewer than the threshold 3")));
  }
  // Nor does a request over the other story work for them: it is not the set
  // they signed.
  v1::UnmaskRequest for_seed = UnmaskRequestFor(Names(), {});
  for (const auto& signature : signatures) *for_seed.add_signatures() = signature;
  EXPECT_THAT(
      participants_[2]->OnUnmaskRequest(for_seed),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not the 4 this site signed")));
  // The coordinator ends with at most the self-seed shares of site-4 from
  // sites 0 and 1 (site-4 holds none of its own) and no mask-key share: site
  // 4's masked update stays masked.
  int seed_shares_of_4 = 0;
  for (int i : {0, 1}) {
    ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response, participants_[i]->OnUnmaskRequest(for_seed));
    for (const auto& share : response.shares()) {
      if (share.owner() == "site-4") {
        EXPECT_TRUE(share.self_seed());
        ++seed_shares_of_4;
      }
    }
  }
  EXPECT_EQ(seed_shares_of_4, 2);
}

TEST_F(SecAggParticipantTest, AttackFakePeerSignedWithCoordinatorAdminOrAuditorKeyIsRefused) {
  ASSERT_OK_AND_ASSIGN(IssuedParty admin, ca_->Issue("admin-1", PartyRole::kAdmin, {}));
  ASSERT_OK_AND_ASSIGN(IssuedParty auditor, ca_->Issue("auditor-1", PartyRole::kAuditor, {}));
  for (const IssuedParty& impostor : {coordinator_, admin, auditor}) {
    SCOPED_TRACE(impostor.name);
    // The coordinator admits its fake peer beside the real sites and signs
    // the fake's advertisement with a key it holds.
    std::vector<std::string> names = Names();
    names.push_back(impostor.name);
    std::sort(names.begin(), names.end());
    settings_ = Settings(0, 0);
    admission_ = SignedAdmission(coordinator_, TestRoundId(kRun, kRound), names, settings_);
    params_ = admission_.params();
    participants_.clear();
    for (const IssuedParty& party : parties_) {
      ASSERT_OK_AND_ASSIGN(auto participant, Start(party));
      participants_.push_back(std::move(participant));
    }
    SecAggParticipant* target = participants_[0].get();
    ASSERT_OK_AND_ASSIGN(KeyPair cipher, GenerateKeyPair());
    ASSERT_OK_AND_ASSIGN(KeyPair mask, GenerateKeyPair());
    v1::KeyAdvertisement fake;
    fake.set_run_id(kRun);
    fake.set_round(kRound);
    fake.set_attempt(1);
    fake.set_nonce(admission_.nonce());
    fake.set_site(impostor.name);
    fake.set_cipher_public_key(cipher.public_key);
    fake.set_mask_public_key(mask.public_key);
    ASSERT_OK_AND_ASSIGN(std::string signature,
                         SignKeyAdvertisement(impostor.key_pem, target->round_id(), impostor.name,
                                              cipher.public_key, mask.public_key));
    fake.set_signature(signature);
    fake.set_certificate_pem(impostor.cert_pem);
    ASSERT_THAT(VerifyKeyAdvertisement(impostor.cert_pem, target->round_id(), impostor.name,
                                       cipher.public_key, mask.public_key, signature),
                IsOk());  // the signature itself is sound: only the role gives it away

    v1::PeerKeys peers = CollectPeerKeys();
    std::vector<v1::KeyAdvertisement> ads(peers.sites().begin(), peers.sites().end());
    ads.push_back(fake);
    std::sort(ads.begin(), ads.end(),
              [](const auto& a, const auto& b) { return a.site() < b.site(); });
    peers.clear_sites();
    for (const auto& ad : ads) *peers.add_sites() = ad;
    ReseedGraph(&peers);
    EXPECT_THAT(target->OnPeerKeys(peers),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         AllOf(HasSubstr("key advertisement of site '" + impostor.name + "'"),
                               HasSubstr("role, not site"))));
  }
}

TEST_F(SecAggParticipantTest, AttackThresholdOneOrSinglePeerIsRefused) {
  const SecAggFloor floor;  // the default: 3 neighbours, t > 2/3 of them
  // The coordinator lowers t to 1 in a correctly signed admission.
  settings_ = Settings(0, 0);
  admission_ = SignedAdmission(coordinator_, TestRoundId(kRun, kRound), Names(), settings_);
  admission_.mutable_params()->set_threshold(1);
  ASSERT_THAT(SignAdmission(coordinator_.key_pem, coordinator_.cert_pem, &admission_), IsOk());
  EXPECT_THAT(Start(parties_[0], floor),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("threshold 1 is not the 3 that the run spec gives")));
  // A spec that asks for t = 1 outright is below the site's own floor.
  settings_ = Settings(1, 0);
  admission_ = SignedAdmission(coordinator_, TestRoundId(kRun, kRound), Names(), settings_);
  EXPECT_THAT(Start(parties_[0], floor),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("threshold 1 of 4 neighbours is too low")));
  // A round of the target and one peer (the coordinator's) gives 1 neighbour.
  settings_ = Settings(0, 0);
  admission_ =
      SignedAdmission(coordinator_, TestRoundId(kRun, kRound), {"site-0", "site-1"}, settings_);
  EXPECT_THAT(Start(parties_[0], floor),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("would mask with 1 neighbours; this site's policy needs at "
                                 "least 3")));
  // A forged admission, signed by a site's key, is refused before anything.
  admission_ = SignedAdmission(parties_[1], TestRoundId(kRun, kRound), Names(), settings_);
  EXPECT_THAT(Start(parties_[0], floor),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("is not signed by the project's coordinator")));
}

TEST_F(SecAggParticipantTest, AttackColludersPlusDropoutsAtTheQuorumEdgeIsRefused) {
  StartAll(Settings(0, 0));  // t = 3 of 4 neighbours
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  for (int i = 0; i < kSites; ++i) {
    ASSERT_THAT(participants_[i]->OnRelayedShares(inbox[parties_[i].name]), IsOk());
  }
  // Sites 3 and 4 collude with the coordinator; honest sites 1 and 2 are
  // said to have dropped after sharing. The sum over {0, 3, 4} minus the
  // colluders' inputs would be site-0's update.
  const v1::SurvivorSet edge = SurvivorSetOf({"site-0", "site-3", "site-4"});
  EXPECT_THAT(participants_[0]->SignSurvivors(edge),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("unmasking needs at least threshold + 1 = 4")));
  // Sites 1 and 2 are still there: they refuse a set that leaves them out.
  for (int i : {1, 2}) {
    EXPECT_THAT(participants_[i]->SignSurvivors(edge),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("leaves out this site")));
  }
  // With no signature of its own over the set, site-0 reveals nothing.
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(
                  UnmaskRequestFor({"site-0", "site-3", "site-4"}, {"site-1", "site-2"})),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("before this site signed the survivor set")));
}

TEST_F(SecAggParticipantTest, AttackReplayFromCancelledAttemptIsRefused) {
  StartAll(Settings(0, 0), /*attempt=*/1);
  const v1::PeerKeys first_peers = CollectPeerKeys();
  std::map<std::string, v1::ShareBundle> first_inbox = ShareAll(first_peers);
  // The attempt is cancelled; the retry admits the same sites afresh.
  StartAll(Settings(0, 0), /*attempt=*/2);
  v1::PeerKeys peers = CollectPeerKeys();
  v1::PeerKeys replayed = peers;
  *replayed.mutable_sites(3) = first_peers.sites(3);
  ReseedGraph(&replayed);
  EXPECT_THAT(participants_[0]->OnPeerKeys(replayed),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("key advertisement of site 'site-3' is for run 7 round 3 "
                                 "attempt 1, expected run 7 round 3 attempt 2")));
  // The same attempt number with another nonce is no better.
  v1::PeerKeys renumbered = replayed;
  renumbered.mutable_sites(3)->set_attempt(2);
  ReseedGraph(&renumbered);
  EXPECT_THAT(participants_[0]->OnPeerKeys(renumbered),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("(another nonce)")));
  // Shares sealed in attempt 1, relabelled for attempt 2, fail authentication.
  ShareAll(peers);
  v1::ShareBundle old_shares = first_inbox["site-0"];
  old_shares.set_attempt(2);
  EXPECT_THAT(participants_[0]->OnRelayedShares(old_shares),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("failed authentication")));
}

}  // namespace
}  // namespace secagg
}  // namespace fedmi
