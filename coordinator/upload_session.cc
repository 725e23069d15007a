#include "coordinator/upload_session.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"

namespace fedmi {

// The spool file: a bundle file written through an AtomicFile, so that it
// appears under its final name only complete, and an unfinished one
// disappears with the session. Each body chunk is scanned (when there is a
// scan) and written in the same pass.
class UploadSession::SpoolSink : public BodySink {
 public:
  SpoolSink(Env* env, const std::string& dir, Durability durability, PhaseTimes* phases)
      : env_(env), dir_(dir), durability_(durability), phases_(phases) {}

  // Starts the file once the header is known; `scan` may be null.
  absl::Status Open(const std::vector<TensorSpec>& specs, std::unique_ptr<UpdateValueScan> scan) {
    scan_ = std::move(scan);
    ASSIGN_OR_RETURN(file_, env_->NewAtomicFile(dir_, 0644, Publish::kReplace, durability_));
    return file_->Append(BundleFilePrefix(specs));
  }
  absl::Status Write(const char* data, size_t size) override {
    const auto start = PhaseTimes::Clock::now();
    auto scanned = start;
    if (scan_ != nullptr) {
      absl::Status status = scan_->Add(data, size);
      scanned = PhaseTimes::Clock::now();
      if (!status.ok()) {
        write_time_ += scanned - start;
        return status;
      }
    }
    absl::Status status = file_->Append(absl::string_view(data, size));
    const auto end = PhaseTimes::Clock::now();
    if (phases_ != nullptr) {
      phases_->Add(UpdatePhase::kCheck, scanned - start);
      phases_->Add(UpdatePhase::kSpool, end - scanned);
    }
    write_time_ += end - start;
    return status;
  }
  // The time spent in Write since the last call: what the stream reader's
  // Add spent outside hashing.
  PhaseTimes::Clock::duration TakeWriteTime() {
    return std::exchange(write_time_, PhaseTimes::Clock::duration::zero());
  }
  absl::Status Commit(const std::string& final_path) {
    RETURN_IF_ERROR(file_->Commit(final_path));
    file_.reset();
    return absl::OkStatus();
  }
  std::optional<UpdateValues> values() {
    if (scan_ == nullptr) return std::nullopt;
    return scan_->Finish();
  }

 private:
  Env* const env_;
  const std::string dir_;
  const Durability durability_;
  PhaseTimes* const phases_;
  PhaseTimes::Clock::duration write_time_{};
  std::unique_ptr<AtomicFile> file_;
  std::unique_ptr<UpdateValueScan> scan_;
};

UploadSession::UploadSession(UploadReceiver* receiver, Env* env, FaultHook* faults,
                             UploadLimits limits, Caller caller, v1::UpdateMetadata metadata,
                             ExpectedUpload expected, PhaseTimes* phases)
    : receiver_(receiver),
      env_(env),
      faults_(faults),
      limits_(std::move(limits)),
      caller_(std::move(caller)),
      metadata_(std::move(metadata)),
      expected_(std::move(expected)),
      phases_(phases),
      sink_(std::make_unique<SpoolSink>(
          env_, limits_.spool_dir, expected_.adopted ? Durability::kSynced : Durability::kScratch,
          phases_)) {
  BundleStreamReader::Options options;
  options.expected = expected_.specs.empty() ? nullptr : &expected_.specs;
  options.what = "update";
  options.max_body_bytes = limits_.max_update_bytes;
  reader_ = std::make_unique<BundleStreamReader>(options, sink_.get());
}

UploadSession::~UploadSession() = default;

absl::Status UploadSession::Add(const v1::UploadMessage& message) {
  if (finished_) return refused_.ok() ? absl::FailedPreconditionError("upload finished") : refused_;
  if (message.payload_case() != v1::UploadMessage::kChunk) {
    return Refuse(absl::InvalidArgumentError("upload metadata may only be sent once, first"));
  }
  absl::Status status = AddChunk(message.chunk());
  return status.ok() ? status : Refuse(std::move(status));
}

absl::Status UploadSession::AddChunk(const v1::TensorChunk& chunk) {
  const bool had_header = reader_->has_header();
  if (had_header) faults_->Reached(FaultPoint::kCoordinatorMidUpload, metadata_.round());
  const auto start = PhaseTimes::Clock::now();
  absl::Status added = reader_->Add(chunk);
  if (phases_ != nullptr) {
    phases_->Add(UpdatePhase::kHash, PhaseTimes::Clock::now() - start - sink_->TakeWriteTime());
  }
  RETURN_IF_ERROR(added);
  // The header has been checked against the expected tensors and the size
  // limit: only now is there anything worth spooling.
  if (!had_header && reader_->has_header()) return OpenSpool();
  return absl::OkStatus();
}

absl::Status UploadSession::OpenSpool() {
  std::unique_ptr<UpdateValueScan> scan;
  if (!expected_.global_model_path.empty()) {
    absl::StatusOr<std::unique_ptr<BundleFileReader>> global =
        BundleFileReader::Open(expected_.global_model_path);
    if (!global.ok()) {
      // The coordinator's own file: the site learns that the fault is here,
      // not where the coordinator keeps its models.
      FEDMI_LOG(ERROR) << "cannot read the global model to check the update of site '"
                       << caller_.name << "': " << global.status().message();
      return absl::InternalError(
          "the coordinator cannot read this round's global model; see its log");
    }
    ASSIGN_OR_RETURN(scan,
                     UpdateValueScan::Create(caller_.name, reader_->specs(), *std::move(global)));
  }
  return sink_->Open(reader_->specs(), std::move(scan));
}

absl::StatusOr<v1::UploadReceipt> UploadSession::Finish() {
  if (finished_) return refused_.ok() ? absl::FailedPreconditionError("upload finished") : refused_;
  absl::StatusOr<v1::UploadReceipt> receipt = Complete();
  if (!receipt.ok()) return Refuse(receipt.status());
  finished_ = true;
  return receipt;
}

absl::StatusOr<v1::UploadReceipt> UploadSession::Complete() {
  RETURN_IF_ERROR(reader_->Finish());
  ReceivedUpdate update;
  update.metadata = metadata_;
  update.bytes = reader_->body_bytes();
  update.sha256 = reader_->sha256();
  update.values = sink_->values();
  if (update.values.has_value()) update.values->global_model_sha256 = expected_.global_model_sha256;
  // Named by content and site in the spool directory, on the models' file
  // system, so that the round manager can adopt it by rename.
  update.path = absl::StrCat(limits_.spool_dir, "/", HexEncode(update.sha256), ".", caller_.name);
  RETURN_IF_ERROR(sink_->Commit(update.path));
  return receiver_->CompleteUpload(caller_, std::move(update));
}

absl::Status UploadSession::Cancel() {
  if (finished_) return refused_;
  return Refuse(absl::CancelledError("upload cancelled by the site"));
}

absl::Status UploadSession::Refuse(absl::Status status) {
  finished_ = true;
  refused_ = status;
  // Whatever was spooled goes now: a refused update is never aggregated.
  reader_.reset();
  sink_.reset();
  receiver_->RecordUploadRefused(caller_, metadata_, status);
  return status;
}

}  // namespace fedmi
