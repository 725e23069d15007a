#include "common/tensor/tensor_codec.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/large_buffer.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

constexpr char kMagic[8] = {'F', 'E', 'D', 'M', 'I', 'B', 'N', '1'};
// A header is names, dtypes and shapes; 64 MiB is far beyond any real model.
constexpr uint32_t kMaxHeaderBytes = 64u << 20;

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

// What senders put in one body chunk: a quarter of the 1 MiB a reader
// accepts. Every stream in flight holds a few chunk-sized buffers at each
// end (the message, gRPC's slices), so smaller chunks keep a coordinator
// serving many sites at once small, at no measurable cost in throughput
// (docs/performance.md).
constexpr size_t kSendChunkBytes = size_t{256} << 10;
static_assert(kSendChunkBytes <= kMaxChunkBytes, "senders must stay within the readers' cap");

absl::Status StreamBundle(const TensorBundle& bundle,
                          const std::function<bool(const v1::TensorChunk&)>& write) {
  v1::TensorChunk chunk;
  return StreamBundleInto(bundle, &chunk, [&] { return write(chunk); });
}

absl::Status StreamBundleInto(const TensorBundle& bundle, v1::TensorChunk* chunk,
                              const std::function<bool()>& write) {
  if (bundle.body.size() != bundle.ExpectedBodyBytes()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle body has ", bundle.body.size(),
                                                   " bytes but its tensors need ",
                                                   bundle.ExpectedBodyBytes()));
  }
  *chunk->mutable_header() = HeaderFromSpecs(
      bundle.specs, Sha256::Digest(absl::string_view(bundle.body.data(), bundle.body.size())));
  if (!write()) return absl::UnavailableError("stream closed while sending bundle header");
  for (size_t offset = 0; offset < bundle.body.size(); offset += kSendChunkBytes) {
    const size_t size = std::min(kSendChunkBytes, bundle.body.size() - offset);
    // assign() into the string the chunk already holds: set_data() would
    // build a new one per chunk.
    chunk->mutable_data()->assign(bundle.body.data() + offset, size);
    if (!write()) return absl::UnavailableError("stream closed while sending bundle body");
  }
  return absl::OkStatus();
}

BundleStreamReader::BundleStreamReader(Options options, BodySink* sink)
    : options_(std::move(options)), sink_(sink) {}

absl::Status BundleStreamReader::Add(const v1::TensorChunk& chunk) {
  switch (chunk.payload_case()) {
    case v1::TensorChunk::kHeader: {
      if (has_header_) {
        return absl::InvalidArgumentError(
            absl::StrCat(options_.what, " stream has a second header"));
      }
      auto specs = SpecsFromHeader(chunk.header());
      if (!specs.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options_.what, " header: ", specs.status().message()));
      }
      if (options_.expected != nullptr) {
        RETURN_IF_ERROR(CheckSpecsMatch(*specs, *options_.expected, options_.what));
      }
      if (chunk.header().total_bytes() > options_.max_body_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(options_.what, " has ", chunk.header().total_bytes(),
                         " bytes, above the limit of ", options_.max_body_bytes));
      }
      specs_ = *std::move(specs);
      total_ = chunk.header().total_bytes();
      declared_sha256_ = chunk.header().sha256();
      has_header_ = true;
      return absl::OkStatus();
    }
    case v1::TensorChunk::kData: {
      if (!has_header_) {
        return absl::InvalidArgumentError(
            absl::StrCat(options_.what, " stream sent body bytes before its header"));
      }
      const std::string& data = chunk.data();
      if (data.size() > kMaxChunkBytes) {
        return absl::InvalidArgumentError(absl::StrCat(options_.what, " chunk has ", data.size(),
                                                       " bytes, above the ", kMaxChunkBytes,
                                                       "-byte chunk limit"));
      }
      if (received_ + data.size() > total_) {
        return absl::InvalidArgumentError(absl::StrCat(options_.what, " body is longer than the ",
                                                       total_, " bytes its header declares"));
      }
      hasher_.Update(data.data(), data.size());
      RETURN_IF_ERROR(sink_->Write(data.data(), data.size()));
      received_ += data.size();
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(options_.what, " chunk is empty"));
  }
}

