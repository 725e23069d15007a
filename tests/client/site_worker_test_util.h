// Small specs, noise data and options for SiteWorker tests.
#ifndef FEDMI_TESTS_CLIENT_SITE_WORKER_TEST_UTIL_H_
#define FEDMI_TESTS_CLIENT_SITE_WORKER_TEST_UTIL_H_

#include <random>

#include "client/site_worker.h"
#include "common/data/dataset.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

inline v1::RunSpec CnnSpec(int32_t image_size, int32_t channels) {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_strategy("fedavg");
  spec.set_rounds(5);
  spec.set_min_sites(1);
  spec.set_local_epochs(1);
  spec.set_batch_size(8);
  spec.set_lr(1e-3);
  spec.set_seed(7);
  spec.set_num_classes(2);
  spec.set_optimizer("adam");
  spec.set_round_timeout_s(3600);
  spec.set_image_size(image_size);
  spec.set_channels(channels);
  return spec;
}

// `rows` noise images of side x side x channels, labels alternating 0, 1.
inline ImageSet Noise(int64_t rows, int64_t side, int64_t channels, uint32_t seed) {
  std::mt19937 rng(seed);
  ImageSet set;
  set.height = set.width = side;
  set.channels = channels;
  set.pixels.resize(rows * side * side * channels);
  for (uint8_t& pixel : set.pixels) pixel = static_cast<uint8_t>(rng() & 0xff);
  for (int64_t i = 0; i < rows; ++i) set.labels.push_back(i % 2);
  return set;
}

inline SiteDataset NoiseSite(int64_t side, int64_t channels) {
  SiteDataset data;
  data.train = Noise(16, side, channels, 1);
  data.val = Noise(10, side, channels, 2);
  return data;
}

// The weights a run of `spec` starts from (its model and seed).
inline absl::StatusOr<TensorBundle> InitialWeights(const v1::RunSpec& spec) {
  ml::ModelConfig config;
  config.arch = spec.model();
  config.seed = spec.seed();
  auto model = ml::LocalModel::Create(config);
  if (!model.ok()) return model.status();
  return (*model)->ExportWeights();
}

inline SiteWorkerOptions Options() {
  SiteWorkerOptions options;
  options.site = "site-1";
  options.threads = 1;
  return options;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_CLIENT_SITE_WORKER_TEST_UTIL_H_
