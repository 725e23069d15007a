#include "common/evaluation/acquisition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fedmi {
namespace {

struct NamedMethod {
  AcquisitionMethod method;
  const char* name;
};
constexpr NamedMethod kMethods[] = {{AcquisitionMethod::kEntropy, "entropy"},
                                    {AcquisitionMethod::kMargin, "margin"},
                                    {AcquisitionMethod::kBald, "bald"},
                                    {AcquisitionMethod::kCoreset, "coreset"},
                                    {AcquisitionMethod::kRandom, "random"}};

double SquaredDistance(const float* a, const float* b, int64_t dim) {
  double sum = 0;
  for (int64_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sum += d * d;
  }
  return sum;
}

std::vector<AcquiredImage> CoresetGreedy(const PoolView& pool, int64_t budget,
                                         const std::vector<bool>& skip, uint64_t seed) {
  const int64_t dim = pool.embedding_dim;
  const int64_t labelled = static_cast<int64_t>(pool.labelled_embeddings.size()) / dim;
  std::vector<double> nearest(pool.rows, std::numeric_limits<double>::infinity());
  auto cover = [&](const float* center) {
    for (int64_t row = 0; row < pool.rows; ++row) {
      nearest[row] =
          std::min(nearest[row], SquaredDistance(pool.embeddings.data() + row * dim, center, dim));
    }
  };
  for (int64_t i = 0; i < labelled; ++i) cover(pool.labelled_embeddings.data() + i * dim);
  std::vector<bool> taken = skip.empty() ? std::vector<bool>(pool.rows, false) : skip;
  std::vector<AcquiredImage> chosen;
  std::mt19937_64 random(seed);
  while (static_cast<int64_t>(chosen.size()) < budget) {
    int64_t best = -1;
    for (int64_t row = 0; row < pool.rows; ++row) {
      if (!taken[row] && (best < 0 || nearest[row] > nearest[best])) best = row;
    }
    if (best < 0) break;
    // With nothing labelled every distance is infinite: start anywhere.
    if (std::isinf(nearest[best])) {
      std::vector<int64_t> open;
      for (int64_t row = 0; row < pool.rows; ++row) {
        if (!taken[row]) open.push_back(row);
      }
      best = open[random() % open.size()];
    }
    chosen.push_back({best, std::isinf(nearest[best]) ? 0.0 : std::sqrt(nearest[best])});
    taken[best] = true;
    cover(pool.embeddings.data() + best * dim);
  }
  return chosen;
}

}  // namespace

const char* AcquisitionMethodName(AcquisitionMethod method) {
  for (const NamedMethod& named : kMethods) {
    if (named.method == method) return named.name;
  }
  return "unknown";
}

std::string AcquisitionMethodNames() {
  std::string names;
  for (const NamedMethod& named : kMethods) {
    absl::StrAppend(&names, names.empty() ? "" : "|", named.name);
  }
  return names;
}

absl::StatusOr<AcquisitionMethod> ParseAcquisitionMethod(const std::string& name) {
  for (const NamedMethod& named : kMethods) {
    if (name == named.name) return named.method;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown acquisition method '", name, "'; known: ", AcquisitionMethodNames()));
}

bool NeedsMonteCarlo(AcquisitionMethod method) { return method == AcquisitionMethod::kBald; }
int64_t AcquisitionBudget::Images(int64_t training_images) const {
  return percent ? static_cast<int64_t>(std::ceil(value / 100 * training_images - 1e-9))
                 : static_cast<int64_t>(value);
}

absl::StatusOr<AcquisitionBudget> ParseAcquisitionBudget(const std::string& text) {
  absl::string_view number = text;
  AcquisitionBudget budget;
  budget.percent = absl::ConsumeSuffix(&number, "%");
  if (!absl::SimpleAtod(number, &budget.value) || !(budget.value > 0) ||
      budget.value > (budget.percent ? 100 : 1e9) ||
      (!budget.percent && budget.value != std::floor(budget.value))) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget '", text,
                     "' is neither a count of images (40) nor a share of the site's training "
                     "images (5%)"));
  }
  return budget;
}

