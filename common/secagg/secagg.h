// Cryptographic building blocks of secure aggregation: the pairwise-masking
// protocol of Bonawitz et al. (CCS 2017) with the sparse SecAgg+ neighbour
// graph of Bell et al. (CCS 2020). The coordinator learns only the sum of the
// sites' quantized updates; any single masked update looks uniformly random.
//
// How the pieces fit one round (the protocol itself lives in the coordinator
// and client, not here):
//   1. Each site makes two X25519 key pairs (GenerateKeyPair): a cipher pair,
//      for encrypting secret shares to its neighbours, and a mask pair, for
//      pairwise masks. It signs KeyAdvertisementBytes(...) with its
//      certificate key (SignKeyAdvertisement) so that the coordinator cannot
//      substitute its own keys; receivers check it (VerifyKeyAdvertisement).
//   2. The coordinator fixes the NeighbourGraph. Each site draws a fresh
//      32-byte self-mask seed, Shamir-splits it and its mask private key among
//      its neighbours (ShamirSplit, SerializeShare) and encrypts each share
//      with Seal under DeriveShareKey(AgreeSharedSecret(cipher keys)) and
//      ShareAssociatedData(...).
//   3. Each site quantizes its update (FixedPointCodec), adds its pairwise
//      masks (ApplyPairwiseMasks, seeds from DerivePairwiseMaskSeed) and its
//      self mask (ApplySelfMask), and uploads the words.
//   4. The coordinator sums the words mod 2^32, collects from survivors the
//      self-mask shares of survivors and the mask-key shares of dropped sites,
//      reconstructs them (ShamirReconstruct) and calls RemoveMasks; the result
//      is the plain sum of the survivors' quantized updates (Decode).
//
// Two weaknesses of a popular open-source implementation are avoided on
// purpose: masks are expanded by AES-256-CTR keyed with the full 256-bit
// shared secret (never a 32-bit seed into a non-cryptographic generator), and
// public keys travel inside signed advertisements.
//
// Everything here is built on OpenSSL 3's libcrypto (EVP); no OpenSSL type
// appears in this header. Free functions are thread-safe; a MaskGenerator is
// thread-compatible (one per thread). Failures are absl::Status values whose
// message names the problem; only an impossible internal OpenSSL failure in
// MaskGenerator::Fill aborts, because continuing would leak unmasked data.
#ifndef FEDMI_COMMON_SECAGG_SECAGG_H_
#define FEDMI_COMMON_SECAGG_SECAGG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedmi {
namespace secagg {

inline constexpr size_t kKeySize = 32;    // X25519 keys, shared secrets, seeds, AES-256 keys
inline constexpr size_t kNonceSize = 12;  // AES-GCM nonce
inline constexpr size_t kTagSize = 16;    // AES-GCM tag

// ---------------------------------------------------------------------------
// Key agreement (X25519, RFC 7748).

// Raw 32-byte X25519 keys.
struct KeyPair {
  std::string private_key;
  std::string public_key;
};

// A fresh key pair from OpenSSL's CSPRNG. Internal only if OpenSSL fails.
absl::StatusOr<KeyPair> GenerateKeyPair();

// The 32-byte X25519 shared secret. InvalidArgument if either key is not 32
// bytes, or if the result is all zero (the peer sent a low-order point: such a
// "secret" is known to everyone, so it must never key a mask or a cipher).
// Use the result only through Hkdf/Derive* below, never directly.
absl::StatusOr<std::string> AgreeSharedSecret(const std::string &my_private,
                                              const std::string &peer_public);

// ---------------------------------------------------------------------------
// Key derivation (HKDF-SHA256, RFC 5869).

// `length` bytes of output keying material. InvalidArgument if `secret` is
// empty or `length` is 0 or more than 255 * 32.
absl::StatusOr<std::string> Hkdf(const std::string &secret, const std::string &salt,
                                 const std::string &info, size_t length);

// One attempt at one round. A round that fails and is started afresh gets a
// new attempt number and a fresh 32-byte nonce from the coordinator's signed
// admission (secagg_transcript.h); every key, mask seed, associated data and
// signature below is bound to all four, so nothing of a cancelled attempt
// serves another.
struct RoundId {
  int64_t run_id = 0;
  int32_t round = 0;
  int32_t attempt = 0;
  std::string nonce;  // kKeySize bytes
};
inline constexpr size_t kAttemptNonceSize = kKeySize;

// i64 BE run_id, i32 BE round, i32 BE attempt, u32 BE length and the nonce.
std::string RoundIdBytes(const RoundId &id);

// The seed of the pairwise mask between two sites, from their mask-key
// agreement. Bound to the round attempt (and symmetric in the two sites, as
// both must expand the same stream), so a seed never serves two attempts.
absl::StatusOr<std::string> DerivePairwiseMaskSeed(const std::string &shared_secret,
                                                   const RoundId &id);

// The AES-256-GCM key with which `sender` encrypts its shares for
// `recipient`, from their cipher-key agreement. Directional: the two
// directions between a pair use different keys.
absl::StatusOr<std::string> DeriveShareKey(const std::string &shared_secret, const RoundId &id,
                                           const std::string &sender, const std::string &recipient);

// Associated data for Seal/Open of a share bundle, so that the coordinator
// (which relays the ciphertexts) cannot replay a share into another attempt
// or hand it to another recipient.
std::string ShareAssociatedData(const RoundId &id, const std::string &sender,
                                const std::string &recipient);

// ---------------------------------------------------------------------------
// Authenticated encryption of secret shares (AES-256-GCM).

// nonce (12 bytes, random) || ciphertext || tag (16 bytes). InvalidArgument if
// `key32` is not 32 bytes. A random 96-bit nonce is safe here because each
// share key encrypts a handful of messages, far below the 2^32 limit.
absl::StatusOr<std::string> Seal(const std::string &key32, const std::string &plaintext,
                                 const std::string &associated_data);

// The plaintext of a Seal output. DataLoss "secret share failed
// authentication" if the key, nonce, ciphertext, tag or associated data differ
// from what was sealed (or the input is too short to hold a nonce and tag);
// InvalidArgument if `key32` is not 32 bytes.
absl::StatusOr<std::string> Open(const std::string &key32, const std::string &sealed,
                                 const std::string &associated_data);

// ---------------------------------------------------------------------------
// Mask expansion (pseudo-random generator).

// The keystream of AES-256-CTR keyed with a 32-byte seed, starting from an
// all-zero 128-bit counter block, read as little-endian uint32 words.
//
// A fixed (zero) IV is safe because every seed keys exactly one stream: a
// pairwise seed comes from fresh per-round keys through HKDF bound to the run
// and round, and a self-mask seed is drawn fresh per round. Both sites of a
// pair expanding the same stream is the point (the masks must cancel); no
// seed ever encrypts two different messages. The 128-bit counter does not wrap
// within 2^132 bytes. Deterministic per seed and platform-independent.
//
// Movable, not copyable; thread-compatible.
class MaskGenerator {
 public:
  // InvalidArgument if `seed` is not 32 bytes.
  static absl::StatusOr<MaskGenerator> Create(const std::string &seed);

