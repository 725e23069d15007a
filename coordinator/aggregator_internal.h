// Pieces shared by the aggregators (fedavg, the spooled ones, site-level DP,
// secagg): the dtype check of Begin, the chunked, validated read of an
// update's body, and FedAvg's factory. Not part of the coordinator's API;
// include it only from coordinator/*aggregator.cc and
// coordinator/server_optimizer.cc.
#ifndef FEDMI_COORDINATOR_AGGREGATOR_INTERNAL_H_
#define FEDMI_COORDINATOR_AGGREGATOR_INTERNAL_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/tensor/tensor_bundle.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregator.h"

namespace fedmi {
namespace aggregator_internal {

inline constexpr size_t kFloatBytes = sizeof(float);
static_assert(kMaxChunkBytes % kFloatBytes == 0, "chunks must hold whole floats");
static_assert(std::numeric_limits<float>::is_iec559, "float must be IEEE-754 binary32");

inline float LoadFloat(const char* bytes) {
  // Bundle bodies are little-endian; so are the hosts fedmi supports.
  float value;
  std::memcpy(&value, bytes, kFloatBytes);
  return value;
}

// InvalidArgument naming the first tensor of `specs` that is not float32,
// e.g. "median cannot aggregate tensor 'bn.num_batches_tracked' of dtype
// int64: only float32 tensors are supported".
absl::Status CheckAllFloat32(absl::string_view strategy, const std::vector<TensorSpec>& specs);

// InvalidArgument naming the tensor and element of parameter `parameter`
// (counted across `specs`), a NaN or infinity `value` that would otherwise
// silently poison the global model: "update of site 'site-2' has nan in
// tensor 'fc.weight' at element 17; fedavg needs finite weights".
absl::Status NonFiniteError(absl::string_view strategy, const std::string& site,
                            const std::vector<TensorSpec>& specs, uint64_t parameter, float value);

// Reads exactly `size` body bytes of `reader` into `out`; DataLoss naming
// `what` if the body ends first, the reader's errors as they are.
absl::Status ReadExactly(BundleFileReader& reader, char* out, size_t size, absl::string_view what);

// Receives `count` consecutive float32 values (raw little-endian bytes), the
// first being parameter `first` of the model (counted across tensors).
using FloatRunConsumer =
    std::function<absl::Status(uint64_t first, const char* bytes, size_t count)>;

// Reads the body of `update`, whose tensors were checked to be `specs`,
// through `buffer` (its size, a non-zero multiple of 4 bytes, is the chunk
// size) and hands every run of whole floats to `consume`, in order.
//   InvalidArgument, naming `site`: the body is longer or shorter than
//     `specs` need, or holds a NaN or infinity (naming its tensor and
//     element; that run is not handed on).
// Errors of the reader and of `consume` are returned as they are. Runs handed
// on before an error stay handed on.
absl::Status ForEachFiniteFloatRun(absl::string_view strategy, const std::string& site,
                                   const std::vector<TensorSpec>& specs, BundleFileReader& update,
                                   std::vector<char>& buffer, const FloatRunConsumer& consume);

// "fedavg" (coordinator/fedavg_aggregator.cc), for MakeAggregator.
std::unique_ptr<Aggregator> MakeFedAvgAggregator();

}  // namespace aggregator_internal
}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_AGGREGATOR_INTERNAL_H_
