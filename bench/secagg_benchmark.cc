// Throughput of secure aggregation's hot paths on this machine:
//   BM_MaskGeneratorFill  expanding a 32-byte seed into mask words
//   BM_RawAes256Ctr       the same keystream straight from EVP, the ceiling
//   BM_ApplyPairwiseMasks one site masking an 11M-parameter update with 4
//                         neighbours (SecAgg+ k=4), including key schedule
// Run: build/bin/secagg_benchmark [--benchmark_filter=...]
#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/secagg/secagg.h"

namespace fedmi {
namespace secagg {
namespace {

constexpr size_t kBufferBytes = size_t{64} << 20;

void BM_MaskGeneratorFill(benchmark::State &state) {
  std::vector<uint32_t> words(kBufferBytes / sizeof(uint32_t));
  auto generator = MaskGenerator::Create(std::string(kKeySize, '\x42'));
  if (!generator.ok()) abort();
  for (auto _ : state) {
    generator->Fill(words.data(), words.size());
    benchmark::DoNotOptimize(words.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBufferBytes);
}
BENCHMARK(BM_MaskGeneratorFill)->Unit(benchmark::kMillisecond);

void BM_RawAes256Ctr(benchmark::State &state) {
  std::vector<unsigned char> buffer(kBufferBytes, 0);
  const unsigned char key[32] = {0x42};
  const unsigned char iv[16] = {0};
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, key, iv) != 1) abort();
  for (auto _ : state) {
    int len = 0;
    if (EVP_EncryptUpdate(ctx, buffer.data(), &len, buffer.data(),
                          static_cast<int>(buffer.size())) != 1) {
      abort();
    }
    benchmark::DoNotOptimize(buffer.data());
  }
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kBufferBytes);
}
BENCHMARK(BM_RawAes256Ctr)->Unit(benchmark::kMillisecond);

void BM_ApplyPairwiseMasks(benchmark::State &state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const std::vector<int> neighbours = {1, 2, 7, 9};  // site 5: two adds, two subtracts
  std::vector<uint32_t> words(count, 1);
  auto seed = [](int peer) -> absl::StatusOr<std::string> {
    return std::string(kKeySize, static_cast<char>(peer));
  };
  for (auto _ : state) {
    if (!ApplyPairwiseMasks(5, neighbours, seed, words.data(), words.size()).ok()) abort();
    benchmark::DoNotOptimize(words.data());
  }
  // Bytes of update masked (each byte takes 4 keystream bytes).
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * count * 4);
}
BENCHMARK(BM_ApplyPairwiseMasks)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace secagg
}  // namespace fedmi
