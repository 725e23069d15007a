// Throughput of the coordinator's hot paths, per byte of model:
//   BM_FedAvgAccept   folding one spooled update into the running sum
//   BM_FedAvgFinish   writing the mean as a new content-addressed model
//   BM_CodecRoundTrip chunking a bundle and reassembling it with checks
//   BM_UpdateValueScan the upload's value scan per 256 KiB chunk (finite, the
//                     change against the global model read in step), against
//   BM_MemcpyBaseline a plain memcpy of the same bytes (memory bandwidth)
//   BM_ServerOptimizerStep one server optimizer step (fedavgm, fedadam) over
//                     model files, with the step's peak RSS growth in KiB
//   BM_Round/<strategy> a whole round (Begin, the Accepts, Finish) of each
//                     strategy at 8 sites x 11M and 32 sites x 1M parameters, with the process's
//                     peak RSS as a counter (peak_rss_mib): run one strategy
//                     per process to read it, e.g.
//                     --benchmark_filter='BM_Round/krum/8/'
// Run: build/bin/aggregation_benchmark [--benchmark_filter=...]
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/tensor/synthetic_model.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregator.h"
#include "coordinator/model_store.h"
#include "coordinator/server_optimizer.h"
#include "coordinator/update_check.h"

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

// What an upload does to each chunk besides hashing and spooling it: the
// scan reads the update from memory and the global model (page cache) in step.
void BM_UpdateValueScan(benchmark::State& state) {
  const int64_t params = state.range(0);
  const std::string dir = TempDir();
  const TensorBundle global = SyntheticInitialModel(params);
  const std::string global_path = *WriteBundleFile(dir, global);
  TensorBundle update = global;
  ApplySyntheticDelta(3, &update);
  constexpr size_t kChunk = size_t{256} << 10;  // what sites send
  for (auto _ : state) {
    auto scan =
        *UpdateValueScan::Create("site-1", global.specs, *BundleFileReader::Open(global_path));
    for (size_t offset = 0; offset < update.body.size(); offset += kChunk) {
      if (!scan->Add(update.body.data() + offset, std::min(kChunk, update.body.size() - offset))
               .ok()) {
        abort();
      }
    }
    benchmark::DoNotOptimize(scan->Finish().squared_change);
  }
  state.SetBytesProcessed(state.iterations() * params * 4);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_UpdateValueScan)->Arg(1 << 20)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

