// Streaming encoding of tensor bundles, on the wire and on disk.
//
// Wire: a header chunk (names, dtypes, shapes, total bytes, SHA-256 of the
// body), then body chunks of at most kMaxChunkBytes. No gRPC message ever
// holds a whole model, so model size is not bounded by gRPC's message cap.
//
// Disk ("bundle file"): magic "FEDMIBN1", a little-endian u32 header length,
// the serialized BundleHeader (without sha256: the file's name is its body's
// SHA-256), then the body.
//
// Readers validate the header before they accept a body byte, and name the
// problem in every error. None of the classes here is thread-safe.
#ifndef FEDMI_COMMON_TENSOR_TENSOR_CODEC_H_
#define FEDMI_COMMON_TENSOR_TENSOR_CODEC_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/crypto/sha256.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/tensor.pb.h"

namespace fedmi {

inline constexpr size_t kMaxChunkBytes = 1 << 20;

// Receives body bytes from a reader, in order.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual absl::Status Write(const char* data, size_t size) = 0;
};

// Appends into a memory buffer.
class MemoryBodySink : public BodySink {
 public:
  explicit MemoryBodySink(std::vector<char>* out) : out_(out) {}
  absl::Status Write(const char* data, size_t size) override {
    out_->insert(out_->end(), data, data + size);
    return absl::OkStatus();
  }

 private:
  std::vector<char>* out_;
};

// Sends `bundle` as header + body chunks through `write`; `write` returns
// false when the stream broke, and then Unavailable is returned.
absl::Status StreamBundle(const TensorBundle& bundle,
                          const std::function<bool(const v1::TensorChunk&)>& write);

// The same into a chunk the caller owns, e.g. inside the message it sends:
// each piece is copied into `*chunk`, whose buffer is reused, and then
// `write()` sends it. One copy per byte before serialization, and no
// allocation per chunk.
absl::Status StreamBundleInto(const TensorBundle& bundle, v1::TensorChunk* chunk,
                              const std::function<bool()>& write);

// Reassembles a chunk stream. Usage: Add() each chunk, then Finish().
class BundleStreamReader {
 public:
  struct Options {
    // When set, the header must describe exactly these tensors.
    const std::vector<TensorSpec>* expected = nullptr;
    std::string what = "bundle";  // used in error messages: "update tensor ..."
    uint64_t max_body_bytes = uint64_t{1} << 36;
  };
  BundleStreamReader(Options options, BodySink* sink);

  absl::Status Add(const v1::TensorChunk& chunk);
  // Checks that every body byte arrived and that the SHA-256 matches.
  absl::Status Finish();

  bool has_header() const { return has_header_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  const std::string& sha256() const { return sha256_; }  // valid after Finish()
  uint64_t body_bytes() const { return received_; }

 private:
  Options options_;
  BodySink* sink_;
  bool has_header_ = false;
  std::vector<TensorSpec> specs_;
  std::string declared_sha256_;
  uint64_t total_ = 0;
  uint64_t received_ = 0;
  Sha256 hasher_;
  std::string sha256_;
};

// Convenience: reads a whole chunk sequence into memory.
absl::StatusOr<TensorBundle> DecodeChunks(const std::vector<v1::TensorChunk>& chunks,
                                          const std::vector<TensorSpec>* expected = nullptr);

// The bytes of a bundle file before its body: magic, header length and the
// header of `specs` (without sha256). For writers that own their file, such
// as the coordinator's upload spool.
std::string BundleFilePrefix(const std::vector<TensorSpec>& specs);

// Writes a bundle file incrementally into an AtomicFile of `env`. The body's
// SHA-256 is computed while writing; Commit() fsyncs the file, renames it to
// `<dir>/<sha256hex>` and fsyncs the directory. Destroying an uncommitted
// writer leaves nothing behind. Not thread-safe. I/O failures are Internal
// and name the path.
class BundleFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<BundleFileWriter>> Create(
      const std::string& dir, const std::vector<TensorSpec>& specs, Env& env = *Env::Default());

  absl::Status Write(const char* data, size_t size);
  // Returns the final path; the raw 32-byte digest goes to *sha256.
  absl::StatusOr<std::string> Commit(std::string* sha256);

 private:
  BundleFileWriter() = default;
  std::string dir_;
  std::unique_ptr<AtomicFile> file_;  // null once committed
  uint64_t expected_ = 0;
  uint64_t written_ = 0;
  Sha256 hasher_;
};

// Sequential reader of a bundle file.
class BundleFileReader {
 public:
  static absl::StatusOr<std::unique_ptr<BundleFileReader>> Open(const std::string& path);
  ~BundleFileReader();

  const std::vector<TensorSpec>& specs() const { return specs_; }
  uint64_t body_bytes() const { return body_bytes_; }
  // Reads up to `max` body bytes; returns 0 at the end of the body.
  absl::StatusOr<size_t> Read(char* out, size_t max);

 private:
  BundleFileReader() = default;
  std::string path_;
  FILE* file_ = nullptr;
  std::vector<TensorSpec> specs_;
  uint64_t body_bytes_ = 0;
  uint64_t read_ = 0;
};

// Whole-file helpers for small bundles and tests.
absl::StatusOr<std::string> WriteBundleFile(const std::string& dir, const TensorBundle& bundle,
                                            std::string* sha256 = nullptr);
absl::StatusOr<TensorBundle> ReadBundleFile(const std::string& path);

// Streams a bundle file as header + chunks; `sha256` goes into the header.
absl::Status StreamBundleFile(const std::string& path, const std::string& sha256,
                              const std::function<bool(const v1::TensorChunk&)>& write);

}  // namespace fedmi

#endif  // FEDMI_COMMON_TENSOR_TENSOR_CODEC_H_
