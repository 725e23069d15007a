// Throughput of the coordinator's hot paths, per byte of model:
//   BM_FedAvgAccept   folding one spooled update into the running sum
//   BM_FedAvgFinish   writing the mean as a new content-addressed model
//   BM_CodecRoundTrip chunking a bundle and reassembling it with checks
// Run: build/bin/aggregation_benchmark [--benchmark_filter=...]
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "common/tensor/synthetic_model.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregator.h"
#include "coordinator/model_store.h"

namespace fedmi {
namespace {

std::string TempDir() {
  std::string pattern = "/tmp/fedmi-bench-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) abort();
  return pattern;
}

void BM_FedAvgAccept(benchmark::State& state) {
  const int64_t params = state.range(0);
  const std::string dir = TempDir();
  TensorBundle update = SyntheticInitialModel(params);
  const std::string path = *WriteBundleFile(dir, update);
  auto aggregator = *MakeAggregator("fedavg");
  if (!aggregator->Begin(1, update.specs).ok()) abort();
  for (auto _ : state) {
    auto reader = *BundleFileReader::Open(path);
    if (!aggregator->Accept("site-1", 10, *reader).ok()) abort();
  }
  state.SetBytesProcessed(state.iterations() * params * 4);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FedAvgAccept)->Arg(1 << 20)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

void BM_FedAvgFinish(benchmark::State& state) {
  const int64_t params = state.range(0);
  const std::string dir = TempDir();
  TensorBundle update = SyntheticInitialModel(params);
  const std::string path = *WriteBundleFile(dir, update);
  auto store = *ModelStore::Open(dir + "/models");
  for (auto _ : state) {
    state.PauseTiming();
    auto aggregator = *MakeAggregator("fedavg");
    if (!aggregator->Begin(1, update.specs).ok()) abort();
    auto reader = *BundleFileReader::Open(path);
    if (!aggregator->Accept("site-1", 10, *reader).ok()) abort();
    state.ResumeTiming();
    if (!aggregator->Finish(*store).ok()) abort();
  }
  state.SetBytesProcessed(state.iterations() * params * 4);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FedAvgFinish)->Arg(1 << 20)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

void BM_CodecRoundTrip(benchmark::State& state) {
  const int64_t params = state.range(0);
  TensorBundle bundle = SyntheticInitialModel(params);
  for (auto _ : state) {
    std::vector<v1::TensorChunk> chunks;
    if (!StreamBundle(bundle, [&](const v1::TensorChunk& chunk) {
           chunks.push_back(chunk);
           return true;
         }).ok()) {
      abort();
    }
    auto decoded = DecodeChunks(chunks, &bundle.specs);
    if (!decoded.ok()) abort();
    benchmark::DoNotOptimize(decoded->body.data());
  }
  state.SetBytesProcessed(state.iterations() * params * 4);
}
BENCHMARK(BM_CodecRoundTrip)->Arg(1 << 20)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmi
