#include "common/secagg/secagg.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/provision/project_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace secagg {
namespace {

using ::testing::HasSubstr;

MATCHER_P(IsOkAndHolds, expected, "is OK and holds the expected value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return *arg == expected;
}

std::string Hex(const std::string &hex) {
  std::string bytes;
  EXPECT_TRUE(HexDecode(hex, &bytes)) << hex;
  return bytes;
}

std::string Seed(uint8_t fill) { return std::string(kKeySize, static_cast<char>(fill)); }

// ---------------------------------------------------------------------------
// Known vectors.

TEST(HkdfTest, MatchesRfc5869TestCase1) {
  ASSERT_OK_AND_ASSIGN(std::string okm,
                       Hkdf(std::string(22, '\x0b'), Hex("000102030405060708090a0b0c"),
                            Hex("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(HexEncode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5d"
            "b02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfTest, RejectsBadLengths) {
  EXPECT_THAT(Hkdf("k", "", "", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("length")));
  EXPECT_THAT(Hkdf("k", "", "", 8161),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("length")));
  EXPECT_THAT(Hkdf("", "", "", 32),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(X25519Test, MatchesRfc7748Section61) {
  const std::string alice_private =
      Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const std::string alice_public =
      Hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const std::string bob_private =
      Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const std::string bob_public =
      Hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const std::string expected = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  ASSERT_OK_AND_ASSIGN(std::string from_alice, AgreeSharedSecret(alice_private, bob_public));
  ASSERT_OK_AND_ASSIGN(std::string from_bob, AgreeSharedSecret(bob_private, alice_public));
  EXPECT_EQ(HexEncode(from_alice), expected);
  EXPECT_EQ(HexEncode(from_bob), expected);
}

TEST(X25519Test, GeneratedPairsAgree) {
  ASSERT_OK_AND_ASSIGN(KeyPair a, GenerateKeyPair());
  ASSERT_OK_AND_ASSIGN(KeyPair b, GenerateKeyPair());
  EXPECT_EQ(a.private_key.size(), kKeySize);
  EXPECT_EQ(a.public_key.size(), kKeySize);
  EXPECT_NE(a.public_key, b.public_key);
  ASSERT_OK_AND_ASSIGN(std::string ab, AgreeSharedSecret(a.private_key, b.public_key));
  ASSERT_OK_AND_ASSIGN(std::string ba, AgreeSharedSecret(b.private_key, a.public_key));
  EXPECT_EQ(ab, ba);
}

TEST(X25519Test, RejectsWrongLengthsAndLowOrderPoints) {
  ASSERT_OK_AND_ASSIGN(KeyPair a, GenerateKeyPair());
  EXPECT_THAT(AgreeSharedSecret(a.private_key, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes, got 5")));
  EXPECT_THAT(AgreeSharedSecret(a.private_key.substr(1), a.public_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("private key")));
  // u = 0 and u = 1 are low-order points: the "shared secret" is all zero.
  EXPECT_THAT(AgreeSharedSecret(a.private_key, std::string(32, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("low-order")));
  std::string one(32, '\0');
  one[0] = 1;
  EXPECT_THAT(AgreeSharedSecret(a.private_key, one),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("low-order")));
}

TEST(DerivationTest, BindsRunRoundAndDirection) {
  const std::string secret = Seed(7);
  ASSERT_OK_AND_ASSIGN(std::string r1, DerivePairwiseMaskSeed(secret, TestRoundId(1, 1)));
  ASSERT_OK_AND_ASSIGN(std::string r2, DerivePairwiseMaskSeed(secret, TestRoundId(1, 2)));
  ASSERT_OK_AND_ASSIGN(std::string other_run, DerivePairwiseMaskSeed(secret, TestRoundId(2, 1)));
  EXPECT_EQ(r1.size(), kKeySize);
  EXPECT_NE(r1, r2);
  EXPECT_NE(r1, other_run);
  ASSERT_OK_AND_ASSIGN(std::string ab, DeriveShareKey(secret, TestRoundId(1, 1), "a", "b"));
  ASSERT_OK_AND_ASSIGN(std::string ba, DeriveShareKey(secret, TestRoundId(1, 1), "b", "a"));
  EXPECT_NE(ab, ba);
  EXPECT_NE(ab, r1);
  EXPECT_NE(ShareAssociatedData(TestRoundId(1, 1), "a", "bc"),
            ShareAssociatedData(TestRoundId(1, 1), "ab", "c"));
}

TEST(DerivationTest, BindsTheAttemptAndItsNonce) {
  const std::string secret = Seed(7);
  const RoundId first = TestRoundId(1, 1, 1);
  RoundId retry = first;
  retry.attempt = 2;
  RoundId same_number_new_nonce = first;
  same_number_new_nonce.nonce[0] ^= 1;
  for (const RoundId &other : {retry, same_number_new_nonce}) {
    EXPECT_NE(*DerivePairwiseMaskSeed(secret, first), *DerivePairwiseMaskSeed(secret, other));
    EXPECT_NE(*DeriveShareKey(secret, first, "a", "b"), *DeriveShareKey(secret, other, "a", "b"));
    EXPECT_NE(ShareAssociatedData(first, "a", "b"), ShareAssociatedData(other, "a", "b"));
    EXPECT_NE(KeyAdvertisementBytes(first, "a", Seed(1), Seed(2)),
              KeyAdvertisementBytes(other, "a", Seed(1), Seed(2)));
  }
}

// ---------------------------------------------------------------------------
// AES-256-GCM.

TEST(SealTest, RoundTripsWithFreshNonces) {
  const std::string key = Seed(1);
  ASSERT_OK_AND_ASSIGN(std::string a, Seal(key, "share bytes", "ad"));
  ASSERT_OK_AND_ASSIGN(std::string b, Seal(key, "share bytes", "ad"));
  EXPECT_EQ(a.size(), kNonceSize + 11 + kTagSize);
  EXPECT_NE(a, b);
  EXPECT_THAT(Open(key, a, "ad"), IsOkAndHolds(std::string("share bytes")));
  ASSERT_OK_AND_ASSIGN(std::string empty, Seal(key, "", ""));
  EXPECT_THAT(Open(key, empty, ""), IsOkAndHolds(std::string()));
}

TEST(SealTest, DetectsEveryKindOfTampering) {
  const std::string key = Seed(2);
  const std::string plaintext = "a secret share of 32 bytes......";
  ASSERT_OK_AND_ASSIGN(std::string sealed, Seal(key, plaintext, "run 1 round 2"));
  auto fails =
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("secret share failed authentication"));
  for (size_t pos : {size_t{0}, kNonceSize - 1,                       // nonce
                     kNonceSize, kNonceSize + 10,                     // ciphertext
                     sealed.size() - kTagSize, sealed.size() - 1}) {  // tag
    std::string altered = sealed;
    altered[pos] ^= 0x01;
    EXPECT_THAT(Open(key, altered, "run 1 round 2"), fails) << "byte " << pos;
  }
  EXPECT_THAT(Open(key, sealed, "run 1 round 3"), fails);
  EXPECT_THAT(Open(key, sealed, ""), fails);
  EXPECT_THAT(Open(Seed(3), sealed, "run 1 round 2"), fails);
  EXPECT_THAT(Open(key, sealed.substr(0, sealed.size() - 1), "run 1 round 2"), fails);
  EXPECT_THAT(Open(key, sealed.substr(0, 27), "run 1 round 2"), fails);
  EXPECT_THAT(Seal("short", plaintext, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key")));
}

// ---------------------------------------------------------------------------
// MaskGenerator.

std::vector<uint32_t> Stream(const std::string &seed, size_t count) {
  auto generator = MaskGenerator::Create(seed);
  EXPECT_THAT(generator, IsOk());
  std::vector<uint32_t> words(count);
  generator->Fill(words.data(), count);
  return words;
}

TEST(MaskGeneratorTest, IsAes256CtrFromAZeroCounter) {
  // AES-256 with an all-zero key on an all-zero block (FIPS-197 style KAT):
  // dc95c078 a2408989 ad48a214 92842087, read little-endian.
  const std::vector<uint32_t> words = Stream(Seed(0), 4);
  EXPECT_EQ(words[0], 0x78c095dcu);
  EXPECT_EQ(words[1], 0x898940a2u);
  EXPECT_EQ(words[2], 0x14a248adu);
  EXPECT_EQ(words[3], 0x87208492u);
}

TEST(MaskGeneratorTest, DeterministicPerSeedAndDifferentAcrossSeeds) {
  EXPECT_EQ(Stream(Seed(9), 1000), Stream(Seed(9), 1000));
  std::string other = Seed(9);
  other[31] ^= 1;  // the last byte matters: the whole 256-bit seed keys the cipher
  const std::vector<uint32_t> a = Stream(Seed(9), 1000), b = Stream(other, 1000);
  int equal = 0;
  for (size_t i = 0; i < a.size(); ++i) equal += a[i] == b[i];
  EXPECT_LE(equal, 2);
  EXPECT_THAT(MaskGenerator::Create("short"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mask seed")));
}

TEST(MaskGeneratorTest, SplitFillsAndSeeksMatchOneFill) {
  const std::vector<uint32_t> whole = Stream(Seed(4), 1001);
  ASSERT_OK_AND_ASSIGN(MaskGenerator generator, MaskGenerator::Create(Seed(4)));
  std::vector<uint32_t> pieces(1001);
  generator.Fill(pieces.data(), 3);
  generator.Fill(pieces.data() + 3, 998);
  EXPECT_EQ(pieces, whole);
  for (uint64_t offset : {0, 1, 4, 37, 1000}) {
    ASSERT_OK_AND_ASSIGN(MaskGenerator seeking, MaskGenerator::Create(Seed(4)));
    seeking.Fill(pieces.data(), 5);  // a seek discards the current position
    seeking.Seek(offset);
    std::vector<uint32_t> tail(1001 - offset);
    seeking.Fill(tail.data(), tail.size());
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), whole.begin() + offset)) << offset;
  }
}

// ---------------------------------------------------------------------------
// Shamir.

TEST(ShamirTest, AnyThresholdSubsetReconstructs) {
  const std::string secret =
      Hex("00ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1dff");
  ASSERT_OK_AND_ASSIGN(std::vector<Share> shares, ShamirSplit(secret, 3, 5));
  ASSERT_EQ(shares.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(shares[i].x, i + 1);
    EXPECT_EQ(shares[i].y.size(), 3u * 16);  // 32 bytes = three 120-bit chunks
  }
  int subsets = 0;
  for (int mask = 0; mask < 32; ++mask) {
    std::vector<Share> subset;
    for (int i = 0; i < 5; ++i) {
      if (mask & (1 << i)) subset.push_back(shares[i]);
    }
    if (subset.size() < 3) {
      EXPECT_THAT(ShamirReconstruct(subset, 3), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                         HasSubstr("need at least 3 shares, got " +
                                                                   std::to_string(subset.size()))));
      continue;
    }
    std::reverse(subset.begin(), subset.end());  // order does not matter
    EXPECT_THAT(ShamirReconstruct(subset, 3), IsOkAndHolds(secret)) << "subset " << mask;
    ++subsets;
  }
  EXPECT_EQ(subsets, 16);  // C(5,3) + C(5,4) + C(5,5)
}

TEST(ShamirTest, EdgeThresholdsAndSecretSizes) {
  for (const std::string &secret :
       {std::string("x"), std::string(15, '\xff'), std::string(16, '\xff'), std::string(45, 'k')}) {
    for (auto [t, n] : std::vector<std::pair<int, int>>{{1, 1}, {1, 4}, {4, 4}, {2, 7}}) {
      ASSERT_OK_AND_ASSIGN(std::vector<Share> shares, ShamirSplit(secret, t, n));
      std::vector<Share> last(shares.end() - t, shares.end());
      EXPECT_THAT(ShamirReconstruct(last, t), IsOkAndHolds(secret))
          << secret.size() << " bytes, t=" << t << " n=" << n;
    }
  }
  EXPECT_THAT(ShamirSplit("", 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ShamirSplit("s", 0, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threshold")));
  EXPECT_THAT(ShamirSplit("s", 4, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threshold")));
}

TEST(ShamirTest, RejectsDuplicatesAndDetectsCorruptExtraShares) {
  const std::string secret = Seed(0x5a);
  ASSERT_OK_AND_ASSIGN(std::vector<Share> shares, ShamirSplit(secret, 2, 4));
  EXPECT_THAT(ShamirReconstruct({shares[1], shares[1]}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate share x=2")));
  EXPECT_THAT(ShamirReconstruct({shares[0], shares[2], shares[0]}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  // Extra shares are checked against the polynomial the first t define.
  EXPECT_THAT(ShamirReconstruct(shares, 2), IsOkAndHolds(secret));
  std::vector<Share> corrupt = shares;
  corrupt[3].y[5] ^= 1;
  EXPECT_THAT(ShamirReconstruct(corrupt, 2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("share x=4 is inconsistent")));
  std::vector<Share> mixed = {shares[0], shares[1]};
  ASSERT_OK_AND_ASSIGN(std::vector<Share> other, ShamirSplit("short", 2, 4));
  mixed[1] = other[1];
  EXPECT_THAT(ShamirReconstruct(mixed, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected a 32-byte secret")));
}

TEST(ShamirTest, SharesSerializeAndParseBack) {
  ASSERT_OK_AND_ASSIGN(std::vector<Share> shares, ShamirSplit(Seed(3), 2, 3));
  std::vector<Share> parsed;
  for (const Share &share : shares) {
    ASSERT_OK_AND_ASSIGN(Share back, ParseShare(SerializeShare(share)));
    EXPECT_EQ(back.x, share.x);
    EXPECT_EQ(back.secret_size, share.secret_size);
    EXPECT_EQ(back.y, share.y);
    parsed.push_back(back);
  }
  EXPECT_THAT(ShamirReconstruct(parsed, 2), IsOkAndHolds(Seed(3)));
  const std::string bytes = SerializeShare(shares[0]);
  EXPECT_THAT(ParseShare("garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("FSS1")));
  EXPECT_THAT(ParseShare(bytes.substr(0, bytes.size() - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32-byte secret")));
  std::string out_of_field = bytes;
  for (size_t i = 12; i < 28; ++i) out_of_field[i] = '\xff';
  EXPECT_THAT(ParseShare(out_of_field),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the field")));
}

// ---------------------------------------------------------------------------
// Fixed point.

TEST(FixedPointCodecTest, ChoosesBitsFromMaxSites) {
  for (auto [sites, bits] : std::vector<std::pair<int, int>>{
           {1, 32}, {2, 31}, {5, 29}, {1000, 22}, {1024, 22}, {1025, 21}}) {
    ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({1.0, sites}));
    EXPECT_EQ(codec.bits(), bits) << sites;
    EXPECT_DOUBLE_EQ(codec.ErrorBound(1), 1.0 / (std::pow(2.0, bits) - 2));
  }
  EXPECT_THAT(FixedPointCodec::Create({0.0, 10}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clip")));
  EXPECT_THAT(FixedPointCodec::Create({1.0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_sites")));
}

TEST(FixedPointCodecTest, RoundTripStaysWithinTheBound) {
  std::mt19937 rng(42);
  for (double clip : {0.01, 1.0, 10.0}) {
    for (int max_sites : {1, 5, 1000}) {
      ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({clip, max_sites}));
      std::uniform_real_distribution<float> value(static_cast<float>(-2 * clip),
                                                  static_cast<float>(2 * clip));
      std::vector<float> in(4096);
      for (float &v : in) v = value(rng);
      in[0] = static_cast<float>(clip);
      in[1] = static_cast<float>(-clip);
      in[2] = std::numeric_limits<float>::infinity();
      std::vector<uint32_t> words(in.size());
      std::vector<double> out(in.size());
      for (double weight : {1.0, 0.37}) {
        ASSERT_THAT(codec.Encode(in.data(), in.size(), weight, words.data()), IsOk());
        ASSERT_THAT(codec.Decode(words.data(), words.size(), 1, out.data()), IsOk());
        double worst = 0;
        for (size_t i = 0; i < in.size(); ++i) {
          const double expected = weight * std::clamp<double>(in[i], -clip, clip);
          worst = std::max(worst, std::abs(out[i] - expected));
        }
        EXPECT_LE(worst, codec.ErrorBound(1) * (1 + 1e-9))
            << "clip " << clip << " sites " << max_sites;
      }
    }
  }
}

TEST(FixedPointCodecTest, SumOfSitesDecodesWithinTheBoundWithoutWrapping) {
  std::mt19937 rng(7);
  for (double clip : {0.1, 1.0, 5.0}) {
    for (int sites : {1, 3, 7, 8}) {
      ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({clip, sites}));
      const size_t n = 2048;
      std::vector<uint32_t> sum(n, 0);
      std::vector<double> expected(n, 0);
      std::uniform_real_distribution<float> value(static_cast<float>(-1.5 * clip),
                                                  static_cast<float>(1.5 * clip));
      std::uniform_real_distribution<double> weight_of(0, 1);
      std::vector<float> in(n);
      std::vector<uint32_t> words(n);
      for (int s = 0; s < sites; ++s) {
        for (float &v : in) v = value(rng);
        // Extremes everywhere in the first elements: every site at +clip or
        // -clip with weight 1 is the largest sum the scheme must hold.
        in[0] = static_cast<float>(clip) * 2;
        in[1] = static_cast<float>(-clip) * 2;
        const double weight = s == 0 ? 1.0 : weight_of(rng);
        ASSERT_THAT(codec.Encode(in.data(), n, weight, words.data()), IsOk());
        for (size_t i = 0; i < n; ++i) {
          sum[i] += words[i];
          expected[i] += weight * std::clamp<double>(in[i], -clip, clip);
        }
      }
      std::vector<double> out(n);
      ASSERT_THAT(codec.Decode(sum.data(), n, sites, out.data()), IsOk());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_LE(std::abs(out[i] - expected[i]), codec.ErrorBound(sites) * (1 + 1e-9))
            << "element " << i << " clip " << clip << " sites " << sites;
      }
    }
  }
  // The worst case exactly: max_sites sites all at +clip with weight 1.
  ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({1.0, 8}));
  const float one = 1.0f;
  uint32_t word = 0, total = 0;
  for (int s = 0; s < 8; ++s) {
    ASSERT_THAT(codec.Encode(&one, 1, 1.0, &word), IsOk());
    total += word;
  }
  double decoded = 0;
  ASSERT_THAT(codec.Decode(&total, 1, 8, &decoded), IsOk());
  EXPECT_NEAR(decoded, 8.0, codec.ErrorBound(8));
}

TEST(FixedPointCodecTest, RejectsNanBadWeightsAndImpossibleSums) {
  ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({1.0, 1000}));
  const float in[3] = {0.5f, std::nanf(""), 0.1f};
  uint32_t words[3];
  EXPECT_THAT(codec.Encode(in, 3, 1.0, words),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("element 1 is NaN")));
  EXPECT_THAT(codec.Encode(in, 1, 1.5, words),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight")));
  const uint32_t masked = 0x7fffffffu;
  double out;
  EXPECT_THAT(codec.Decode(&masked, 1, 5, &out),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("element 0")));
  EXPECT_THAT(codec.Decode(&masked, 1, 1001, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_sites is 1000")));
}

// ---------------------------------------------------------------------------
// Neighbour graph.

void ExpectUndirectedWithoutLoops(const std::vector<std::vector<int>> &graph) {
  for (size_t i = 0; i < graph.size(); ++i) {
    EXPECT_TRUE(std::is_sorted(graph[i].begin(), graph[i].end()));
    for (int j : graph[i]) {
      EXPECT_NE(j, static_cast<int>(i));
      EXPECT_TRUE(std::binary_search(graph[j].begin(), graph[j].end(), static_cast<int>(i)))
          << i << "-" << j;
    }
  }
}

bool Connected(const std::vector<std::vector<int>> &graph) {
  std::vector<bool> seen(graph.size(), false);
  std::vector<int> stack = {0};
  seen[0] = true;
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    for (int w : graph[v]) {
      if (seen[w]) continue;
      seen[w] = true;
      stack.push_back(w);
    }
  }
  return std::all_of(seen.begin(), seen.end(), [](bool b) { return b; });
}

TEST(NeighbourGraphTest, HararyGraphsAreRegularSymmetricAndSeeded) {
  for (auto [n, k, degree] : std::vector<std::tuple<int, int, int>>{
           {20, 2, 2}, {20, 4, 4}, {20, 5, 5}, {21, 5, 6}, {21, 6, 6}, {5, 2, 2}, {5, 3, 4}}) {
    ASSERT_OK_AND_ASSIGN(auto graph, NeighbourGraph(n, k, Seed(1)));
    ASSERT_EQ(graph.size(), static_cast<size_t>(n));
    ExpectUndirectedWithoutLoops(graph);
    EXPECT_TRUE(Connected(graph));
    for (const auto &row : graph)
      EXPECT_EQ(row.size(), static_cast<size_t>(degree)) << n << "," << k;
    EXPECT_THAT(NeighbourGraph(n, k, Seed(1)), IsOkAndHolds(graph));
  }
  ASSERT_OK_AND_ASSIGN(auto a, NeighbourGraph(30, 4, Seed(1)));
  ASSERT_OK_AND_ASSIGN(auto b, NeighbourGraph(30, 4, Seed(2)));
  EXPECT_NE(a, b);
}

TEST(NeighbourGraphTest, EnoughNeighboursMeansComplete) {
  for (int k : {4, 5, 100}) {
    ASSERT_OK_AND_ASSIGN(auto graph, NeighbourGraph(5, k, Seed(3)));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(graph[i].size(), 4u);
  }
  ASSERT_OK_AND_ASSIGN(auto single, NeighbourGraph(1, 0, Seed(3)));
  EXPECT_EQ(single, std::vector<std::vector<int>>(1));
  EXPECT_THAT(NeighbourGraph(0, 2, Seed(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_sites")));
  EXPECT_THAT(NeighbourGraph(5, 0, Seed(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neighbour")));
  EXPECT_THAT(NeighbourGraph(5, 2, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seed")));
}

// ---------------------------------------------------------------------------
// Masking, end to end over real keys.

constexpr int64_t kRun = 11;
constexpr int32_t kRound = 3;

// One simulated federation of `graph.size()` sites after key advertisement.
struct Federation {
  std::vector<std::vector<int>> graph;
  std::vector<KeyPair> mask_keys;
  std::vector<std::string> self_seeds;
  std::vector<std::vector<uint32_t>> inputs;

  absl::StatusOr<std::string> PairSeed(int me, int peer) const {
    ASSIGN_OR_RETURN(std::string secret,
                     AgreeSharedSecret(mask_keys[me].private_key, mask_keys[peer].public_key));
    return DerivePairwiseMaskSeed(secret, TestRoundId(kRun, kRound));
  }

  std::vector<uint32_t> Masked(int site) const {
    std::vector<uint32_t> words = inputs[site];
    EXPECT_THAT(ApplyPairwiseMasks(
                    site, graph[site], [&](int peer) { return PairSeed(site, peer); }, words.data(),
                    words.size()),
                IsOk());
    EXPECT_THAT(ApplySelfMask(self_seeds[site], words.data(), words.size()), IsOk());
    return words;
  }
};

Federation MakeFederation(std::vector<std::vector<int>> graph, size_t words) {
  Federation f;
  f.graph = std::move(graph);
  std::mt19937 rng(static_cast<uint32_t>(f.graph.size() * 1000 + words));
  for (size_t i = 0; i < f.graph.size(); ++i) {
    f.mask_keys.push_back(*GenerateKeyPair());
    f.self_seeds.push_back(*Hkdf(Seed(static_cast<uint8_t>(i + 1)), "", "self", kKeySize));
    std::vector<uint32_t> input(words);
    for (uint32_t &w : input) w = rng();
    f.inputs.push_back(std::move(input));
  }
  return f;
}

std::vector<std::vector<int>> CompleteGraph(int n) { return *NeighbourGraph(n, n - 1, Seed(0)); }

TEST(MaskingTest, MasksCancelForCompleteAndSparseGraphs) {
  std::vector<std::vector<std::vector<int>>> graphs = {CompleteGraph(5)};
  for (int k = 2; k <= 4; ++k)
    graphs.push_back(*NeighbourGraph(5, k, Seed(static_cast<uint8_t>(k))));
  for (const auto &graph : graphs) {
    Federation f = MakeFederation(graph, 1000);
    std::vector<uint32_t> masked_sum(1000, 0), plain_sum(1000, 0);
    for (int s = 0; s < 5; ++s) {
      const std::vector<uint32_t> masked = f.Masked(s);
      int unchanged = 0;
      for (size_t i = 0; i < masked.size(); ++i) {
        masked_sum[i] += masked[i];
        plain_sum[i] += f.inputs[s][i];
        unchanged += masked[i] == f.inputs[s][i];
      }
      EXPECT_LE(unchanged, 2);
    }
    EXPECT_NE(masked_sum, plain_sum);
    ASSERT_THAT(RemoveMasks(graph, {0, 1, 2, 3, 4}, {},
                            {[&](int s) -> absl::StatusOr<std::string> { return f.self_seeds[s]; },
                             nullptr},
                            masked_sum.data(), masked_sum.size()),
                IsOk());
    EXPECT_EQ(masked_sum, plain_sum);
  }
}

TEST(MaskingTest, ChunkedMaskingEqualsWholeVector) {
  Federation f = MakeFederation(CompleteGraph(3), 1003);
  const std::vector<uint32_t> whole = f.Masked(1);
  std::vector<uint32_t> chunked = f.inputs[1];
  for (size_t begin = 0; begin < chunked.size(); begin += 250) {
    const size_t n = std::min<size_t>(250, chunked.size() - begin);
    ASSERT_THAT(ApplyPairwiseMasks(
                    1, f.graph[1], [&](int peer) { return f.PairSeed(1, peer); },
                    chunked.data() + begin, n, begin),
                IsOk());
    ASSERT_THAT(ApplySelfMask(f.self_seeds[1], chunked.data() + begin, n, begin), IsOk());
  }
  EXPECT_EQ(chunked, whole);
}

TEST(MaskingTest, RejectsBadNeighboursAndSeeds) {
  uint32_t words[4] = {};
  auto seed = [](int) -> absl::StatusOr<std::string> { return Seed(1); };
  EXPECT_THAT(ApplyPairwiseMasks(1, {0, 1}, seed, words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("itself")));
  EXPECT_THAT(ApplyPairwiseMasks(1, {0, 2, 0}, seed, words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neighbour 0 twice")));
  EXPECT_THAT(ApplyPairwiseMasks(
                  1, {0}, [](int) -> absl::StatusOr<std::string> { return "x"; }, words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes, got 1")));
  EXPECT_THAT(
      ApplyPairwiseMasks(
          1, {0},
          [](int) -> absl::StatusOr<std::string> { return absl::NotFoundError("no key for 0"); },
          words, 4),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("no key")));
  EXPECT_THAT(ApplySelfMask("x", words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("self-mask seed")));
  const auto graph = CompleteGraph(3);
  UnmaskingSecrets secrets{[](int) -> absl::StatusOr<std::string> { return Seed(1); }, nullptr};
  EXPECT_THAT(
      RemoveMasks(graph, {0, 1}, {}, secrets, words, 4),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither a survivor nor dropped")));
  EXPECT_THAT(RemoveMasks(graph, {0, 1, 2}, {1}, secrets, words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("listed twice")));
  EXPECT_THAT(RemoveMasks(graph, {0, 1, 5}, {}, secrets, words, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site 5 is not in")));
}

// The Bonawitz flow with one dropout: every site secret-shares its mask
// private key and self-mask seed among its neighbours (encrypted and
// authenticated per recipient), site `dropped` never uploads, and the
// coordinator recovers the exact sum of the others from the survivors' shares.
void RunDropout(const std::vector<std::vector<int>> &graph, int dropped) {
  const int n = static_cast<int>(graph.size());
  std::vector<KeyPair> cipher_keys;
  for (int i = 0; i < n; ++i) cipher_keys.push_back(*GenerateKeyPair());
  Federation f = MakeFederation(graph, 777);
  auto name = [](int i) { return "site-" + std::to_string(i); };

  // Share distribution: inbox[recipient][sender] = sealed (mask key share, self
  // seed share).
  std::map<int, std::map<int, std::string>> inbox;
  std::vector<int> thresholds(n);
  for (int u = 0; u < n; ++u) {
    const int degree = static_cast<int>(graph[u].size());
    thresholds[u] = (degree + 1) / 2;
    ASSERT_OK_AND_ASSIGN(auto key_shares,
                         ShamirSplit(f.mask_keys[u].private_key, thresholds[u], degree));
    ASSERT_OK_AND_ASSIGN(auto seed_shares, ShamirSplit(f.self_seeds[u], thresholds[u], degree));
    for (int i = 0; i < degree; ++i) {
      const int v = graph[u][i];
      ASSERT_OK_AND_ASSIGN(std::string secret, AgreeSharedSecret(cipher_keys[u].private_key,
                                                                 cipher_keys[v].public_key));
      ASSERT_OK_AND_ASSIGN(std::string key,
                           DeriveShareKey(secret, TestRoundId(kRun, kRound), name(u), name(v)));
      const std::string key_share = SerializeShare(key_shares[i]);
      const std::string plaintext = key_share + SerializeShare(seed_shares[i]);
      ASSERT_OK_AND_ASSIGN(
          inbox[v][u],
          Seal(key, plaintext, ShareAssociatedData(TestRoundId(kRun, kRound), name(u), name(v))));
    }
  }

  // Survivors upload masked inputs; the coordinator sums them.
  std::vector<int> survivors;
  std::vector<uint32_t> sum(777, 0), expected(777, 0);
  for (int s = 0; s < n; ++s) {
    if (s == dropped) continue;
    survivors.push_back(s);
    const std::vector<uint32_t> masked = f.Masked(s);
    for (size_t i = 0; i < sum.size(); ++i) {
      sum[i] += masked[i];
      expected[i] += f.inputs[s][i];
    }
  }

  // Unmasking: each survivor opens what its neighbours sent it and reveals
  // the dropped site's key share, or a surviving site's self-seed share.
  std::map<int, std::vector<Share>> key_shares_of, seed_shares_of;
  for (int v : survivors) {
    for (const auto &[u, sealed] : inbox[v]) {
      ASSERT_OK_AND_ASSIGN(std::string secret, AgreeSharedSecret(cipher_keys[v].private_key,
                                                                 cipher_keys[u].public_key));
      ASSERT_OK_AND_ASSIGN(std::string key,
                           DeriveShareKey(secret, TestRoundId(kRun, kRound), name(u), name(v)));
      ASSERT_OK_AND_ASSIGN(
          std::string plaintext,
          Open(key, sealed, ShareAssociatedData(TestRoundId(kRun, kRound), name(u), name(v))));
      // A share relayed as if for another recipient fails authentication.
      EXPECT_THAT(
          Open(key, sealed, ShareAssociatedData(TestRoundId(kRun, kRound), name(u), name(u))),
          StatusIs(absl::StatusCode::kDataLoss, HasSubstr("authentication")));
      const size_t half = plaintext.size() / 2;  // both secrets are 32 bytes
      ASSERT_OK_AND_ASSIGN(Share key_share, ParseShare(plaintext.substr(0, half)));
      ASSERT_OK_AND_ASSIGN(Share seed_share, ParseShare(plaintext.substr(half)));
      if (u == dropped) {
        key_shares_of[u].push_back(key_share);
      } else {
        seed_shares_of[u].push_back(seed_share);
      }
    }
  }
  ASSERT_OK_AND_ASSIGN(std::string dropped_key,
                       ShamirReconstruct(key_shares_of[dropped], thresholds[dropped]));
  EXPECT_EQ(dropped_key, f.mask_keys[dropped].private_key);

  UnmaskingSecrets secrets;
  secrets.self_seed = [&](int s) { return ShamirReconstruct(seed_shares_of[s], thresholds[s]); };
  secrets.pairwise_seed = [&](int d, int s) -> absl::StatusOr<std::string> {
    EXPECT_EQ(d, dropped);
    ASSIGN_OR_RETURN(std::string secret, AgreeSharedSecret(dropped_key, f.mask_keys[s].public_key));
    return DerivePairwiseMaskSeed(secret, TestRoundId(kRun, kRound));
  };
  ASSERT_THAT(RemoveMasks(graph, survivors, {dropped}, secrets, sum.data(), sum.size()), IsOk());
  EXPECT_EQ(sum, expected);
}

TEST(MaskingTest, DropoutRecoversTheSurvivorsSumCompleteGraph) { RunDropout(CompleteGraph(5), 2); }

TEST(MaskingTest, DropoutRecoversTheSurvivorsSumSparseGraphs) {
  for (int k = 2; k <= 4; ++k) {
    SCOPED_TRACE(k);
    RunDropout(*NeighbourGraph(5, k, Seed(static_cast<uint8_t>(40 + k))), k % 5);
  }
}

TEST(MaskingTest, QuantizedUpdatesAggregateThroughMasks) {
  ASSERT_OK_AND_ASSIGN(FixedPointCodec codec, FixedPointCodec::Create({0.5, 16}));
  const auto graph = *NeighbourGraph(5, 2, Seed(77));
  Federation f = MakeFederation(graph, 300);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-0.6f, 0.6f);
  std::vector<double> expected(300, 0);
  for (int s = 0; s < 5; ++s) {
    std::vector<float> update(300);
    for (float &v : update) v = value(rng);
    const double weight = 0.2 * (s + 1);
    ASSERT_THAT(codec.Encode(update.data(), update.size(), weight, f.inputs[s].data()), IsOk());
    for (size_t i = 0; i < update.size(); ++i)
      expected[i] += weight * std::clamp<double>(update[i], -0.5, 0.5);
  }
  std::vector<uint32_t> sum(300, 0);
  for (int s = 0; s < 5; ++s) {
    const auto masked = f.Masked(s);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += masked[i];
  }
  std::vector<double> decoded(300);
  EXPECT_THAT(codec.Decode(sum.data(), sum.size(), 5, decoded.data()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("masks")));
  ASSERT_THAT(
      RemoveMasks(graph, {0, 1, 2, 3, 4}, {},
                  {[&](int s) -> absl::StatusOr<std::string> { return f.self_seeds[s]; }, nullptr},
                  sum.data(), sum.size()),
      IsOk());
  ASSERT_THAT(codec.Decode(sum.data(), sum.size(), 5, decoded.data()), IsOk());
  for (size_t i = 0; i < decoded.size(); ++i) {
    EXPECT_LE(std::abs(decoded[i] - expected[i]), codec.ErrorBound(5) * (1 + 1e-9)) << i;
  }
}

// ---------------------------------------------------------------------------
// Key advertisement.

TEST(KeyAdvertisementTest, EncodingIsUnambiguousAndDomainSeparated) {
  const std::string a = KeyAdvertisementBytes(TestRoundId(1, 2), "site-1", Seed(1), Seed(2));
  EXPECT_EQ(a.substr(4, 33), "fedmi/secagg/key-advertisement/v2");
  EXPECT_EQ(a, KeyAdvertisementBytes(TestRoundId(1, 2), "site-1", Seed(1), Seed(2)));
  EXPECT_NE(a, KeyAdvertisementBytes(TestRoundId(1, 2), "site-1", Seed(2), Seed(1)));
  EXPECT_NE(a, KeyAdvertisementBytes(TestRoundId(1, 3), "site-1", Seed(1), Seed(2)));
  EXPECT_NE(a, KeyAdvertisementBytes(TestRoundId(2, 2), "site-1", Seed(1), Seed(2)));
  EXPECT_NE(KeyAdvertisementBytes(TestRoundId(1, 2), "ab", "c", "d"),
            KeyAdvertisementBytes(TestRoundId(1, 2), "a", "bc", "d"));
  EXPECT_NE(KeyAdvertisementBytes(TestRoundId(1, 2), "a", "b", "cd"),
            KeyAdvertisementBytes(TestRoundId(1, 2), "a", "bc", "d"));
}

TEST(KeyAdvertisementTest, SignedByTheSiteCertificate) {
  ScratchDir dir;
  ASSERT_OK_AND_ASSIGN(auto ca, ProjectCa::Create(dir.path(), "proj"));
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca->Issue("site-1", PartyRole::kSite, IssueOptions()));
  ASSERT_OK_AND_ASSIGN(IssuedParty other, ca->Issue("site-2", PartyRole::kSite, IssueOptions()));
  ASSERT_OK_AND_ASSIGN(KeyPair cipher, GenerateKeyPair());
  ASSERT_OK_AND_ASSIGN(KeyPair mask, GenerateKeyPair());
  ASSERT_OK_AND_ASSIGN(std::string signature,
                       SignKeyAdvertisement(site.key_pem, TestRoundId(kRun, kRound), "site-1",
                                            cipher.public_key, mask.public_key));
  EXPECT_THAT(VerifyKeyAdvertisement(site.cert_pem, TestRoundId(kRun, kRound), "site-1",
                                     cipher.public_key, mask.public_key, signature),
              IsOk());
  // A coordinator swapping in its own mask key is caught.
  ASSERT_OK_AND_ASSIGN(KeyPair evil, GenerateKeyPair());
  EXPECT_THAT(VerifyKeyAdvertisement(site.cert_pem, TestRoundId(kRun, kRound), "site-1",
                                     cipher.public_key, evil.public_key, signature),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("signature")));
  // Replaying last round's advertisement is caught.
  EXPECT_THAT(VerifyKeyAdvertisement(site.cert_pem, TestRoundId(kRun, kRound + 1), "site-1",
                                     cipher.public_key, mask.public_key, signature),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("signature")));
  // Keys claimed for another site, or checked against another certificate.
  EXPECT_THAT(
      VerifyKeyAdvertisement(site.cert_pem, TestRoundId(kRun, kRound), "site-2", cipher.public_key,
                             mask.public_key, signature),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("certificate names 'site-1'")));
  EXPECT_THAT(VerifyKeyAdvertisement(other.cert_pem, TestRoundId(kRun, kRound), "site-2",
                                     cipher.public_key, mask.public_key, signature),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("signature")));
  EXPECT_THAT(SignKeyAdvertisement(site.key_pem, TestRoundId(kRun, kRound), "site-1", "short",
                                   mask.public_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cipher public key")));
}

}  // namespace
}  // namespace secagg
}  // namespace fedmi