  MaskGenerator(MaskGenerator &&) noexcept;
  MaskGenerator &operator=(MaskGenerator &&) noexcept;
  ~MaskGenerator();

  // The next `count` words of the stream.
  void Fill(uint32_t *out, size_t count);
  // Positions the stream at word `word_offset` (so a vector can be masked or
  // unmasked one chunk at a time).
  void Seek(uint64_t word_offset);

 private:
  struct State;
  explicit MaskGenerator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// ---------------------------------------------------------------------------
// Shamir secret sharing.
//
// Field: GF(p) with the Mersenne prime p = 2^127 - 1, in unsigned __int128
// arithmetic. A secret of any length is cut into 15-byte (120-bit) chunks, each
// below p, and every chunk is shared with its own random polynomial of degree
// threshold-1 (coefficients from RAND_bytes, uniform in [0, p)). A 32-byte
// secret is thus three field elements. Any `threshold` shares reveal the
// secret; fewer reveal nothing about it (information-theoretically).

struct Share {
  int x = 0;               // the evaluation point, 1..num_shares
  size_t secret_size = 0;  // bytes of the shared secret
  std::string y;           // one 16-byte little-endian field element per chunk
};

// Shares with x = 1..num_shares. InvalidArgument if `secret` is empty,
// threshold < 1, threshold > num_shares or num_shares > kMaxShares.
inline constexpr int kMaxShares = 1 << 16;
absl::StatusOr<std::vector<Share>> ShamirSplit(const std::string &secret, int threshold,
                                               int num_shares);

// The secret from at least `threshold` shares (Lagrange interpolation at 0).
// FailedPrecondition "need at least t shares, got k" for too few;
// InvalidArgument for a duplicate x, an x outside 1..kMaxShares, shares of
// different secrets' shapes or a field element >= p. Shares beyond the first
// `threshold` are checked against the interpolated polynomial: DataLoss
// naming the first share that does not lie on it (a corrupt or forged share).
absl::StatusOr<std::string> ShamirReconstruct(const std::vector<Share> &shares, int threshold);

// "FSS1" || x (u32 BE) || secret_size (u32 BE) || y. ParseShare gives
// InvalidArgument for anything that does not parse back into a valid Share.
std::string SerializeShare(const Share &share);
absl::StatusOr<Share> ParseShare(const std::string &bytes);

// ---------------------------------------------------------------------------
// Fixed-point encoding of model updates into words that add up mod 2^32.
//
// Scheme (weighted FedAvg): a site encodes v = weight * clamp(x, -clip, clip)
// with weight in [0, 1] (its example count divided by the run's configured
// maximum per site, so the coordinator, which knows the counts, divides the
// decoded sum by the sum of weights). |v| <= clip, and v is rounded to the
// nearest multiple of step = clip / L, L = 2^(b-1) - 1, stored as a signed
// b-bit integer in two's complement mod 2^32, where
//   b = 32 - ceil(log2(max_sites)).
// The sum of n <= max_sites such integers has magnitude at most
// n * L < 2^31, so it never wraps and decodes as a signed 32-bit integer.
//
// Error bound, per element, excluding the intended clipping:
//   one site:   |Decode(Encode(v)) - v| <= step / 2 = clip / (2^b - 2)
//   n sites:    |Decode(sum)  - sum v| <= n * clip / (2^b - 2)
// (ErrorBound(n)); e.g. clip = 1, max_sites = 1000 (b = 22): 2.4e-7 per site.
struct QuantizationOptions {
  double clip = 1.0;     // > 0 and finite
  int max_sites = 1000;  // 1..2^24 (keeps at least 8 bits per site)
};

// Immutable after Create; thread-safe.
class FixedPointCodec {
 public:
  // InvalidArgument naming the bad option.
  static absl::StatusOr<FixedPointCodec> Create(const QuantizationOptions &options);

