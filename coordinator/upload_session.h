// UploadSession: one site's update upload (federation.proto's UploadUpdate
// stream after its metadata), from the first bundle chunk to the receipt,
// without any transport. It checks the bundle header against the tensors
// the round expects before it accepts a body byte, enforces the size limit,
// and then makes one pass over each body chunk: it hashes it, scans a
// plaintext update's values against the round's global model
// (UpdateValueScan: finite, and the change's norm) and spools it to a bundle
// file in the spool directory (through Env, so that a full disk is a unit
// test). Only when the stream has ended and the SHA-256 the header declares
// matches does it hand the update, with what the scan found, to its run:
// a cut-off upload never reaches an aggregator. Spool files of updates are
// scratch (not fsynced: they are folded and deleted within the round, and a
// restart removes leftovers); the initial model's, which the model store
// adopts, is durable.
//
// Every refusal is final, recorded once in the audit log (update.refused,
// with its code and reason) and leaves nothing in the spool directory. The
// first refusal comes back from every later call.
//
// Not thread-safe: one transport thread drives a session. The receiver, Env
// and FaultHook must outlive it.
#ifndef FEDMI_COORDINATOR_UPLOAD_SESSION_H_
#define FEDMI_COORDINATOR_UPLOAD_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/caller.h"
#include "coordinator/phase_times.h"
#include "coordinator/round_manager.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Where finished and refused uploads go; Federation implements it.
class UploadReceiver {
 public:
  virtual ~UploadReceiver() = default;
  // Hands a complete, checksum-verified update to its run; returns the
  // (signed) receipt. The receiver deletes or adopts the file.
  virtual absl::StatusOr<v1::UploadReceipt> CompleteUpload(const Caller& caller,
                                                           ReceivedUpdate update) = 0;
  // Records a refused update in the audit log.
  virtual void RecordUploadRefused(const Caller& caller, const v1::UpdateMetadata& metadata,
                                   const absl::Status& status) = 0;
};

struct UploadLimits {
  std::string spool_dir;  // same file system as the models: updates are adopted by rename
  uint64_t max_update_bytes = uint64_t{1} << 34;
};

class UploadSession {
 public:
  // `expected.specs` empty: any layout (an initial model).
  UploadSession(UploadReceiver* receiver, Env* env, FaultHook* faults, UploadLimits limits,
                Caller caller, v1::UpdateMetadata metadata, ExpectedUpload expected,
                PhaseTimes* phases = nullptr);
  ~UploadSession();

  // The next message of the stream: a bundle chunk. InvalidArgument for a
  // second metadata message; the stream reader's errors for a bad chunk
  // ("update stream sent body bytes before its header", ...).
  absl::Status Add(const v1::UploadMessage& message);
  // The stream ended: checks that the whole body arrived and its SHA-256,
  // publishes the spool file and completes the upload.
  absl::StatusOr<v1::UploadReceipt> Finish();
  // The site gave up mid-stream: Cancelled, recorded as a refusal.
  absl::Status Cancel();

  const Caller& caller() const { return caller_; }
  const v1::UpdateMetadata& metadata() const { return metadata_; }

 private:
  class SpoolSink;

  absl::Status AddChunk(const v1::TensorChunk& chunk);
  // Once the header is checked: the spool file, and the scan of a plaintext
  // update's values.
  absl::Status OpenSpool();
  absl::StatusOr<v1::UploadReceipt> Complete();
  // Records `status`, discards the spool file and ends the session.
  absl::Status Refuse(absl::Status status);

  UploadReceiver* const receiver_;
  Env* const env_;
  FaultHook* const faults_;
  const UploadLimits limits_;
  const Caller caller_;
  const v1::UpdateMetadata metadata_;
  const ExpectedUpload expected_;
  PhaseTimes* const phases_;  // may be null
  std::unique_ptr<SpoolSink> sink_;
  std::unique_ptr<BundleStreamReader> reader_;
  absl::Status refused_;
  bool finished_ = false;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_UPLOAD_SESSION_H_