// The same bytes copied once: the bound the scan is measured against.
void BM_MemcpyBaseline(benchmark::State& state) {
  const int64_t params = state.range(0);
  const TensorBundle update = SyntheticInitialModel(params);
  std::vector<char> out(update.body.size());
  for (auto _ : state) {
    std::memcpy(out.data(), update.body.data(), update.body.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * params * 4);
}
BENCHMARK(BM_MemcpyBaseline)->Arg(1 << 20)->Arg(11 << 20)->Unit(benchmark::kMillisecond);

// Writes a model of one float32 tensor of `params` values into `store` a
// chunk at a time, so the benchmark's own peak RSS stays small; returns its
// hash.
std::string WriteModelInChunks(const ModelStore& store, int64_t params, float offset) {
  const std::vector<TensorSpec> specs = {TensorSpec{"weights", DType::kFloat32, {params}}};
  auto writer = *store.NewWriter(specs);
  std::vector<float> chunk(kMaxChunkBytes / sizeof(float));
  for (int64_t begin = 0; begin < params; begin += static_cast<int64_t>(chunk.size())) {
    const size_t count = static_cast<size_t>(std::min<int64_t>(chunk.size(), params - begin));
    for (size_t i = 0; i < count; ++i)
      chunk[i] = offset + static_cast<float>((begin + i) % 1024) / 1024;
    if (!writer->Write(reinterpret_cast<const char*>(chunk.data()), count * sizeof(float)).ok()) {
      abort();
    }
  }
  std::string digest;
  if (!writer->Commit(&digest).ok()) abort();
  return HexEncode(digest);
}

long PeakRssKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Each iteration is a step from the same global model and state (a step
// never changes its inputs), so it measures one round's step.
void BM_ServerOptimizerStep(benchmark::State& state) {
  const auto kind = static_cast<ServerOptimizerKind>(state.range(0));
  const int64_t params = state.range(1);
  const std::string dir = TempDir();
  auto store = *ModelStore::Open(dir);
  const std::string global = WriteModelInChunks(*store, params, 0);
  const std::string aggregate = WriteModelInChunks(*store, params, 0.5f);
  auto optimizer =
      *ServerOptimizer::Create(ServerOptimizerOptions().set_kind(kind).set_server_lr(0.1));
  // A first step, so the timed ones read a state as every later round does.
  const ServerStep first = *optimizer.Step(*store, global, aggregate, "");
  const long rss_before = PeakRssKiB();
  for (auto _ : state) {
    auto step = optimizer.Step(*store, first.model_sha256, aggregate, first.state_sha256);
    if (!step.ok()) abort();
  }
  state.counters["peak_rss_growth_KiB"] = static_cast<double>(PeakRssKiB() - rss_before);
  state.counters["peak_rss_KiB"] = static_cast<double>(PeakRssKiB());
  state.SetBytesProcessed(state.iterations() * params * 4);
  state.SetLabel(ServerOptimizerName(kind));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ServerOptimizerStep)
    ->Args({static_cast<int64_t>(ServerOptimizerKind::kFedAvgM), 11 << 20})
    ->Args({static_cast<int64_t>(ServerOptimizerKind::kFedAdam), 11 << 20})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Writes `sites` distinct updates of `params` float32 values into `store` one
// chunk at a time, so the benchmark itself never holds a whole model and the
// peak RSS is the aggregator's; returns their paths.
std::vector<std::string> WriteSiteUpdates(const ModelStore& store, int sites, int64_t params) {
  const std::vector<TensorSpec> specs = {TensorSpec{"weights", DType::kFloat32, {params}}};
  std::vector<std::string> paths;
  std::vector<float> chunk(kMaxChunkBytes / sizeof(float));
  for (int s = 0; s < sites; ++s) {
    auto writer = *store.NewWriter(specs);
    for (int64_t begin = 0; begin < params; begin += static_cast<int64_t>(chunk.size())) {
      const int64_t count = std::min<int64_t>(static_cast<int64_t>(chunk.size()), params - begin);
      for (int64_t i = 0; i < count; ++i) {
        chunk[i] = static_cast<float>((begin + i) % 1021) / 1024.0f + static_cast<float>(s) / 64;
      }
      if (!writer->Write(reinterpret_cast<const char*>(chunk.data()), count * sizeof(float)).ok()) {
        abort();
      }
    }
    std::string digest;
    paths.push_back(*writer->Commit(&digest));
  }
  return paths;
}

void BM_Round(benchmark::State& state, const std::string& strategy) {
  const int sites = static_cast<int>(state.range(0));
  const int64_t params = state.range(1);
  const std::string dir = TempDir();
  auto updates = *ModelStore::Open(dir + "/updates");
  auto store = *ModelStore::Open(dir + "/models");
  const std::vector<std::string> paths = WriteSiteUpdates(*updates, sites, params);
  AggregatorOptions options;
  options.spool.spool_parent = dir;
  options.byzantine_sites = 1;  // 2f + 3 = 5 <= 8 sites
  // norm_bounded: site s changes every parameter of site 0's model by s / 64;
  // this bound clips the upper half of the sites.
  options.global_model_path = paths[0];
  options.norm_bound = sites / 128.0 * std::sqrt(static_cast<double>(params));
  for (auto _ : state) {
    auto aggregator = *MakeAggregator(strategy, options);
    if (!aggregator->Begin(1, {TensorSpec{"weights", DType::kFloat32, {params}}}).ok()) abort();
    for (int s = 0; s < sites; ++s) {
      auto reader = *BundleFileReader::Open(paths[s]);
      if (!aggregator->Accept("site-" + std::to_string(s), 10, *reader).ok()) abort();
    }
    if (!aggregator->Finish(*store).ok()) abort();
  }
  state.SetBytesProcessed(state.iterations() * sites * params * 4);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  state.counters["peak_rss_mib"] = static_cast<double>(usage.ru_maxrss) / 1024;  // KiB on Linux
  std::filesystem::remove_all(dir);
}
BENCHMARK_CAPTURE(BM_Round, fedavg, std::string("fedavg"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, norm_bounded, std::string("norm_bounded"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, median, std::string("median"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, trimmed_mean, std::string("trimmed_mean"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, krum, std::string("krum"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, multikrum, std::string("multikrum"))
    ->Args({8, 11 << 20})
    ->Args({32, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmi
