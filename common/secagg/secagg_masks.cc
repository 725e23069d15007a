// Implements secagg.h: the AES-256-CTR mask generator, the neighbour graph and
// pairwise and self masks.
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_internal.h"

namespace fedmi {
namespace secagg {
namespace {

// ---------------------------------------------------------------------------
// Masks.

constexpr size_t kMaskChunkWords = 4096;  // 16 KiB of keystream at a time

enum class MaskSign { kAdd, kSubtract };

absl::Status AddStream(const std::string &seed, MaskSign sign, uint32_t *words, size_t count,
                       uint64_t first_word) {
  ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(seed));
  if (first_word != 0) generator.Seek(first_word);
  uint32_t buffer[kMaskChunkWords];
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(kMaskChunkWords, count - done);
    generator.Fill(buffer, n);
    uint32_t *out = words + done;
    if (sign == MaskSign::kAdd) {
      for (size_t i = 0; i < n; ++i) out[i] += buffer[i];
    } else {
      for (size_t i = 0; i < n; ++i) out[i] -= buffer[i];
    }
    done += n;
  }
  OPENSSL_cleanse(buffer, sizeof(buffer));
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// MaskGenerator.

struct MaskGenerator::State {
  CipherCtxPtr ctx;
  std::string seed;
  ~State() { OPENSSL_cleanse(seed.data(), seed.size()); }
};

namespace {

[[noreturn]] void MaskFailure(const char *what) {
  // A mask that silently came out short or zero would publish a site's update;
  // stopping is the only safe answer to a broken cipher library.
  std::fprintf(stderr, "fedmi secagg: AES-256-CTR %s failed: %s\n", what,
               TakeOpenSslErrors().c_str());
  std::abort();
}

// (Re)starts the AES-256-CTR stream at block `block`.
bool StartStream(EVP_CIPHER_CTX *ctx, const std::string &seed, uint64_t block) {
  unsigned char iv[16] = {0};
  for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<unsigned char>(block >> (8 * i));
  return EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, Bytes(seed), iv) == 1;
}

// Encrypting a constant zero block avoids a separate pass clearing `out`.
constexpr size_t kZeroBytes = 64 * 1024;
const unsigned char kZeros[kZeroBytes] = {};

void Keystream(EVP_CIPHER_CTX *ctx, unsigned char *out, size_t bytes) {
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(kZeroBytes, bytes - done);
    int len = 0;
    if (EVP_EncryptUpdate(ctx, out + done, &len, kZeros, static_cast<int>(n)) != 1 ||
        static_cast<size_t>(len) != n) {
      MaskFailure("encryption");
    }
    done += n;
  }
}

}  // namespace

MaskGenerator::MaskGenerator(std::unique_ptr<State> state) : state_(std::move(state)) {}
MaskGenerator::MaskGenerator(MaskGenerator &&) noexcept = default;
MaskGenerator &MaskGenerator::operator=(MaskGenerator &&) noexcept = default;
MaskGenerator::~MaskGenerator() = default;

absl::StatusOr<MaskGenerator> MaskGenerator::Create(const std::string &seed) {
  RETURN_IF_ERROR(CheckKeySize(seed, "mask seed"));
  auto state = std::make_unique<State>();
  state->seed = seed;
  state->ctx.reset(EVP_CIPHER_CTX_new());
  if (state->ctx == nullptr || !StartStream(state->ctx.get(), seed, 0)) {
    return OpenSslError("AES-256-CTR setup failed");
  }
  return MaskGenerator(std::move(state));
}

void MaskGenerator::Fill(uint32_t *out, size_t count) {
  Keystream(state_->ctx.get(), reinterpret_cast<unsigned char *>(out), count * sizeof(uint32_t));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  for (size_t i = 0; i < count; ++i) out[i] = __builtin_bswap32(out[i]);
#endif
}

void MaskGenerator::Seek(uint64_t word_offset) {
  if (!StartStream(state_->ctx.get(), state_->seed, word_offset / 4)) MaskFailure("seek");
  unsigned char skip[16];
  Keystream(state_->ctx.get(), skip, (word_offset % 4) * sizeof(uint32_t));
}

// ---------------------------------------------------------------------------
// Neighbour graph.

absl::StatusOr<std::vector<std::vector<int>>> NeighbourGraph(int num_sites, int neighbours,
                                                             const std::string &seed32) {
  RETURN_IF_ERROR(CheckKeySize(seed32, "neighbour graph seed"));
  if (num_sites < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_sites must be >= 1, got ", num_sites));
  }
  if (neighbours < 1 && num_sites > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("each site needs at least 1 neighbour, got ", neighbours));
  }
  std::vector<std::set<int>> adjacency(num_sites);
  if (neighbours >= num_sites - 1) {
    for (int i = 0; i < num_sites; ++i) {
      for (int j = 0; j < num_sites; ++j) {
        if (i != j) adjacency[i].insert(j);
      }
    }
  } else {
    // A uniformly random cycle order: Fisher-Yates with unbiased draws from
    // an AES-CTR stream keyed by the seed.
    ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(seed32));
    std::vector<int> order(num_sites);
    for (int i = 0; i < num_sites; ++i) order[i] = i;
    for (int i = num_sites - 1; i > 0; --i) {
      const uint64_t bound = static_cast<uint64_t>(i) + 1;
      // Draws at or above the largest multiple of `bound` would bias the
      // result.
      const uint64_t reject_from = (uint64_t{1} << 32) - (uint64_t{1} << 32) % bound;
      uint32_t draw;
      do {
        generator.Fill(&draw, 1);
      } while (draw >= reject_from);
      std::swap(order[i], order[draw % bound]);
    }
    int k = neighbours;
    if (k % 2 == 1 && num_sites % 2 == 1) ++k;
    const int half = k / 2;
    auto link = [&](int a, int b) {
      if (a == b) return;
      adjacency[a].insert(b);
      adjacency[b].insert(a);
    };
    for (int pos = 0; pos < num_sites; ++pos) {
      for (int d = 1; d <= half; ++d) link(order[pos], order[(pos + d) % num_sites]);
      if (k % 2 == 1) link(order[pos], order[(pos + num_sites / 2) % num_sites]);
    }
  }
  std::vector<std::vector<int>> graph(num_sites);
  for (int i = 0; i < num_sites; ++i) graph[i].assign(adjacency[i].begin(), adjacency[i].end());
  return graph;
}

// ---------------------------------------------------------------------------
// Masking.

absl::Status ApplyPairwiseMasks(int my_index, const std::vector<int> &neighbours,
                                const PairwiseSeedFn &shared_seed, uint32_t *words, size_t count,
                                uint64_t first_word) {
  std::set<int> seen;
  for (int peer : neighbours) {
    if (peer == my_index) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", my_index, " lists itself as a masking neighbour"));
    }
    if (!seen.insert(peer).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", my_index, " lists neighbour ", peer, " twice"));
    }
  }
  for (int peer : neighbours) {
    ASSIGN_OR_RETURN(std::string seed, shared_seed(peer));
    if (seed.size() != kKeySize) {
      return absl::InvalidArgumentError(absl::StrCat("pairwise seed of sites ", my_index, " and ",
                                                     peer, " must be ", kKeySize, " bytes, got ",
                                                     seed.size()));
    }
    absl::Status status = AddStream(seed, my_index < peer ? MaskSign::kAdd : MaskSign::kSubtract,
                                    words, count, first_word);
    OPENSSL_cleanse(seed.data(), seed.size());
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status ApplySelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                           uint64_t first_word) {
  RETURN_IF_ERROR(CheckKeySize(self_seed, "self-mask seed"));
  return AddStream(self_seed, MaskSign::kAdd, words, count, first_word);
}

absl::Status RemoveSelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                            uint64_t first_word) {
  RETURN_IF_ERROR(CheckKeySize(self_seed, "self-mask seed"));
  return AddStream(self_seed, MaskSign::kSubtract, words, count, first_word);
}

absl::Status RemoveDroppedPairwiseMasks(int dropped_index,
                                        const std::vector<int> &surviving_neighbours,
                                        const PairwiseSeedFn &shared_seed, uint32_t *words,
                                        size_t count, uint64_t first_word) {
  // Survivor u added +PRG if u < d, -PRG otherwise; the dropped site d would
  // have added the opposite, which is exactly ApplyPairwiseMasks as d.
  return ApplyPairwiseMasks(dropped_index, surviving_neighbours, shared_seed, words, count,
                            first_word);
}

absl::Status RemoveMasks(const std::vector<std::vector<int>> &graph,
                         const std::vector<int> &survivors, const std::vector<int> &dropped,
                         const UnmaskingSecrets &secrets, uint32_t *words, size_t count,
                         uint64_t first_word) {
  const int num_sites = static_cast<int>(graph.size());
  enum class Fate { kUnknown, kSurvived, kDropped };
  std::vector<Fate> fate(num_sites, Fate::kUnknown);
  auto mark = [&](int site, Fate f) -> absl::Status {
    if (site < 0 || site >= num_sites) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", site, " is not in the ", num_sites, "-site neighbour graph"));
    }
    if (fate[site] != Fate::kUnknown) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", site, " is listed twice among survivors and dropped sites"));
    }
    fate[site] = f;
    return absl::OkStatus();
  };
  for (int s : survivors) RETURN_IF_ERROR(mark(s, Fate::kSurvived));
  for (int d : dropped) RETURN_IF_ERROR(mark(d, Fate::kDropped));
  for (int s : survivors) {
    for (int peer : graph[s]) {
      if (peer < 0 || peer >= num_sites || fate[peer] == Fate::kUnknown) {
        return absl::InvalidArgumentError(absl::StrCat(
            "survivor ", s, " has neighbour ", peer, ", which is neither a survivor nor dropped"));
      }
    }
  }

  for (int s : survivors) {
    ASSIGN_OR_RETURN(std::string seed, secrets.self_seed(s));
    absl::Status status = RemoveSelfMask(seed, words, count, first_word);
    OPENSSL_cleanse(seed.data(), seed.size());
    RETURN_IF_ERROR(status);
  }
  for (int d : dropped) {
    std::vector<int> surviving_neighbours;
    for (int peer : graph[d]) {
      if (peer >= 0 && peer < num_sites && fate[peer] == Fate::kSurvived) {
        surviving_neighbours.push_back(peer);
      }
    }
    RETURN_IF_ERROR(RemoveDroppedPairwiseMasks(
        d, surviving_neighbours, [&](int survivor) { return secrets.pairwise_seed(d, survivor); },
        words, count, first_word));
  }
  return absl::OkStatus();
}

}  // namespace secagg
}  // namespace fedmi
