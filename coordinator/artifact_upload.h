// ArtifactUpload: an admin's upload of a tensor bundle that a run spec will
// name by its SHA-256 (Admin.UploadArtifact): initial weights for transfer
// learning, or a TorchScript model file as one uint8 tensor. The body goes
// straight into the ModelStore (content-addressed, like every model) and is
// kept only once its SHA-256 matches the header's. The coordinator never
// parses or runs what it holds.
//
// Not thread-safe: one transport thread drives an upload. The store must
// outlive it.
#ifndef FEDMI_COORDINATOR_ARTIFACT_UPLOAD_H_
#define FEDMI_COORDINATOR_ARTIFACT_UPLOAD_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi {

// 4 GiB: larger than any model a hospital federation trains, and a bound
// on the disk one admin call may fill.
inline constexpr uint64_t kMaxArtifactBytes = uint64_t{1} << 32;

class ArtifactUpload {
 public:
  explicit ArtifactUpload(const ModelStore* store, uint64_t max_bytes = kMaxArtifactBytes);
  ~ArtifactUpload();

  // The header first (float32 or uint8 tensors, at most max_bytes), then
  // body chunks. InvalidArgument naming what is wrong.
  absl::Status Add(const v1::TensorChunk& chunk);
  // Verifies the SHA-256 and stores the bundle. DataLoss for a body that
  // does not match its header.
  absl::StatusOr<v1::ArtifactReceipt> Finish();

 private:
  class Sink;
  const ModelStore* store_;
  uint64_t max_bytes_;
  std::unique_ptr<BundleFileWriter> writer_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<BundleStreamReader> reader_;
  std::vector<TensorSpec> specs_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_ARTIFACT_UPLOAD_H_
