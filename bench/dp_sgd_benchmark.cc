// DP-SGD training throughput against non-private training of the same model
// on the same threads, in examples per second (Google Benchmark):
//   BM_Train/<arch>               plain minibatch SGD (Adam), batch 64
//   BM_DpSgd/vectorized_cnn_gn    DP-SGD, a parameter copy per example
//   BM_DpSgd/microbatch_cnn_gn    DP-SGD, one backward pass per example
//   BM_DpSgd/layerwise_cnn_gn     DP-SGD, norms and clipped sums from each
//                                 layer's inputs and output gradients (the
//                                 default)
// DP-SGD steps take each of 1024 synthetic 28x28 images with probability
// 64/1024, so batches average 64 as in the plain run. Threads: FEDMI_THREADS
// (default 1).
// Run: build/bin/dp_sgd_benchmark [--benchmark_filter=...]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "client/ml/local_model.h"

namespace fedmi::ml {
namespace {

constexpr int64_t kExamples = 1024;
constexpr int kBatch = 64;

const ImageSet& Images() {
  static const ImageSet* images = [] {
    auto* set = new ImageSet;
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> pixel(0, 255);
    set->height = set->width = 28;
    set->channels = 1;
    set->pixels.resize(kExamples * 28 * 28);
    for (uint8_t& p : set->pixels) p = static_cast<uint8_t>(pixel(rng));
    for (int64_t i = 0; i < kExamples; ++i) set->labels.push_back(i % 2);
    return set;
  }();
  return *images;
}

void Configure() {
  const char* threads = std::getenv("FEDMI_THREADS");
  SetThreads(threads != nullptr ? std::atoi(threads) : 1);
}

std::unique_ptr<LocalModel> Model(const std::string& arch) {
  Configure();
  ModelConfig config;
  config.arch = arch;
  auto model = LocalModel::Create(config);
  if (!model.ok()) std::abort();
  return std::move(*model);
}

void TrainOrDie(LocalModel& model, const TrainOptions& options) {
  if (auto summary = model.Train(Images(), options); !summary.ok()) {
    std::fprintf(stderr, "%s\n", summary.status().ToString().c_str());
    std::abort();
  }
}

void Run(benchmark::State& state, const std::string& arch, const TrainOptions& options) {
  auto model = Model(arch);
  // Untimed: a fresh module's first calls profile and compile its TorchScript
  // graphs, which a site pays once per run (SiteWorker keeps one model per
  // run), not per round. Timing it made plain training look slower than it
  // is. (Google Benchmark's own warm-up would build a new model.)
  TrainOrDie(*model, options);
  for (auto _ : state) TrainOrDie(*model, options);
  // One epoch (or kExamples / kBatch DP steps of kBatch expected examples).
  state.SetItemsProcessed(state.iterations() * kExamples);
}

void BM_Train(benchmark::State& state, const std::string& arch) {
  TrainOptions options;
  options.batch_size = kBatch;
  Run(state, arch, options);
}

void BM_DpSgd(benchmark::State& state, PerExampleMethod method) {
  TrainOptions options;
  options.batch_size = kBatch;
  options.dp = DpSgdOptions{1.0,
                            1.0,
                            static_cast<double>(kBatch) / kExamples,
                            kExamples / kBatch,
                            method,
                            /*secret_seed=*/7};
  Run(state, "cnn-gn", options);
}

BENCHMARK_CAPTURE(BM_Train, cnn, std::string("cnn"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Train, cnn_gn, std::string("cnn-gn"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DpSgd, vectorized_cnn_gn, PerExampleMethod::kVectorized)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DpSgd, microbatch_cnn_gn, PerExampleMethod::kMicrobatch)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DpSgd, layerwise_cnn_gn, PerExampleMethod::kLayerwise)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmi::ml
