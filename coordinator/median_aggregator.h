// Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning:
// Towards Optimal Statistical Rates", ICML 2018): every parameter of the new
// model is the median of the sites' values for it, so fewer than half of the
// sites cannot drag it arbitrarily far, whatever they send. For an even number
// of sites it is the mean of the two middle values, computed in double and
// rounded to float32. The median is unweighted: Accept ignores `weight` (the
// example count), since weighting by a count a site reports itself would let
// one site outvote the others.
//
// Unlike FedAvg it needs every update at once, but Accept's reader is gone
// (and its file deleted) when Accept returns. So Accept copies each update's
// float32 body into a spool file of its own, in a fresh directory created by
// Begin under `spool_parent` and removed by the next Begin, a successful
// Finish and the destructor. Finish then reads the same slice of
// `parameters_per_chunk` values from every spool file at a time, so memory is
// O(sites x chunk) however large the model; disk use under `spool_parent` is
// O(sites x model), and Finish holds one open file per accepted site. A crash
// leaves the spool directory behind ("fedmi-median-*" under `spool_parent`).
//
// Only float32 tensors. NaN and infinity are refused, as by FedAvg: NaN has
// no place in an ordering, and with an even count two infinite middle values
// would average to an infinite or NaN weight.
//
// Thread-compatible: the RoundManager serialises calls. A refused or failed
// Accept leaves nothing behind and the aggregator usable (stronger than
// Aggregator requires). A failed Finish keeps the spool files, so it can be
// retried.
#ifndef FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_
#define FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_

#include <cstddef>
#include <cstdint>
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

struct MedianAggregatorOptions {
  // Where Begin creates each round's spool directory. Empty: the system temp
  // dir (std::filesystem::temp_directory_path(), i.e. $TMPDIR or /tmp). The
  // model store's directory would be the natural place, but the store reaches
  // the aggregator only in Finish.
  std::string spool_parent;
  // Parameters Finish takes from each spool file at a time (> 0).
  size_t parameters_per_chunk = size_t{64} * 1024;
};

class MedianAggregator : public Aggregator {
 public:
  explicit MedianAggregator(MedianAggregatorOptions options);
  ~MedianAggregator() override;  // removes the spool directory
  MedianAggregator(const MedianAggregator&) = delete;
  MedianAggregator& operator=(const MedianAggregator&) = delete;

  // InvalidArgument naming the first tensor that is not float32, or when
  // parameters_per_chunk is 0; FailedPrecondition when the spool directory
  // cannot be created. Discards any previous round and its spool.
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) override;
  // Copies the update's body into a new spool file; `weight` is ignored.
  //   FailedPrecondition: no round begun.
  //   InvalidArgument naming the site: its tensors differ from the model's,
  //     its body has the wrong length, or it holds a NaN or infinity (naming
  //     the tensor and element).
  //   Internal: the spool file cannot be written.
  absl::Status Accept(const std::string& site, double weight, BundleFileReader& update) override;
  int accepted() const override { return static_cast<int>(spooled_.size()); }
  // Writes the coordinate-wise median into `store` and returns its SHA-256
  // (hex); the round then ends and its spool is removed.
  //   FailedPrecondition: no round begun, or no update accepted.
  //   DataLoss: a spool file is missing or short (e.g. a temp-dir cleaner).
  // Errors of the store are returned as they are.
  absl::StatusOr<std::string> Finish(const ModelStore& store) override;

  // This round's spool directory (empty when none), for tests of clean-up.
  const std::string& spool_dir_for_testing() const { return spool_dir_; }

 private:
  struct SpooledUpdate {
    std::string site;
    std::string path;
  };

  absl::Status CheckCollecting(absl::string_view operation) const;
  absl::Status Spool(const std::string& site, BundleFileReader& update, const std::string& path);
  absl::Status WriteMedian(BundleFileWriter& writer);
  void RemoveSpool();

  const MedianAggregatorOptions options_;
  bool collecting_ = false;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  std::string spool_dir_;
  std::vector<SpooledUpdate> spooled_;  // accepted updates, in acceptance order
  uint64_t spool_files_created_ = 0;    // names spool files, refused ones included
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_
