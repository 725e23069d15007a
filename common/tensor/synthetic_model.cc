#include "common/tensor/synthetic_model.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/numbers.h"

namespace fedmi {

TensorBundle SyntheticInitialModel(int64_t params) {
  TensorBundle bundle;
  bundle.specs.push_back(TensorSpec{"weights", DType::kFloat32, {params}});
  bundle.body.resize(static_cast<size_t>(params) * sizeof(float));
  float* values = reinterpret_cast<float*>(bundle.body.data());
  // Multiples of 1/1024 keep FedAvg exact; a hash rather than i % 1024 keeps
  // the model aperiodic, so a window of one site's update (global + delta)
  // never recurs elsewhere in a model and tests can search stored files for it.
  for (int64_t i = 0; i < params; ++i) {
    uint64_t x = static_cast<uint64_t>(i) + 0x9e3779b97f4a7c15ULL;  // splitmix64
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    values[i] = static_cast<float>(x % 1024) / 1024.0f;
  }
  return bundle;
}

int64_t SyntheticSiteIndex(const std::string& site) {
  size_t start = site.size();
  while (start > 0 && std::isdigit(static_cast<unsigned char>(site[start - 1]))) --start;
  int64_t index = 0;
  if (start == site.size() || !absl::SimpleAtoi(site.substr(start), &index) || index < 1) {
    return 1;
  }
  return std::min<int64_t>(index, 1000);
}

float SyntheticDelta(int64_t site_index) { return static_cast<float>(site_index) / 256.0f; }

int64_t SyntheticExamples(int64_t site_index) { return 100 * site_index; }

void ApplySyntheticDelta(int64_t site_index, TensorBundle* bundle) {
  const float delta = SyntheticDelta(site_index);
  for (size_t i = 0; i < bundle->specs.size(); ++i) {
    if (bundle->specs[i].dtype != DType::kFloat32) continue;
    float* values = reinterpret_cast<float*>(bundle->body.data() + bundle->OffsetOf(i));
    const int64_t count = bundle->specs[i].NumElements();
    for (int64_t j = 0; j < count; ++j) values[j] += delta;
  }
}

std::vector<float> ExpectedSyntheticAggregate(const std::vector<float>& global,
                                              const std::vector<int64_t>& site_indices) {
  double total_weight = 0;
  for (int64_t k : site_indices) total_weight += static_cast<double>(SyntheticExamples(k));
  std::vector<float> out(global.size());
  for (size_t j = 0; j < global.size(); ++j) {
    double sum = 0;
    for (int64_t k : site_indices) {
      const float site_value = global[j] + SyntheticDelta(k);
      sum += static_cast<double>(SyntheticExamples(k)) * static_cast<double>(site_value);
    }
    out[j] = static_cast<float>(sum / total_weight);
  }
  return out;
}

}  // namespace fedmi