  int bits() const { return bits_; }     // b
  double step() const { return step_; }  // clip / L
  // The bound above for a sum over `num_sites` sites.
  double ErrorBound(int num_sites) const;

  // out[i] = round(weight * clamp(in[i], -clip, clip) / step) mod 2^32
  // (+/-inf clamp to +/-clip). InvalidArgument for a NaN element (naming its
  // index) or a weight outside [0, 1].
  absl::Status Encode(const float *in, size_t count, double weight, uint32_t *out) const;

  // out[i] = step * (int32) sum[i], the sum of `num_sites` encoded vectors.
  // InvalidArgument if num_sites is outside 1..max_sites; DataLoss naming the
  // element if a word lies outside what num_sites sites can produce (masks
  // not removed, or a site encoded with other options).
  absl::Status Decode(const uint32_t *sum, size_t count, int num_sites, double *out) const;

 private:
  FixedPointCodec(QuantizationOptions options, int bits, int64_t levels, double step)
      : options_(options), bits_(bits), levels_(levels), step_(step) {}

  QuantizationOptions options_;
  int bits_;
  int64_t levels_;  // L
  double step_;
};

// ---------------------------------------------------------------------------
// SecAgg+ neighbour graph.

// An undirected graph on sites 0..num_sites-1 in which each site shares masks
// and secrets with its neighbours only: the Harary graph H(k, n) laid on a
// random cycle (a permutation drawn from `seed32` with AES-CTR and rejection
// sampling, so identical for everyone who knows the seed), as in Bell et al.
// For even k each site is joined to the k/2 nearest sites on each side of the
// cycle; for odd k and even n also to the opposite site; odd k with odd n is
// rounded up to k+1. neighbours >= num_sites-1 gives the complete graph.
// Result[i] is the sorted list of i's neighbours (never i itself).
//
// The seed must be fixed only after every key advertisement is in (e.g. a hash
// of all of them), so that no one can steer which sites become neighbours.
// InvalidArgument if num_sites < 1, neighbours < 1 (with num_sites > 1) or
// `seed32` is not 32 bytes.
absl::StatusOr<std::vector<std::vector<int>>> NeighbourGraph(int num_sites, int neighbours,
                                                             const std::string &seed32);

// ---------------------------------------------------------------------------
// Masking (all arithmetic mod 2^32).
//
// `first_word` is the position of words[0] in the whole update, so a long
// vector may be processed one chunk at a time with the same result.

// The 32-byte pairwise seed shared by `my_index` and `peer`.
using PairwiseSeedFn = std::function<absl::StatusOr<std::string>(int peer)>;

// For each peer: words += PRG(seed) if my_index < peer, words -= PRG(seed)
// otherwise. InvalidArgument if a peer equals my_index or appears twice, or a
// seed is not 32 bytes; an error from `shared_seed` is returned as is. On
// error `words` is partly masked and must be discarded.
absl::Status ApplyPairwiseMasks(int my_index, const std::vector<int> &neighbours,
                                const PairwiseSeedFn &shared_seed, uint32_t *words, size_t count,
                                uint64_t first_word = 0);

// words += PRG(self_seed). InvalidArgument if the seed is not 32 bytes.
absl::Status ApplySelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                           uint64_t first_word = 0);

// words -= PRG(self_seed): removes a survivor's self mask from the sum once
// the seed is reconstructed from shares.
absl::Status RemoveSelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                            uint64_t first_word = 0);