absl::Status BundleStreamReader::Finish() {
  if (!has_header_) {
    return absl::InvalidArgumentError(absl::StrCat(options_.what, " stream has no header"));
  }
  if (received_ != total_) {
    return absl::DataLossError(absl::StrCat(options_.what, " is truncated: received ", received_,
                                            " of ", total_, " body bytes"));
  }
  sha256_ = hasher_.Final();
  if (!declared_sha256_.empty() && declared_sha256_ != sha256_) {
    return absl::DataLossError(absl::StrCat(options_.what, " is corrupt: body SHA-256 ",
                                            HexEncode(sha256_), " does not match the header's ",
                                            HexEncode(declared_sha256_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorBundle> DecodeChunks(const std::vector<v1::TensorChunk>& chunks,
                                          const std::vector<TensorSpec>* expected) {
  TensorBundle bundle;
  MemoryBodySink sink(&bundle.body);
  BundleStreamReader::Options options;
  options.expected = expected;
  BundleStreamReader reader(options, &sink);
  for (const auto& chunk : chunks) RETURN_IF_ERROR(reader.Add(chunk));
  RETURN_IF_ERROR(reader.Finish());
  bundle.specs = reader.specs();
  return bundle;
}

// --- Bundle files -----------------------------------------------------------

std::string BundleFilePrefix(const std::vector<TensorSpec>& specs) {
  const std::string header_bytes = HeaderFromSpecs(specs, "").SerializeAsString();
  const uint32_t length = static_cast<uint32_t>(header_bytes.size());
  const char length_le[4] = {
      static_cast<char>(length & 0xff), static_cast<char>((length >> 8) & 0xff),
      static_cast<char>((length >> 16) & 0xff), static_cast<char>((length >> 24) & 0xff)};
  std::string prefix(kMagic, sizeof(kMagic));
  prefix.append(length_le, sizeof(length_le));
  prefix += header_bytes;
  return prefix;
}

absl::StatusOr<std::unique_ptr<BundleFileWriter>> BundleFileWriter::Create(
    const std::string& dir, const std::vector<TensorSpec>& specs, Env& env) {
  absl::StatusOr<std::unique_ptr<AtomicFile>> file = env.NewAtomicFile(dir);
  if (!file.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot create a bundle file in ", dir, ": ", file.status().message()));
  }
  std::unique_ptr<BundleFileWriter> writer(new BundleFileWriter());
  writer->dir_ = dir;
  writer->file_ = *std::move(file);
  writer->expected_ = TotalBytes(specs);
  absl::Status status = writer->file_->Append(BundleFilePrefix(specs));
  if (!status.ok()) return absl::InternalError(status.message());
  return writer;
}

absl::Status BundleFileWriter::Write(const char* data, size_t size) {
  if (file_ == nullptr) return absl::FailedPreconditionError("bundle file already committed");
  if (written_ + size > expected_) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle body is longer than the ", expected_, " bytes its tensors need"));
  }
  absl::Status status = file_->Append(absl::string_view(data, size));
  if (!status.ok()) return absl::InternalError(status.message());
  hasher_.Update(data, size);
  written_ += size;
  return absl::OkStatus();
}

absl::StatusOr<std::string> BundleFileWriter::Commit(std::string* sha256) {
  if (file_ == nullptr) return absl::FailedPreconditionError("bundle file already committed");
  if (written_ != expected_) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle body has ", written_, " bytes but its tensors need ", expected_));
  }
  std::string digest = hasher_.Final();
  std::string final_path = absl::StrCat(dir_, "/", HexEncode(digest));
  // The rename is durable before a transaction can refer to the file.
  absl::Status status = file_->Commit(final_path);
  if (!status.ok()) return absl::InternalError(status.message());
  file_.reset();
  if (sha256 != nullptr) *sha256 = digest;
  return final_path;
}

absl::StatusOr<std::unique_ptr<BundleFileReader>> BundleFileReader::Open(const std::string& path) {
  std::unique_ptr<BundleFileReader> reader(new BundleFileReader());
  reader->path_ = path;
  reader->file_ = std::fopen(path.c_str(), "rb");
  if (reader->file_ == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open model file ", path, ": ", ErrnoText()));
  }
  char magic[8];
  unsigned char length_le[4];
  if (std::fread(magic, 1, 8, reader->file_) != 8 || std::memcmp(magic, kMagic, 8) != 0) {
    return absl::DataLossError(absl::StrCat(path, " is not a fedmi bundle file (bad magic)"));
  }
  if (std::fread(length_le, 1, 4, reader->file_) != 4) {
    return absl::DataLossError(absl::StrCat(path, " is truncated in its header length"));
  }
  uint32_t length = length_le[0] | (length_le[1] << 8) | (length_le[2] << 16) |
                    (static_cast<uint32_t>(length_le[3]) << 24);
  if (length > kMaxHeaderBytes) {
    return absl::DataLossError(absl::StrCat(path, " declares a ", length, "-byte header"));
  }
  std::string header_bytes(length, '\0');
  if (std::fread(header_bytes.data(), 1, length, reader->file_) != length) {
    return absl::DataLossError(absl::StrCat(path, " is truncated in its header"));
  }
  v1::BundleHeader header;
  if (!header.ParseFromString(header_bytes)) {
    return absl::DataLossError(absl::StrCat(path, " has an unreadable header"));
  }
  auto specs = SpecsFromHeader(header);
  if (!specs.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", specs.status().message()));
  }
  reader->specs_ = *std::move(specs);
  reader->body_bytes_ = header.total_bytes();
  long body_start = std::ftell(reader->file_);
  if (std::fseek(reader->file_, 0, SEEK_END) != 0) {
    return absl::InternalError(absl::StrCat("cannot seek in ", path, ": ", ErrnoText()));
  }
  long file_size = std::ftell(reader->file_);
  if (static_cast<uint64_t>(file_size - body_start) != reader->body_bytes_) {
    return absl::DataLossError(absl::StrCat(path, " has ", file_size - body_start,
                                            " body bytes, expected ", reader->body_bytes_));
  }
  std::fseek(reader->file_, body_start, SEEK_SET);
  return reader;
}

BundleFileReader::~BundleFileReader() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::StatusOr<size_t> BundleFileReader::Read(char* out, size_t max) {
  uint64_t left = body_bytes_ - read_;
  size_t want = static_cast<size_t>(std::min<uint64_t>(left, max));
  if (want == 0) return 0;
  size_t got = std::fread(out, 1, want, file_);
  if (got != want) {
    return absl::DataLossError(absl::StrCat("short read in ", path_, " at body byte ", read_));
  }
  read_ += got;
  return got;
}

absl::StatusOr<std::string> WriteBundleFile(const std::string& dir, const TensorBundle& bundle,
                                            std::string* sha256) {
  ASSIGN_OR_RETURN(auto writer, BundleFileWriter::Create(dir, bundle.specs));
  RETURN_IF_ERROR(writer->Write(bundle.body.data(), bundle.body.size()));
  return writer->Commit(sha256);
}

absl::StatusOr<TensorBundle> ReadBundleFile(const std::string& path) {
  ASSIGN_OR_RETURN(auto reader, BundleFileReader::Open(path));
  TensorBundle bundle;
  bundle.specs = reader->specs();
  ResizeLargeBuffer(&bundle.body, reader->body_bytes());
  size_t offset = 0;
  while (offset < bundle.body.size()) {
    ASSIGN_OR_RETURN(size_t got,
                     reader->Read(bundle.body.data() + offset, bundle.body.size() - offset));
    if (got == 0) break;
    offset += got;
  }
  return bundle;
}

absl::Status StreamBundleFile(const std::string& path, const std::string& sha256,
                              const std::function<bool(const v1::TensorChunk&)>& write) {
  ASSIGN_OR_RETURN(auto reader, BundleFileReader::Open(path));
  v1::TensorChunk chunk;
  *chunk.mutable_header() = HeaderFromSpecs(reader->specs(), sha256);
  if (!write(chunk)) return absl::UnavailableError("stream closed while sending model header");
  // Read straight into the chunk's own buffer, reused for every chunk.
  std::string* data = chunk.mutable_data();
  while (true) {
    data->resize(kSendChunkBytes);
    ASSIGN_OR_RETURN(size_t got, reader->Read(data->data(), data->size()));
    if (got == 0) break;
    data->resize(got);
    if (!write(chunk)) return absl::UnavailableError("stream closed while sending model body");
  }
  return absl::OkStatus();
}

}  // namespace fedmi
