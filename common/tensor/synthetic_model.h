// The synthetic benchmark model: one float32 tensor "weights" with dyadic
// values. Sites return it plus a dyadic delta, so example-weighted means are
// exact in double precision and a benchmark can check FedAvg bit for bit.
#ifndef FEDMI_COMMON_TENSOR_SYNTHETIC_MODEL_H_
#define FEDMI_COMMON_TENSOR_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor/tensor_bundle.h"

namespace fedmi {

TensorBundle SyntheticInitialModel(int64_t params);
// k, the number at the end of the site's name ("site-3" -> 3; otherwise 1).
int64_t SyntheticSiteIndex(const std::string& site);
// A synthetic site adds k / 256 to every weight and reports 100 * k examples.
float SyntheticDelta(int64_t site_index);
int64_t SyntheticExamples(int64_t site_index);
// Adds SyntheticDelta(site_index) to every float32 element of `bundle`.
void ApplySyntheticDelta(int64_t site_index, TensorBundle* bundle);
// The FedAvg aggregate of `global` over sites 1..sites, computed as the
// coordinator does (double accumulation, one division, rounding to float).
std::vector<float> ExpectedSyntheticAggregate(const std::vector<float>& global,
                                              const std::vector<int64_t>& site_indices);

}  // namespace fedmi

#endif  // FEDMI_COMMON_TENSOR_SYNTHETIC_MODEL_H_
