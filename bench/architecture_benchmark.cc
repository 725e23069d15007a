// Training speed of each architecture with fedmi's LibTorch (TorchScript
// modules, LocalModel::Train): images per second on synthetic noise, after
// one warm-up batch (TorchScript's profiling executor optimises on the first
// runs). bench/pytorch_train_speed.py measures torchvision's eager models the
// same way, for comparison on the same machine.
//
//   architecture_benchmark [--threads 2] [--batch 16] [--batches 3]
//                          [--channels 3] [--side 0] [arch ...]
//
// --side 0 uses each architecture's default side (ModelInfo::default_side).
// Adam at lr 1e-3, two classes, no augmentation. No arguments: the three
// ImageNet classification networks.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "client/ml/local_model.h"
#include "common/runspec/model_names.h"

namespace fedmi {
namespace {

ImageSet Noise(int64_t n, int64_t side, int64_t channels) {
  ImageSet set;
  set.height = set.width = side;
  set.channels = channels;
  set.pixels.resize(n * side * side * channels);
  for (size_t i = 0; i < set.pixels.size(); ++i) set.pixels[i] = static_cast<uint8_t>(i * 37 % 251);
  for (int64_t i = 0; i < n; ++i) set.labels.push_back(i % 2);
  return set;
}

int Run(int argc, char** argv) {
  int threads = 2, batch = 16, batches = 3, channels = 3, side_flag = 0;
  std::vector<std::string> archs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--threads") {
      threads = value();
    } else if (arg == "--batch") {
      batch = value();
    } else if (arg == "--batches") {
      batches = value();
    } else if (arg == "--channels") {
      channels = value();
    } else if (arg == "--side") {
      side_flag = value();
    } else {
      archs.push_back(arg);
    }
  }
  if (archs.empty()) archs = {kDenseNet121Model, kResNet50Model, kMobileNetV2Model};
  ml::SetThreads(threads);
  std::printf("arch,side,batch,threads,parameters,images_per_s\n");
  for (const std::string& arch : archs) {
    const ModelInfo* info = FindModelInfo(arch);
    if (info == nullptr || info->task != ModelTask::kClassification) {
      std::fprintf(stderr, "%s: not a classification architecture\n", arch.c_str());
      return 2;
    }
    const int side = side_flag > 0 ? side_flag : info->default_side;
    ml::ModelConfig config;
    config.arch = arch;
    config.channels = channels;
    config.height = config.width = side;
    auto model = ml::LocalModel::Create(config);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    ml::TrainOptions options;
    options.batch_size = batch;
    options.augmentation.max_shift = 0;
    if (auto warm = (*model)->Train(Noise(batch, side, channels), options); !warm.ok()) {
      std::fprintf(stderr, "%s\n", std::string(warm.status().message()).c_str());
      return 1;
    }
    const ImageSet data = Noise(int64_t{batch} * batches, side, channels);
    const auto start = std::chrono::steady_clock::now();
    if (auto trained = (*model)->Train(data, options); !trained.ok()) {
      std::fprintf(stderr, "%s\n", std::string(trained.status().message()).c_str());
      return 1;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s,%d,%d,%d,%lld,%.2f\n", arch.c_str(), side, batch, threads,
                static_cast<long long>((*model)->ParameterCount()),
                static_cast<double>(data.size()) / seconds);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace fedmi

int main(int argc, char** argv) { return fedmi::Run(argc, argv); }
