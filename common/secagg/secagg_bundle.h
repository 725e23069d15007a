// Secure aggregation of whole models: how a site turns its trained float32
// model into the masked update it uploads, and what that update looks like.
//
// A masked update carries, for every float32 parameter x of the model,
//   word = Encode(weight * (local - global)) + self mask + pairwise masks
// modulo 2^32 (common/secagg.h: FixedPointCodec, ApplySelfMask,
// ApplyPairwiseMasks), in the model's parameter order. On the wire and on disk
// it is a bundle with the model's tensor names and shapes but dtype int32: the
// words' bit patterns, little-endian (there is no unsigned dtype). The site
// sends `weight` (its example count divided by the run's maximum per site)
// in clear next to it; the coordinator (coordinator/secagg_aggregator.h)
// divides the decoded sum by the sum of the weights.
//
// Sending the weighted delta rather than the weights themselves keeps the
// values small (|weight * delta| <= clip), so the fixed-point grid is fine
// enough; the coordinator adds the mean delta to the global model it sent.
//
// Free functions; thread-safe.
#ifndef FEDMI_COMMON_SECAGG_SECAGG_BUNDLE_H_
#define FEDMI_COMMON_SECAGG_SECAGG_BUNDLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/secagg.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// The specs of a masked update for `model_specs`: same names and shapes,
// dtype int32. InvalidArgument naming the first tensor that is not float32
// (only float32 models can be securely aggregated).
absl::StatusOr<std::vector<TensorSpec>> MaskedUpdateSpecs(
    const std::vector<TensorSpec>& model_specs);

// Site side of one round: the masked update of `local` (the trained model)
// relative to `global` (the model the round started from).
//
// `weight` must be finite and in (0, 1]; `codec` must have the run's options;
// `my_index`, `neighbours` (from secagg::NeighbourGraph), `pairwise_seed` and
// `self_seed` are this site's view of the round's key agreement. Each
// neighbour's seed is asked for once.
//
// InvalidArgument when `global` is not all float32, `local` does not have
// exactly `global`'s specs, a body has the wrong size, the weight is out of
// range, or a parameter of either model is NaN or infinite (naming the tensor
// and element: a diverged model must not be clipped into the aggregate
// silently). Errors from `pairwise_seed` and the masking functions are
// returned as they are. Deltas beyond the codec's clip are clipped (that is
// the codec's documented behaviour, not an error).
absl::StatusOr<TensorBundle> MaskUpdateForSecAgg(const TensorBundle& global,
                                                 const TensorBundle& local, double weight,
                                                 const secagg::FixedPointCodec& codec, int my_index,
                                                 const std::vector<int>& neighbours,
                                                 const secagg::PairwiseSeedFn& pairwise_seed,
                                                 const std::string& self_seed);

}  // namespace fedmi

#endif  // FEDMI_COMMON_SECAGG_SECAGG_BUNDLE_H_