// Cancels the pairwise masks that the survivors in `surviving_neighbours`
// added towards `dropped_index` (which never uploaded): applies exactly the
// masks the dropped site would have added. `shared_seed(survivor)` gives the
// pair's seed, which the coordinator computes from the dropped site's
// reconstructed mask private key and the survivor's public key.
absl::Status RemoveDroppedPairwiseMasks(int dropped_index,
                                        const std::vector<int> &surviving_neighbours,
                                        const PairwiseSeedFn &shared_seed, uint32_t *words,
                                        size_t count, uint64_t first_word = 0);

// The whole unmasking step for the sum of the survivors' masked words:
// removes every survivor's self mask and, for each dropped site, the masks
// between it and its surviving neighbours in `graph`. `survivors` and
// `dropped` partition the sites of `graph` that were sent shares (sites that
// dropped before masking are simply in neither, and must not be neighbours
// of a survivor). InvalidArgument for an index outside the graph or in both
// lists, or a survivor with a neighbour in neither list.
struct UnmaskingSecrets {
  std::function<absl::StatusOr<std::string>(int survivor)> self_seed;
  std::function<absl::StatusOr<std::string>(int dropped, int survivor)> pairwise_seed;
};
absl::Status RemoveMasks(const std::vector<std::vector<int>> &graph,
                         const std::vector<int> &survivors, const std::vector<int> &dropped,
                         const UnmaskingSecrets &secrets, uint32_t *words, size_t count,
                         uint64_t first_word = 0);

// ---------------------------------------------------------------------------
// Authenticated key advertisement.

// The bytes a site signs to advertise its keys for one round attempt: the
// domain-separation tag "fedmi/secagg/key-advertisement/v2", RoundIdBytes,
// then site, cipher_public_key and mask_public_key each as a u32 BE length
// followed by the bytes. Injective: different inputs never give equal bytes.
std::string KeyAdvertisementBytes(const RoundId &id, const std::string &site,
                                  const std::string &cipher_public_key,
                                  const std::string &mask_public_key);

// SignWithKeyPem (common/crypto/signing.h) over KeyAdvertisementBytes.
// InvalidArgument if a public key is not 32 bytes or `key_pem` holds no EC key.
absl::StatusOr<std::string> SignKeyAdvertisement(const std::string &key_pem, const RoundId &id,
                                                 const std::string &site,
                                                 const std::string &cipher_public_key,
                                                 const std::string &mask_public_key);

// OK if `signature` is SignKeyAdvertisement's by the holder of `cert_pem` and
// the certificate's CN is `site`. PermissionDenied otherwise (naming the
// mismatch); InvalidArgument for a bad certificate or key size. Does not check
// who issued the certificate or its role: pair it with VerifyPartyCertificate.
absl::Status VerifyKeyAdvertisement(const std::string &cert_pem, const RoundId &id,
                                    const std::string &site, const std::string &cipher_public_key,
                                    const std::string &mask_public_key,
                                    const std::string &signature);

}  // namespace secagg
}  // namespace fedmi

#endif  // FEDMI_COMMON_SECAGG_SECAGG_H_
