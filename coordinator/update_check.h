// Checks a plaintext model update before any of it reaches an aggregator, so
// that a refused update leaves the round as it was: every float32 value is
// finite, and the L2 norm of the update's change to the global model stays
// within the run's bound. (Masked updates of secure aggregation cannot be
// read; there the sites' clip bounds each value instead.)
//
// The values are scanned while the update streams in (UploadSession), in the
// same pass that hashes and spools it, so the check costs no extra read of
// the update and runs on the upload's own thread, outside the federation's
// lock. The run's bound is applied afterwards (CheckUpdateValues), by the
// round manager, which knows it.
#ifndef FEDMI_COORDINATOR_UPDATE_CHECK_H_
#define FEDMI_COORDINATOR_UPDATE_CHECK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {

// What a scan of an update's values found.
struct UpdateValues {
  // OK, or InvalidArgument naming the site and the tensor and element of the
  // first NaN or infinity ("update of site 'site-2' has nan in tensor
  // 'fc.weight' at element 17; ..."), or a body of the wrong length.
  absl::Status finite;
  // The squared L2 norm of update - global (meaningless when !finite.ok()),
  // summed in an order fixed by the parameters' positions: the same bits
  // however the body was split into chunks.
  double squared_change = 0;
  // The global model the change was measured against (hex SHA-256; set by
  // the upload), so that a round manager can tell a stale scan.
  std::string global_model_sha256;
};

// Scans an update's body as it arrives, in pieces of any size (a float may
// be split across two), against the round's global model read in step.
// Not thread-safe.
class UpdateValueScan {
 public:
  // `global` has exactly `specs` (all float32) and is positioned at the start
  // of its body. InvalidArgument when a tensor is not float32.
  static absl::StatusOr<std::unique_ptr<UpdateValueScan>> Create(
      std::string site, std::vector<TensorSpec> specs, std::unique_ptr<BundleFileReader> global);

  // The next `size` body bytes. Only errors of reading the global model come
  // back (DataLoss when it ends early); what is wrong with the update's values
  // goes into Finish().
  absl::Status Add(const char* data, size_t size);
  // After the last Add.
  UpdateValues Finish();

 private:
  UpdateValueScan(std::string site, std::vector<TensorSpec> specs,
                  std::unique_ptr<BundleFileReader> global);
  // `count` whole floats at `bytes`, the next after parameter scanned_.
  absl::Status ScanFloats(const char* bytes, size_t count);
  void RecordNonFinite(const char* bytes, size_t count);

  const std::string site_;
  const std::vector<TensorSpec> specs_;
  const std::unique_ptr<BundleFileReader> global_;
  const uint64_t parameters_;
  uint64_t scanned_ = 0;         // parameters scanned so far
  char partial_[sizeof(float)];  // the first bytes of a float split across Adds
  size_t partial_bytes_ = 0;
  std::vector<char> global_chunk_;  // the global model's values in step, reused
  // Four partial sums of the squared change: parameter k goes to lane k % 4,
  // so the sum does not depend on how the body was split, and the additions
  // are independent for the CPU to overlap.
  double lanes_[4] = {0, 0, 0, 0};
  absl::Status finite_;
};

// Scans the update file at `update_path` against the global model file at
// `global_path`. InvalidArgument when either file's tensors are not `specs`;
// errors of the files.
absl::StatusOr<UpdateValues> ScanUpdateFile(const std::string& site,
                                            const std::vector<TensorSpec>& specs,
                                            const std::string& update_path,
                                            const std::string& global_path);

// The norm ||update - global||_2 of a scanned update. InvalidArgument: the
// scan's own error, or the norm beyond `max_norm` ("update of site 'site-2'
// changes the model by 31.4 (L2), more than the run's bound of 10").
// `max_norm` <= 0 means no bound.
absl::StatusOr<double> CheckUpdateValues(const std::string& site, const UpdateValues& values,
                                         double max_norm);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_UPDATE_CHECK_H_
