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
#include "tests/test_util.h"

namespace fedmi {
namespace secagg {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int64_t kRun = 7;
constexpr int32_t kRound = 3;
constexpr int kSites = 5;

// The coordinator's unmasking request of this round.
v1::UnmaskRequest UnmaskRequestFor(const std::vector<std::string>& survivors,
                                   const std::vector<std::string>& dropped) {
  v1::UnmaskRequest request;
  request.set_run_id(kRun);
  request.set_round(kRound);
  for (const std::string& site : survivors) request.add_survivors(site);
  for (const std::string& site : dropped) request.add_dropped(site);
  return request;
}

std::vector<uint32_t> WordsOf(const TensorBundle& bundle) {
  std::vector<uint32_t> words(bundle.body.size() / sizeof(uint32_t));
  std::memcpy(words.data(), bundle.body.data(), bundle.body.size());
  return words;
}

v1::SecAggParams Params(int threshold, int neighbours) {
  v1::SecAggParams params;
  params.set_threshold(threshold);
  params.set_neighbours(neighbours);
  params.set_clip(1.0);
  params.set_max_sites(100);
  params.set_max_examples(1000);
  return params;
}

// Five sites with certificates from a throwaway project CA, and a hand-written
// relay standing in for the coordinator.
class SecAggParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(scratch_.path(), "t"));
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

  void StartAll(const v1::SecAggParams& params) {
    params_ = params;
    participants_.clear();
    for (const IssuedParty& party : parties_) {
      ASSERT_OK_AND_ASSIGN(auto participant,
                           SecAggParticipant::Start(kRun, kRound, party.name, params, party.key_pem,
                                                    party.cert_pem, ca_->ca_cert_pem()));
      participants_.push_back(std::move(participant));
    }
  }

