#include "coordinator/artifact_upload.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"

namespace fedmi {

class ArtifactUpload::Sink : public BodySink {
 public:
  explicit Sink(BundleFileWriter* writer) : writer_(writer) {}
  absl::Status Write(const char* data, size_t size) override { return writer_->Write(data, size); }

 private:
  BundleFileWriter* writer_;
};

ArtifactUpload::ArtifactUpload(const ModelStore* store, uint64_t max_bytes)
    : store_(store), max_bytes_(max_bytes) {}

ArtifactUpload::~ArtifactUpload() = default;

absl::Status ArtifactUpload::Add(const v1::TensorChunk& chunk) {
  if (reader_ == nullptr) {
    if (chunk.payload_case() != v1::TensorChunk::kHeader) {
      return absl::InvalidArgumentError("an artifact upload must start with its bundle header");
    }
    ASSIGN_OR_RETURN(specs_, SpecsFromHeader(chunk.header()));
    if (specs_.empty()) return absl::InvalidArgumentError("the artifact has no tensors");
    for (const TensorSpec& spec : specs_) {
      if (spec.dtype != DType::kFloat32 && spec.dtype != DType::kUInt8) {
        return absl::InvalidArgumentError(
            absl::StrCat("artifact tensor '", spec.name, "' is ", DTypeName(spec.dtype),
                         "; artifacts hold float32 weights or a uint8 model file"));
      }
    }
    if (TotalBytes(specs_) > max_bytes_) {
      return absl::InvalidArgumentError(absl::StrCat("the artifact has ", TotalBytes(specs_),
                                                     " bytes; the limit is ", max_bytes_));
    }
    ASSIGN_OR_RETURN(writer_, store_->NewWriter(specs_));
    sink_ = std::make_unique<Sink>(writer_.get());
    BundleStreamReader::Options options;
    options.what = "artifact";
    options.max_body_bytes = max_bytes_;
    reader_ = std::make_unique<BundleStreamReader>(options, sink_.get());
  }
  return reader_->Add(chunk);
}

absl::StatusOr<v1::ArtifactReceipt> ArtifactUpload::Finish() {
  if (reader_ == nullptr) return absl::InvalidArgumentError("the artifact upload was empty");
  RETURN_IF_ERROR(reader_->Finish());
  std::string digest;
  RETURN_IF_ERROR(writer_->Commit(&digest).status());
  writer_.reset();
  v1::ArtifactReceipt receipt;
  receipt.set_sha256(HexEncode(digest));
  receipt.set_bytes(reader_->body_bytes());
  receipt.set_tensors(static_cast<int32_t>(specs_.size()));
  return receipt;
}

}  // namespace fedmi
