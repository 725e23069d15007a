#include "coordinator/spooled_aggregator.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using aggregator_internal::kFloatBytes;

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<FILE, FileCloser>;

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

SpooledAggregator::SpooledAggregator(std::string strategy, SpoolOptions options)
    : strategy_(std::move(strategy)), options_(std::move(options)) {}

SpooledAggregator::~SpooledAggregator() { RemoveSpool(); }

absl::Status SpooledAggregator::Begin(int32_t round, const std::vector<TensorSpec>& model_specs) {
  RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32(strategy_, model_specs));
  if (options_.parameters_per_chunk == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(strategy_, ": parameters_per_chunk must be > 0"));
  }
  RETURN_IF_ERROR(CheckOptions());
  collecting_ = false;
  RemoveSpool();

  std::string parent = options_.spool_parent;
  if (parent.empty()) {
    std::error_code error;
    parent = fs::temp_directory_path(error).string();
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat(strategy_, " round ", round,
                       ": no temp directory to spool updates in: ", error.message()));
    }
  }
  std::string pattern = absl::StrCat(parent, "/fedmi-", strategy_, "-XXXXXX");
  // mkdtemp makes it private (0700): the spool holds the sites' updates.
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(strategy_, " round ", round,
                                                      ": cannot create a spool directory in ",
                                                      parent, ": ", ErrnoText()));
  }
  spool_dir_ = std::move(pattern);
  round_ = round;
  specs_ = model_specs;
  parameters_ = TotalBytes(specs_) / kFloatBytes;
  collecting_ = true;
  return absl::OkStatus();
}

absl::Status SpooledAggregator::Accept(const std::string& site, double /*weight*/,
                                       BundleFileReader& update) {
  RETURN_IF_ERROR(CheckCollecting("Accept"));
  RETURN_IF_ERROR(
      CheckSpecsMatch(update.specs(), specs_, absl::StrCat("update of site '", site, "'")));
  // Site names never become paths; a counter does.
  std::string path = absl::StrCat(spool_dir_, "/", spool_files_created_++);
  absl::Status status = Spool(site, update, path);
  if (!status.ok()) {
    std::remove(path.c_str());
    return status;
  }
  spooled_.push_back({site, std::move(path)});
  return absl::OkStatus();
}

absl::Status SpooledAggregator::Spool(const std::string& site, BundleFileReader& update,
                                      const std::string& path) {
  File file(std::fopen(path.c_str(), "wb"));
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat(strategy_, " round ", round_,
                                            ": cannot create spool file ", path, " for site '",
                                            site, "': ", ErrnoText()));
  }
  std::vector<char> buffer(kMaxChunkBytes);
  RETURN_IF_ERROR(aggregator_internal::ForEachFiniteFloatRun(
      strategy_, site, specs_, update, buffer,
      [&](uint64_t /*first*/, const char* bytes, size_t count) -> absl::Status {
        if (std::fwrite(bytes, kFloatBytes, count, file.get()) != count) {
          return absl::InternalError(absl::StrCat(strategy_, " round ", round_,
                                                  ": cannot write spool file ", path, " for site '",
                                                  site, "': ", ErrnoText()));
        }
        return absl::OkStatus();
      }));
  // Buffered bytes reach the disk here, so a full disk may show only now.
  if (std::fclose(file.release()) != 0) {
    return absl::InternalError(absl::StrCat(strategy_, " round ", round_,
                                            ": cannot write spool file ", path, " for site '", site,
                                            "': ", ErrnoText()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpooledAggregator::Finish(const ModelStore& store) {
  RETURN_IF_ERROR(CheckCollecting("Finish"));
  if (spooled_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(strategy_, " round ", round_, ": no update was accepted"));
  }
  RETURN_IF_ERROR(CheckUpdateCount(spooled_.size()));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
  RETURN_IF_ERROR(WriteAggregate(*writer));
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  collecting_ = false;
  RemoveSpool();
  return HexEncode(digest);
}

size_t SpooledAggregator::chunk_parameters() const {
  return static_cast<size_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(options_.parameters_per_chunk, parameters_)));
}

absl::Status SpooledAggregator::ForEachChunk(const std::vector<size_t>& which,
                                             const ChunkConsumer& consume) const {
  const size_t per_chunk = chunk_parameters();
  std::vector<File> files;
  files.reserve(which.size());
  for (size_t index : which) {
    const SpooledUpdate& spooled = spooled_.at(index);
    files.emplace_back(std::fopen(spooled.path.c_str(), "rb"));
    if (files.back() == nullptr) {
      return absl::DataLossError(absl::StrCat(strategy_, " round ", round_,
                                              ": cannot open spool file ", spooled.path,
                                              " of site '", spooled.site, "': ", ErrnoText()));
    }
  }
  std::vector<float> slices;
  RETURN_IF_ERROR(Allocate(slices, which.size() * per_chunk,
                           absl::StrCat(which.size(), " x ", per_chunk, " parameters")));
  for (uint64_t begin = 0; begin < parameters_; begin += per_chunk) {
    const size_t count = static_cast<size_t>(std::min<uint64_t>(per_chunk, parameters_ - begin));
    for (size_t k = 0; k < which.size(); ++k) {
      if (std::fread(slices.data() + k * count, kFloatBytes, count, files[k].get()) != count) {
        const SpooledUpdate& spooled = spooled_[which[k]];
        return absl::DataLossError(absl::StrCat(strategy_, " round ", round_, ": spool file ",
                                                spooled.path, " of site '", spooled.site,
                                                "' ends before parameter ", begin + count));
      }
    }
    RETURN_IF_ERROR(consume(begin, count, slices.data()));
  }
  return absl::OkStatus();
}

absl::Status SpooledAggregator::WriteFloats(BundleFileWriter& writer, const float* values,
                                            size_t count) {
  return writer.Write(reinterpret_cast<const char*>(values), count * kFloatBytes);
}

absl::Status SpooledAggregator::ResourceExhausted(size_t bytes, absl::string_view what) const {
  return absl::ResourceExhaustedError(
      absl::StrCat(strategy_, " round ", round_, ": cannot allocate ", bytes, " bytes for ", what));
}

absl::Status SpooledAggregator::CheckCollecting(absl::string_view operation) const {
  if (collecting_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(strategy_, " ", operation, " called without a round begun"));
}

void SpooledAggregator::RemoveSpool() {
  spooled_.clear();
  if (spool_dir_.empty()) return;
  std::error_code ignored;  // a leftover directory is not worth failing a round for
  fs::remove_all(spool_dir_, ignored);
  spool_dir_.clear();
}

}  // namespace fedmi