  // The coordinator's step 1: advertisements with certificates from "TLS",
  // sorted by site, and the graph seed.
  v1::PeerKeys CollectPeerKeys() {
    v1::PeerKeys peers;
    peers.set_run_id(kRun);
    peers.set_round(kRound);
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
        *bundle.add_shares() = share;
      }
    }
    return inbox;
  }

  // A whole round in which the sites in `dropped` vanish after sharing; checks
  // that the unmasked sum equals the weighted sum of the survivors' deltas.
  void RunRoundAndCheck(const v1::SecAggParams& params, const std::set<int>& dropped) {
    StartAll(params);
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
    v1::UnmaskRequest request;
    request.set_run_id(kRun);
    request.set_round(kRound);
    for (int i = 0; i < kSites; ++i) {
      if (dropped.count(i) > 0) {
        request.add_dropped(parties_[i].name);
        continue;
      }
      survivors.push_back(i);
      request.add_survivors(parties_[i].name);
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

    // Step 5: survivors reveal shares; the coordinator reconstructs.
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
      return DerivePairwiseMaskSeed(secret, kRun, kRound);
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
  std::vector<IssuedParty> parties_;
  v1::SecAggParams params_;
  std::vector<std::unique_ptr<SecAggParticipant>> participants_;
  std::vector<TensorSpec> specs_;
  std::vector<float> global_;
  std::vector<std::vector<float>> locals_;
  std::vector<int64_t> examples_;
};

TEST_F(SecAggParticipantTest, RoundWithoutDropoutOnCompleteGraph) {
  RunRoundAndCheck(Params(3, 4), {});
}

TEST_F(SecAggParticipantTest, RoundWithoutDropoutOnSparseGraph) {
  RunRoundAndCheck(Params(2, 2), {});
}

TEST_F(SecAggParticipantTest, SiteDroppingAfterSharingIsUnmaskedFromItsMaskKey) {
  RunRoundAndCheck(Params(3, 4), {2});
}

TEST_F(SecAggParticipantTest, GraphSeedIsHashOfAdvertisementsInOrder) {
  StartAll(Params(3, 4));
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
  StartAll(Params(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  v1::KeyAdvertisement* ad = peers.mutable_sites(3);
  ASSERT_OK_AND_ASSIGN(std::string forged,
                       SignKeyAdvertisement(parties_[4].key_pem, kRun, kRound, ad->site(),
                                            ad->cipher_public_key(), ad->mask_public_key()));
  ad->set_signature(forged);
  EXPECT_THAT(VerifyAdvertisement(*ad, kRun, kRound, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("key advertisement of site 'site-3' has a bad signature")));
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site 'site-3'")));
}

TEST_F(SecAggParticipantTest, MaskKeySwappedAfterSigningIsRefused) {
  StartAll(Params(3, 4));
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
  StartAll(Params(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  peers.mutable_sites(3)->set_certificate_pem(parties_[4].cert_pem);
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-3' carries the certificate of 'site-4'")));
}

TEST_F(SecAggParticipantTest, AdvertisementFromForeignCaIsRefused) {
  ScratchDir other_dir;
  ASSERT_OK_AND_ASSIGN(auto other_ca, ProjectCa::Create(other_dir.path(), "other"));
  ASSERT_OK_AND_ASSIGN(IssuedParty impostor, other_ca->Issue("site-3", PartyRole::kSite, {}));
  StartAll(Params(3, 4));
  v1::PeerKeys peers = CollectPeerKeys();
  v1::KeyAdvertisement* ad = peers.mutable_sites(3);
  ASSERT_OK_AND_ASSIGN(std::string signature,
                       SignKeyAdvertisement(impostor.key_pem, kRun, kRound, ad->site(),
                                            ad->cipher_public_key(), ad->mask_public_key()));
  ad->set_signature(signature);
  ad->set_certificate_pem(impostor.cert_pem);
  EXPECT_THAT(participants_[0]->OnPeerKeys(peers),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-3' has an untrusted certificate")));
}

TEST_F(SecAggParticipantTest, RefusesTooFewSitesOrMissingSelf) {
  StartAll(Params(3, 4));
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
  StartAll(Params(3, 4));
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
  StartAll(Params(2, 2));
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
  StartAll(Params(3, 4));
  std::map<std::string, v1::ShareBundle> inbox = ShareAll(CollectPeerKeys());
  for (int i = 0; i < kSites; ++i) {
    ASSERT_THAT(participants_[i]->OnRelayedShares(inbox[parties_[i].name]), IsOk());
  }
  const v1::UnmaskRequest both = UnmaskRequestFor({"site-1"}, {"site-1"});
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(both),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site-1")));

  const v1::UnmaskRequest first = UnmaskRequestFor({"site-0", "site-1"}, {});
  ASSERT_OK_AND_ASSIGN(v1::UnmaskResponse response, participants_[0]->OnUnmaskRequest(first));
  ASSERT_EQ(response.shares_size(), 1);  // its own seed share is not held by site-0
  EXPECT_EQ(response.shares(0).owner(), "site-1");
  EXPECT_TRUE(response.shares(0).self_seed());
  // Asking again for the same secret is harmless.
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(first), IsOk());

  const v1::UnmaskRequest second = UnmaskRequestFor({"site-2"}, {"site-1"});
  EXPECT_THAT(participants_[0]->OnUnmaskRequest(second),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site 'site-1'")));
  // The refused request revealed nothing: site-2's seed share is still unrevealed,
  // so its mask key can still be asked for.
  const v1::UnmaskRequest third = UnmaskRequestFor({}, {"site-2"});
  ASSERT_OK_AND_ASSIGN(response, participants_[0]->OnUnmaskRequest(third));
  ASSERT_EQ(response.shares_size(), 1);
  EXPECT_FALSE(response.shares(0).self_seed());
}

TEST_F(SecAggParticipantTest, StartRefusesCertificateOfAnotherSite) {
  EXPECT_THAT(SecAggParticipant::Start(kRun, kRound, "site-0", Params(3, 4), parties_[1].key_pem,
                                       parties_[1].cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-0")));
  EXPECT_THAT(SecAggParticipant::Start(kRun, kRound, "site-0", Params(3, 4), parties_[1].key_pem,
                                       parties_[0].cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site-0")));
}

TEST_F(SecAggParticipantTest, MaskUpdateNeedsSharesAndPositiveExamples) {
  StartAll(Params(3, 4));
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

}  // namespace
}  // namespace secagg
}  // namespace fedmi