bool NeedsEmbeddings(AcquisitionMethod method) { return method == AcquisitionMethod::kCoreset; }

double Entropy(const float* p, int64_t num_classes) {
  double h = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (p[c] > 0) h -= p[c] * std::log(static_cast<double>(p[c]));
  }
  return h;
}

double Margin(const float* p, int64_t num_classes) {
  double first = 0, second = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (p[c] > first) {
      second = first;
      first = p[c];
    } else if (p[c] > second) {
      second = p[c];
    }
  }
  return 1 - (first - second);
}

std::vector<double> BaldScores(const PoolView& pool) {
  const int64_t k = pool.num_classes;
  std::vector<double> scores(pool.rows);
  std::vector<float> mean(k);
  for (int64_t row = 0; row < pool.rows; ++row) {
    std::fill(mean.begin(), mean.end(), 0.0f);
    double expected_entropy = 0;
    for (int pass = 0; pass < pool.mc_passes; ++pass) {
      const float* p = pool.mc_probabilities.data() + (pass * pool.rows + row) * k;
      expected_entropy += Entropy(p, k);
      for (int64_t c = 0; c < k; ++c) mean[c] += p[c] / pool.mc_passes;
    }
    // Float rounding can make the difference a hair below 0.
    scores[row] = std::max(0.0, Entropy(mean.data(), k) - expected_entropy / pool.mc_passes);
  }
  return scores;
}

absl::StatusOr<std::vector<AcquiredImage>> Acquire(AcquisitionMethod method, const PoolView& pool,
                                                   int64_t budget, uint64_t seed,
                                                   const std::vector<bool>& skip) {
  const int64_t k = pool.num_classes;
  if (pool.rows < 0 || k < 2 || static_cast<int64_t>(pool.probabilities.size()) != pool.rows * k ||
      (!skip.empty() && static_cast<int64_t>(skip.size()) != pool.rows) || budget < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "acquisition needs rows x classes probabilities (", pool.rows, " x ", k, ", got ",
        pool.probabilities.size(), "), a skip flag per row and a budget >= 0"));
  }
  if (NeedsMonteCarlo(method) &&
      (pool.mc_passes < 2 ||
       static_cast<int64_t>(pool.mc_probabilities.size()) != pool.mc_passes * pool.rows * k)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bald needs at least 2 Monte-Carlo dropout passes over every row; got ", pool.mc_passes));
  }
  if (NeedsEmbeddings(method) &&
      (pool.embedding_dim < 1 ||
       static_cast<int64_t>(pool.embeddings.size()) != pool.rows * pool.embedding_dim ||
       pool.labelled_embeddings.size() % pool.embedding_dim != 0)) {
    return absl::InvalidArgumentError("coreset needs an embedding of every pool row");
  }
  if (method == AcquisitionMethod::kCoreset) return CoresetGreedy(pool, budget, skip, seed);
  std::vector<AcquiredImage> ranked;
  ranked.reserve(pool.rows);
  std::vector<double> bald;
  if (method == AcquisitionMethod::kBald) bald = BaldScores(pool);
  for (int64_t row = 0; row < pool.rows; ++row) {
    if (!skip.empty() && skip[row]) continue;
    const float* p = pool.probabilities.data() + row * k;
    double score = 0;
    switch (method) {
      case AcquisitionMethod::kEntropy:
        score = Entropy(p, k);
        break;
      case AcquisitionMethod::kMargin:
        score = Margin(p, k);
        break;
      case AcquisitionMethod::kBald:
        score = bald[row];
        break;
      default:
        break;
    }
    ranked.push_back({row, score});
  }
  if (method == AcquisitionMethod::kRandom) {
    std::mt19937_64 random(seed);
    std::shuffle(ranked.begin(), ranked.end(), random);
  } else {
    std::stable_sort(
        ranked.begin(), ranked.end(),
        [](const AcquiredImage& a, const AcquiredImage& b) { return a.score > b.score; });
  }
  if (static_cast<int64_t>(ranked.size()) > budget) ranked.resize(budget);
  return ranked;
}

}  // namespace fedmi
