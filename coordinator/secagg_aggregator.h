// Coordinator side of secure aggregation (common/secagg.h): sums the sites'
// masked updates modulo 2^32 and, once the protocol has recovered the secrets
// that cancel the masks, turns the sum into the next global model. The
// coordinator never sees an individual site's update, only the survivors'
// weighted sum.
//
// What a site uploads (common/secagg_bundle.h, MaskUpdateForSecAgg): for
// every float32 parameter, Encode(weight * (local - global)) plus its masks,
// as a bundle with the model's names and shapes and dtype int32, and its
// `weight` = examples / max examples per site, in (0, 1], in clear. Finish
// computes
//   new = global + Decode(sum of survivors' words, unmasked) / sum of weights
// which is the example-weighted FedAvg mean of the survivors' (clipped)
// models, up to the codec's quantization error divided by the sum of weights
// (FixedPointCodec::ErrorBound) plus the final rounding to float32.
//
// Transport-free: the protocol around it (key advertisement, neighbour graph,
// share relay, unmasking requests) belongs to the RoundManager, which also
// maps site names to graph indices. This class does not implement
// Aggregator: its Begin needs the global model and its Finish the unmasking
// secrets.
//
// Memory: one uint32 accumulator word per parameter (half of FedAvg's double
// accumulator), plus one chunk buffer of each kind (<= 1 MiB of words) while
// accepting or finishing, however many sites take part.
//
// Thread-compatible: the RoundManager serialises calls. A failed Accept
// (after the update's metadata passed its checks) leaves a partial sum: the
// aggregator is then unusable until the next Begin, and the round fails. A
// failed Finish leaves the accumulator untouched, so it can be retried with
// other secrets.
#ifndef FEDMI_COORDINATOR_SECAGG_AGGREGATOR_H_
#define FEDMI_COORDINATOR_SECAGG_AGGREGATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/secagg/secagg.h"
#include "common/tensor/tensor_bundle.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "coordinator/site_dp_aggregator.h"

namespace fedmi {

// What Finish needs to cancel the masks: the inputs of secagg::RemoveMasks.
// Indices are the round's neighbour-graph indices; which site name has which
// index is the caller's business.
struct UnmaskingInput {
  std::vector<std::vector<int>> graph;  // secagg::NeighbourGraph of the round
  // Indices of exactly the accepted sites (their masked updates are in the
  // sum), in any order, and of the sites that were sent shares but whose
  // update was not accepted.
  std::vector<int> survivors;
  std::vector<int> dropped;
  // Reconstructed self-mask seeds of survivors and pairwise seeds between
  // each dropped site and its surviving neighbours. Each is asked for once
  // per Finish.
  secagg::UnmaskingSecrets secrets;
};

class SecAggAggregator {
 public:
  // InvalidArgument naming a bad option (FixedPointCodec::Create). Every site
  // of the run must encode with the same options.
  static absl::StatusOr<std::unique_ptr<SecAggAggregator>> Create(
      const secagg::QuantizationOptions& options);

  // Starts a round over the float32 model `model_specs`, whose global model
  // (the one the sites trained from) is the bundle file `global_model_path`;
  // it is read again by Finish. InvalidArgument naming a tensor that is not
  // float32, or when the file's tensors differ from `model_specs`; the
  // reader's error when it cannot be opened; ResourceExhausted when the
  // accumulator cannot be allocated. Discards any previous round.
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs,
                     std::string global_model_path);

  // Adds one site's masked update (positioned at the start of its body) to
  // the sum, modulo 2^32, reading at most 1 MiB at a time.
  //   FailedPrecondition: no round begun, the aggregator is broken, or
  //     accepting would exceed the codec's max_sites (the sum could wrap).
  //   AlreadyExists: `site` was already accepted this round.
  //   InvalidArgument: `weight` is not finite or not in (0, 1], or the
  //     update's tensors are not the model's with dtype int32 (naming the
  //     first mismatch), or its body has the wrong length.
  // A read error or a wrong body length makes the aggregator unusable.
  absl::Status Accept(const std::string& site, double weight, BundleFileReader& masked_update);

  // Site-level DP-FedAvg: Finish divides the unmasked sum by
  // `sum.denominator` instead of the sites' weights, after adding its
  // central noise if any (coordinator/site_dp_aggregator.h). Until the next
  // Begin, which turns it off.
  void UseSiteDp(const SiteDpSum& sum) { site_dp_ = sum; }

  // Sites accepted this round, in acceptance order.
  const std::vector<std::string>& accepted_sites() const { return accepted_sites_; }
  // Sum of the accepted sites' weights.
  double total_weight() const { return total_weight_; }

  // Removes the masks chunk by chunk, decodes, divides by total_weight(),
  // adds the global model and writes the float32 result into `store`;
  // returns its SHA-256 (hex). The round then ends (call Begin again).
  //   FailedPrecondition: no round begun, broken, or no update accepted.
  //   InvalidArgument: `unmasking.survivors` does not have one index per
  //     accepted site, or secagg::RemoveMasks rejects the graph or lists.
  //   DataLoss naming the tensor: a decoded word lies outside what the
  //     survivors can produce, i.e. a mask was not removed (a wrong or
  //     missing secret, or a site that encoded with other options).
  // Errors from the secrets, the global model file and the store are
  // returned as they are. On any error the accumulator is kept.
  absl::StatusOr<std::string> Finish(const ModelStore& store, const UnmaskingInput& unmasking);

  // The running sum, for tests that check no unmasked update is held.
  const std::vector<uint32_t>& accumulator_for_testing() const { return sum_; }

 private:
  enum class State { kIdle, kCollecting, kBroken };

  SecAggAggregator(secagg::QuantizationOptions options, secagg::FixedPointCodec codec)
      : options_(options), codec_(codec) {}

  absl::Status CheckCollecting(absl::string_view operation) const;
  absl::Status AddWords(const std::string& site, BundleFileReader& update);
  // Writes the unmasked, decoded mean plus the global model into `writer`.
  absl::Status WriteModel(const secagg::UnmaskingSecrets& secrets, const UnmaskingInput& unmasking,
                          BundleFileWriter& writer);

  const secagg::QuantizationOptions options_;
  const secagg::FixedPointCodec codec_;
  State state_ = State::kIdle;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;         // the float32 model
  std::vector<TensorSpec> masked_specs_;  // the same with dtype int32
  std::string global_model_path_;
  std::vector<uint32_t> sum_;  // sum of the masked words mod 2^32, one per parameter
  std::vector<std::string> accepted_sites_;
  std::set<std::string> accepted_set_;
  double total_weight_ = 0;
  std::optional<SiteDpSum> site_dp_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SECAGG_AGGREGATOR_H_
