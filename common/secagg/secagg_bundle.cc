#include "common/secagg/secagg_bundle.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/large_buffer.h"
#include "common/base/status.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {
namespace {

constexpr size_t kWordsPerChunk = kMaxChunkBytes / sizeof(uint32_t);
static_assert(sizeof(float) == sizeof(uint32_t), "a masked word replaces one float32 parameter");

// "tensor 'fc.weight' element 17" for the flat parameter `index` of an
// all-float32 model.
std::string Locate(const std::vector<TensorSpec>& specs, uint64_t index) {
  uint64_t start = 0;
  for (const TensorSpec& spec : specs) {
    const uint64_t count = static_cast<uint64_t>(spec.NumElements());
    if (index < start + count) {
      return absl::StrCat("tensor '", spec.name, "' element ", index - start);
    }
    start += count;
  }
  return absl::StrCat("parameter ", index);
}

}  // namespace

absl::StatusOr<std::vector<TensorSpec>> MaskedUpdateSpecs(
    const std::vector<TensorSpec>& model_specs) {
  std::vector<TensorSpec> masked = model_specs;
  for (TensorSpec& spec : masked) {
    if (spec.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("secure aggregation cannot aggregate tensor '", spec.name, "' of dtype ",
                       DTypeName(spec.dtype), ": only float32 tensors are supported"));
    }
    spec.dtype = DType::kInt32;
  }
  return masked;
}

absl::StatusOr<TensorBundle> MaskUpdateForSecAgg(const TensorBundle& global,
                                                 const TensorBundle& local, double weight,
                                                 const secagg::FixedPointCodec& codec, int my_index,
                                                 const std::vector<int>& neighbours,
                                                 const secagg::PairwiseSeedFn& pairwise_seed,
                                                 const std::string& self_seed) {
  ASSIGN_OR_RETURN(std::vector<TensorSpec> masked_specs, MaskedUpdateSpecs(global.specs));
  RETURN_IF_ERROR(CheckSpecsMatch(local.specs, global.specs, "local model"));
  const uint64_t body_bytes = TotalBytes(global.specs);
  if (global.body.size() != body_bytes || local.body.size() != body_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("global model body has ", global.body.size(), " bytes and local model body ",
                     local.body.size(), " bytes; their tensors need ", body_bytes));
  }
  if (!(weight > 0 && weight <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secure aggregation weight must be in (0, 1] (examples / max examples per site), got ",
        weight));
  }

  // Ask for each pairwise seed once (an X25519 agreement each), not once per
  // chunk. A masking call on zero words also checks the neighbour list.
  std::map<int, std::string> seeds;
  RETURN_IF_ERROR(secagg::ApplyPairwiseMasks(
      my_index, neighbours,
      [&](int peer) -> absl::StatusOr<std::string> {
        ASSIGN_OR_RETURN(std::string seed, pairwise_seed(peer));
        seeds[peer] = seed;
        return seed;
      },
      nullptr, 0));
  const secagg::PairwiseSeedFn cached_seed = [&](int peer) -> absl::StatusOr<std::string> {
    return seeds.at(peer);
  };

  RETURN_IF_ERROR(secagg::ApplySelfMask(self_seed, nullptr, 0));  // checks the seed's size

  TensorBundle masked;
  masked.specs = std::move(masked_specs);
  ResizeLargeBuffer(&masked.body, body_bytes);
  const uint64_t parameters = body_bytes / sizeof(float);
  std::vector<float> old_values(kWordsPerChunk);
  std::vector<float> delta(kWordsPerChunk);
  std::vector<uint32_t> words(kWordsPerChunk);
  for (uint64_t begin = 0; begin < parameters; begin += kWordsPerChunk) {
    const size_t count =
        static_cast<size_t>(std::min<uint64_t>(kWordsPerChunk, parameters - begin));
    const size_t offset = static_cast<size_t>(begin * sizeof(float));
    std::memcpy(old_values.data(), global.body.data() + offset, count * sizeof(float));
    std::memcpy(delta.data(), local.body.data() + offset, count * sizeof(float));
    for (size_t i = 0; i < count; ++i) {
      if (!std::isfinite(old_values[i]) || !std::isfinite(delta[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot mask a non-finite model: global has ", old_values[i],
                         " and local has ", delta[i], " at ", Locate(global.specs, begin + i)));
      }
      delta[i] -= old_values[i];
    }
    RETURN_IF_ERROR(codec.Encode(delta.data(), count, weight, words.data()));
    RETURN_IF_ERROR(
        secagg::ApplyPairwiseMasks(my_index, neighbours, cached_seed, words.data(), count, begin));
    RETURN_IF_ERROR(secagg::ApplySelfMask(self_seed, words.data(), count, begin));
    std::memcpy(masked.body.data() + offset, words.data(), count * sizeof(uint32_t));
  }
  return masked;
}

}  // namespace fedmi
