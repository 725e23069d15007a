// The common half of the aggregators that need every site's update at once
// (median, trimmed mean, Krum): Accept's reader is gone (and its file
// deleted) when Accept returns, so Accept copies each update's float32 body
// into a spool file of its own, in a fresh directory created by Begin under
// `spool_parent` ("fedmi-<strategy>-*") and removed by the next Begin, a
// successful Finish and the destructor. Finish then hands the subclass the
// spool, which it reads back `parameters_per_chunk` values per update at a
// time (ForEachChunk), so memory stays O(sites x chunk) however large the
// model. Disk use under `spool_parent` is O(sites x model); a crash leaves
// the spool directory behind.
//
// What it holds, for N accepted updates of P parameters and a chunk of C
// parameters (C = min(parameters_per_chunk, P), 65,536 by default):
//   Accept: one kMaxChunkBytes buffer; N site names.
//   ForEachChunk over K updates: K x C floats, plus one open FILE (and its
//     stdio buffer) per update.
//   disk: 4 x N x P bytes.
//
// Only float32 tensors. NaN and infinity are refused, as by FedAvg: NaN has no
// place in an ordering or a distance. `weight` is ignored: weighting by the
// example count a site reports itself would let one site outvote the others.
//
// Thread-compatible: the RoundManager serialises calls. A refused or failed
// Accept leaves nothing behind and the aggregator usable (stronger than
// Aggregator requires). A failed Finish keeps the spool files, so it can be
// retried.
#ifndef FEDMI_COORDINATOR_SPOOLED_AGGREGATOR_H_
#define FEDMI_COORDINATOR_SPOOLED_AGGREGATOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor/tensor_bundle.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregator.h"
#include "coordinator/model_store.h"

namespace fedmi {

class SpooledAggregator : public Aggregator {
 public:
  ~SpooledAggregator() override;  // removes the spool directory
  SpooledAggregator(const SpooledAggregator&) = delete;
  SpooledAggregator& operator=(const SpooledAggregator&) = delete;

  // InvalidArgument naming the first tensor that is not float32, when
  // parameters_per_chunk is 0, or when the subclass's options are out of
  // range (CheckOptions); FailedPrecondition when the spool directory cannot
  // be created. Discards any previous round and its spool.
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) final;
  // Copies the update's body into a new spool file; `weight` is ignored.
  //   FailedPrecondition: no round begun.
  //   InvalidArgument naming the site: its tensors differ from the model's,
  //     its body has the wrong length, or it holds a NaN or infinity (naming
  //     the tensor and element).
  //   Internal: the spool file cannot be written.
  absl::Status Accept(const std::string& site, double weight, BundleFileReader& update) final;
  int accepted() const final { return static_cast<int>(spooled_.size()); }
  // Writes the aggregate into `store` and returns its SHA-256 (hex); the
  // round then ends and its spool is removed.
  //   FailedPrecondition: no round begun, no update accepted, or too few for
  //     the strategy (CheckUpdateCount, e.g. Krum's 2f + 3).
  //   DataLoss: a spool file is missing or short (e.g. a temp-dir cleaner).
  // Errors of the store are returned as they are.
  absl::StatusOr<std::string> Finish(const ModelStore& store) final;

  // This round's spool directory (empty when none), for tests of clean-up.
  const std::string& spool_dir_for_testing() const { return spool_dir_; }

 protected:
  // `strategy` names the aggregator in errors and in the spool directory's
  // name, so it must be a plain word ("median").
  SpooledAggregator(std::string strategy, SpoolOptions options);

  // InvalidArgument when the subclass's own options are out of range; Begin
  // refuses the round then.
  virtual absl::Status CheckOptions() const { return absl::OkStatus(); }
  // FailedPrecondition when `updates` (>= 1) is too few to aggregate.
  virtual absl::Status CheckUpdateCount(size_t /*updates*/) const { return absl::OkStatus(); }
  // Writes the aggregate's body (P float32 values) to `writer`, reading the
  // spool with ForEachChunk.
  virtual absl::Status WriteAggregate(BundleFileWriter& writer) = 0;

  // Receives parameters [first, first + count) of the updates asked for:
  // slices[k * count + i] is parameter first + i of the k-th of them.
  using ChunkConsumer =
      std::function<absl::Status(uint64_t first, size_t count, const float* slices)>;
  // Reads updates `which` (indices in acceptance order, each < accepted())
  // side by side, chunk_parameters() values of each at a time, in order.
  //   DataLoss: a spool file is missing or short.
  //   ResourceExhausted: the chunks do not fit in memory.
  // Errors of `consume` are returned as they are.
  absl::Status ForEachChunk(const std::vector<size_t>& which, const ChunkConsumer& consume) const;
  // Resizes `buffer` to `size` zeros; ResourceExhausted naming `what` when
  // it does not fit in memory.
  template <typename T>
  absl::Status Allocate(std::vector<T>& buffer, size_t size, absl::string_view what) const {
    try {
      buffer.assign(size, T{});
    } catch (const std::bad_alloc&) {
      return ResourceExhausted(size * sizeof(T), what);
    } catch (const std::length_error&) {
      return ResourceExhausted(size * sizeof(T), what);
    }
    return absl::OkStatus();
  }
  // Writes `count` float32 values (little-endian, as the hosts fedmi runs on).
  static absl::Status WriteFloats(BundleFileWriter& writer, const float* values, size_t count);

  const std::string& strategy() const { return strategy_; }
  int32_t round() const { return round_; }
  const std::string& site(size_t index) const { return spooled_[index].site; }
  uint64_t parameters() const { return parameters_; }
  // The most parameters ForEachChunk hands over per update at a time.
  size_t chunk_parameters() const;

 private:
  struct SpooledUpdate {
    std::string site;
    std::string path;
  };

  absl::Status CheckCollecting(absl::string_view operation) const;
  absl::Status ResourceExhausted(size_t bytes, absl::string_view what) const;
  absl::Status Spool(const std::string& site, BundleFileReader& update, const std::string& path);
  void RemoveSpool();

  const std::string strategy_;
  const SpoolOptions options_;
  bool collecting_ = false;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  uint64_t parameters_ = 0;
  std::string spool_dir_;
  std::vector<SpooledUpdate> spooled_;  // accepted updates, in acceptance order
  uint64_t spool_files_created_ = 0;    // names spool files, refused ones included
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SPOOLED_AGGREGATOR_H_
