// Measures model quality on a MedMNIST-style .npz: trains on the train split
// and prints val/test AUC and accuracy after every epoch (or FedAvg round),
// with the seconds each took.
//
//   centralized_baseline --data ../shared/data/pneumoniamnist.npz --epochs 10
//   centralized_baseline --data ... --sites 4 --rounds 10   # simulated FedAvg
//
// With --sites K the train split is dealt round-robin, after a seeded
// shuffle, to K sites; each round every site starts from the global weights,
// trains `--local-epochs` epochs, and the global model becomes the
// example-weighted mean of the site weights (FedAvg, McMahan et al. 2017).
// Centrally, each epoch is one Train() call, so like a federation's rounds
// it starts with a fresh optimizer state. With --cosine 1 epoch (or round)
// e of E trains at lr * (1 + cos(pi * (e - 1) / E)) / 2.
//
// Test accuracy is printed twice: at threshold 0.5 and at the threshold that
// maximises validation accuracy ("acc@val").
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "client/ml/local_model.h"
#include "common/data/image_data.h"
#include "common/data/metrics.h"

namespace fedmi {
namespace {

struct Flags {
  std::string data = "../shared/data/pneumoniamnist.npz";
  std::string arch = "cnn";
  int epochs = 10;  // central epochs, or FedAvg rounds
  int sites = 0;    // 0 = centralized
  int local_epochs = 1;
  int batch_size = 64;
  double lr = 1e-3;
  std::string optimizer = "adam";
  int threads = 2;
  uint64_t seed = 0;
  bool balance_classes = true;
  bool augment = true;  // 0: every transform off
  ml::AugmentationOptions augmentation;
  double weight_decay = 0;
  bool cosine = false;
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--help" || i + 1 >= argc) {
      std::fprintf(
          stderr,
          "usage: %s [--data F] [--arch cnn|resnet18] [--epochs N | --sites K --rounds N]\n"
          "          [--local-epochs E] [--batch B] [--lr X] [--optimizer adam|sgd]\n"
          "          [--threads T] [--seed S] [--balance 0|1] [--augment 0|1]\n"
          "          [--shift PX] [--crop-scale MIN] [--crop-aspect MAX] [--rotate DEG]\n"
          "          [--flip 0|1] [--brightness B] [--contrast C]\n"
          "          [--weight-decay W] [--cosine 0|1]\n",
          argv[0]);
      return false;
    }
    const char* value = argv[++i];
    if (name == "--data")
      flags->data = value;
    else if (name == "--arch")
      flags->arch = value;
    else if (name == "--epochs" || name == "--rounds")
      flags->epochs = std::atoi(value);
    else if (name == "--sites")
      flags->sites = std::atoi(value);
    else if (name == "--local-epochs")
      flags->local_epochs = std::atoi(value);
    else if (name == "--batch")
      flags->batch_size = std::atoi(value);
    else if (name == "--lr")
      flags->lr = std::atof(value);
    else if (name == "--optimizer")
      flags->optimizer = value;
    else if (name == "--threads")
      flags->threads = std::atoi(value);
    else if (name == "--seed")
      flags->seed = std::strtoull(value, nullptr, 10);
    else if (name == "--balance")
      flags->balance_classes = std::atoi(value) != 0;
    else if (name == "--augment")
      flags->augment = std::atoi(value) != 0;
    else if (name == "--shift")
      flags->augmentation.max_shift = std::atoi(value);
    else if (name == "--crop-scale")
      flags->augmentation.crop_min_scale = std::atof(value);
    else if (name == "--crop-aspect")
      flags->augmentation.crop_max_aspect = std::atof(value);
    else if (name == "--rotate")
      flags->augmentation.max_rotation_degrees = std::atof(value);
    else if (name == "--flip")
      flags->augmentation.horizontal_flip = std::atoi(value) != 0;
    else if (name == "--brightness")
      flags->augmentation.brightness = std::atof(value);
    else if (name == "--contrast")
      flags->augmentation.contrast = std::atof(value);
    else if (name == "--weight-decay")
      flags->weight_decay = std::atof(value);
    else if (name == "--cosine")
      flags->cosine = std::atoi(value) != 0;
    else {
      std::fprintf(stderr, "unknown flag %s\n", name.c_str());
      return false;
    }
  }
  return true;
}

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  if (!value.ok()) {
    std::fprintf(stderr, "error: %s\n", value.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(value);
}

void OrDie(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

ImageSet Subset(const ImageSet& all, const std::vector<int64_t>& rows) {
  ImageSet subset;
  subset.height = all.height;
  subset.width = all.width;
  subset.channels = all.channels;
  const int64_t bytes = all.ImageBytes();
  for (int64_t row : rows) {
    subset.pixels.insert(subset.pixels.end(), all.pixels.begin() + row * bytes,
                         all.pixels.begin() + (row + 1) * bytes);
    subset.labels.push_back(all.labels[row]);
  }
  return subset;
}

std::vector<ImageSet> DealToSites(const ImageSet& train, int sites, uint64_t seed) {
  std::vector<int64_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<int64_t>> rows(sites);
  for (size_t i = 0; i < order.size(); ++i) rows[i % sites].push_back(order[i]);
  std::vector<ImageSet> shards;
  for (const auto& site_rows : rows) shards.push_back(Subset(train, site_rows));
  return shards;
}

// Example-weighted mean of float32 bundles with identical specs.
TensorBundle Average(const std::vector<TensorBundle>& bundles,
                     const std::vector<int64_t>& weights) {
  TensorBundle mean = bundles.front();
  const size_t n = mean.body.size() / sizeof(float);
  std::vector<double> sum(n, 0.0);
  double total = 0;
  for (size_t b = 0; b < bundles.size(); ++b) {
    const float* values = reinterpret_cast<const float*>(bundles[b].body.data());
    for (size_t i = 0; i < n; ++i) sum[i] += static_cast<double>(weights[b]) * values[i];
    total += static_cast<double>(weights[b]);
  }
  float* out = reinterpret_cast<float*>(mean.body.data());
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(sum[i] / total);
  return mean;
}

std::string Describe(const BinaryMetrics& m, double loss) {
  char line[160];
  std::snprintf(line, sizeof(line), "auc %.4f acc %.4f sens %.3f spec %.3f loss %.4f", m.auc,
                m.accuracy, m.sensitivity, m.specificity, loss);
  return line;
}

// The threshold among the scores (and 0.5) with the highest accuracy on
// `labels`; ties keep the one closest to 0.5.
double BestThreshold(const std::vector<int64_t>& labels, const std::vector<float>& scores) {
  std::vector<std::pair<float, int64_t>> sorted;
  for (size_t i = 0; i < scores.size(); ++i) sorted.emplace_back(scores[i], labels[i]);
  std::sort(sorted.begin(), sorted.end());
  // Threshold t = sorted[k].first predicts 1 for examples k.. (and ties).
  int64_t positives = 0;
  for (const auto& [score, label] : sorted) positives += label;
  const int64_t n = static_cast<int64_t>(sorted.size());
  double best = 0.5, best_correct = -1;
  int64_t negatives_below = 0, positives_below = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (k == 0 || sorted[k].first != sorted[k - 1].first) {
      const double correct = static_cast<double>(negatives_below + (positives - positives_below));
      const double t = sorted[k].first;
      if (correct > best_correct ||
          (correct == best_correct && std::abs(t - 0.5) < std::abs(best - 0.5))) {
        best = t;
        best_correct = correct;
      }
    }
    (sorted[k].second == 1 ? positives_below : negatives_below) += 1;
  }
  return best;
}

// "val ... | test ... acc@val A (t T)".
std::string Evaluate(ml::LocalModel& model, const ImageSet& val, const ImageSet& test) {
  const ml::Predictions on_val = OrDie(model.Predict(val));
  const ml::Predictions on_test = OrDie(model.Predict(test));
  const double threshold = BestThreshold(val.labels, on_val.prob_positive);
  const BinaryMetrics val_metrics = OrDie(ComputeBinaryMetrics(val.labels, on_val.prob_positive));
  const BinaryMetrics test_metrics =
      OrDie(ComputeBinaryMetrics(test.labels, on_test.prob_positive));
  const BinaryMetrics test_at_val =
      OrDie(ComputeBinaryMetrics(test.labels, on_test.prob_positive, threshold));
  char tail[64];
  std::snprintf(tail, sizeof(tail), " acc@val %.4f (t %.3f)", test_at_val.accuracy, threshold);
  return "val " + Describe(val_metrics, on_val.loss) + " | test " +
         Describe(test_metrics, on_test.loss) + tail;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Run(const Flags& flags) {
  ml::SetThreads(flags.threads);
  const ImageSet train = OrDie(LoadNpzSplit(flags.data, "train"));
  const ImageSet val = OrDie(LoadNpzSplit(flags.data, "val"));
  const ImageSet test = OrDie(LoadNpzSplit(flags.data, "test"));
  std::printf("data %s: train %lld, val %lld, test %lld; %s on %s, %d threads\n",
              flags.data.c_str(), static_cast<long long>(train.size()),
              static_cast<long long>(val.size()), static_cast<long long>(test.size()),
              flags.arch.c_str(), ml::DefaultDevice().c_str(), flags.threads);

  ml::ModelConfig config;
  config.arch = flags.arch;
  config.height = train.height;
  config.width = train.width;
  config.channels = train.channels;
  config.seed = flags.seed;
  auto model = OrDie(ml::LocalModel::Create(config));

  ml::TrainOptions options;
  options.epochs = flags.local_epochs;
  options.batch_size = flags.batch_size;
  options.lr = flags.lr;
  options.optimizer = flags.optimizer;
  options.balance_classes = flags.balance_classes;
  options.augmentation = flags.augmentation;
  if (!flags.augment) {
    options.augmentation = ml::AugmentationOptions{};
    options.augmentation.max_shift = 0;
  }
  options.weight_decay = flags.weight_decay;

  const std::vector<ImageSet> shards =
      flags.sites > 0 ? DealToSites(train, flags.sites, flags.seed) : std::vector<ImageSet>{};
  if (flags.sites > 0) {
    std::printf("FedAvg: %d sites of ~%lld examples, %d local epoch(s) per round\n", flags.sites,
                static_cast<long long>(shards.front().size()), flags.local_epochs);
  } else {
    options.epochs = 1;
  }
  for (int epoch = 1; epoch <= flags.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    double train_loss = 0;
    if (flags.cosine) {
      options.lr = flags.lr * 0.5 * (1 + std::cos(M_PI * (epoch - 1) / flags.epochs));
    }
    if (flags.sites == 0) {
      options.seed = flags.seed * 1000 + epoch;
      train_loss = OrDie(model->Train(train, options)).loss;
    } else {
      const TensorBundle global = OrDie(model->ExportWeights());
      std::vector<TensorBundle> updates;
      std::vector<int64_t> sizes;
      for (size_t s = 0; s < shards.size(); ++s) {
        OrDie(model->ImportWeights(global));
        options.seed = flags.seed * 1000000 + epoch * 1000 + s;
        train_loss += OrDie(model->Train(shards[s], options)).loss / shards.size();
        updates.push_back(OrDie(model->ExportWeights()));
        sizes.push_back(shards[s].size());
      }
      OrDie(model->ImportWeights(Average(updates, sizes)));
    }
    const double seconds = SecondsSince(start);
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf("%s %2d  %5.1fs (cpu %5.1fs)  lr %.2g train loss %.4f | %s\n",
                flags.sites ? "round" : "epoch", epoch, seconds, cpu_seconds, options.lr,
                train_loss, Evaluate(*model, val, test).c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace fedmi

int main(int argc, char** argv) {
  fedmi::Flags flags;
  if (!fedmi::ParseFlags(argc, argv, &flags)) return 2;
  return fedmi::Run(flags);
}
