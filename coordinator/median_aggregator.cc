#include "coordinator/median_aggregator.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
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

constexpr char kMedian[] = "median";

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<FILE, FileCloser>;

std::string ErrnoText() { return std::strerror(errno); }

// Median of `values` (reordered); for an even count the mean of the two
// middle values, in double.
float MedianOf(std::vector<float>& values) {
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (values.size() % 2 == 1) return *middle;
  // nth_element leaves the lower half before `middle`; its largest is the
  // lower middle value.
  const float lower = *std::max_element(values.begin(), middle);
  return static_cast<float>((static_cast<double>(lower) + static_cast<double>(*middle)) / 2);
}

}  // namespace

MedianAggregator::MedianAggregator(MedianAggregatorOptions options)
    : options_(std::move(options)) {}

MedianAggregator::~MedianAggregator() { RemoveSpool(); }

absl::Status MedianAggregator::Begin(int32_t round, const std::vector<TensorSpec>& model_specs) {
  RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32(kMedian, model_specs));
  if (options_.parameters_per_chunk == 0) {
    return absl::InvalidArgumentError("median: parameters_per_chunk must be > 0");
  }
  collecting_ = false;
  RemoveSpool();

  std::string parent = options_.spool_parent;
  if (parent.empty()) {
    std::error_code error;
    parent = fs::temp_directory_path(error).string();
    if (error) {
      return absl::FailedPreconditionError(absl::StrCat(
          "median round ", round, ": no temp directory to spool updates in: ", error.message()));
    }
  }
  std::string pattern = absl::StrCat(parent, "/fedmi-median-XXXXXX");
  // mkdtemp makes it private (0700): the spool holds the sites' updates.
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("median round ", round,
                                                      ": cannot create a spool directory in ",
                                                      parent, ": ", ErrnoText()));
  }
  spool_dir_ = std::move(pattern);
  round_ = round;
  specs_ = model_specs;
  collecting_ = true;
  return absl::OkStatus();
}

absl::Status MedianAggregator::Accept(const std::string& site, double /*weight*/,
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

absl::Status MedianAggregator::Spool(const std::string& site, BundleFileReader& update,
                                     const std::string& path) {
  File file(std::fopen(path.c_str(), "wb"));
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("median round ", round_, ": cannot create spool file ",
                                            path, " for site '", site, "': ", ErrnoText()));
  }
  std::vector<char> buffer(kMaxChunkBytes);
  RETURN_IF_ERROR(aggregator_internal::ForEachFiniteFloatRun(
      kMedian, site, specs_, update, buffer,
      [&](uint64_t /*first*/, const char* bytes, size_t count) -> absl::Status {
        if (std::fwrite(bytes, kFloatBytes, count, file.get()) != count) {
          return absl::InternalError(absl::StrCat("median round ", round_,
                                                  ": cannot write spool file ", path, " for site '",
                                                  site, "': ", ErrnoText()));
        }
        return absl::OkStatus();
      }));
  // Buffered bytes reach the disk here, so a full disk may show only now.
  if (std::fclose(file.release()) != 0) {
    return absl::InternalError(absl::StrCat("median round ", round_, ": cannot write spool file ",
                                            path, " for site '", site, "': ", ErrnoText()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MedianAggregator::Finish(const ModelStore& store) {
  RETURN_IF_ERROR(CheckCollecting("Finish"));
  if (spooled_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("median round ", round_, ": no update was accepted"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
  RETURN_IF_ERROR(WriteMedian(*writer));
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  collecting_ = false;
  RemoveSpool();
  return HexEncode(digest);
}

absl::Status MedianAggregator::WriteMedian(BundleFileWriter& writer) {
  const uint64_t parameters = TotalBytes(specs_) / kFloatBytes;
  const size_t sites = spooled_.size();
  const size_t per_chunk =
      static_cast<size_t>(std::min<uint64_t>(options_.parameters_per_chunk, parameters));

  std::vector<File> files;
  files.reserve(sites);
  for (const SpooledUpdate& spooled : spooled_) {
    files.emplace_back(std::fopen(spooled.path.c_str(), "rb"));
    if (files.back() == nullptr) {
      return absl::DataLossError(absl::StrCat("median round ", round_, ": cannot open spool file ",
                                              spooled.path, " of site '", spooled.site,
                                              "': ", ErrnoText()));
    }
  }

  std::vector<float> slices;  // site s's values of the chunk at [s * count, (s + 1) * count)
  std::vector<float> column;  // every site's value of one parameter
  std::vector<char> out;
  try {
    slices.resize(sites * per_chunk);
    column.resize(sites);
    out.resize(per_chunk * kFloatBytes);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("median round ", round_, ": cannot allocate ",
                                                     sites, " x ", per_chunk,
                                                     " parameters to take medians over"));
  }

  for (uint64_t begin = 0; begin < parameters; begin += per_chunk) {
    const size_t count = static_cast<size_t>(std::min<uint64_t>(per_chunk, parameters - begin));
    for (size_t s = 0; s < sites; ++s) {
      if (std::fread(slices.data() + s * count, kFloatBytes, count, files[s].get()) != count) {
        return absl::DataLossError(absl::StrCat("median round ", round_, ": spool file ",
                                                spooled_[s].path, " of site '", spooled_[s].site,
                                                "' ends before parameter ", begin + count));
      }
    }
    for (size_t i = 0; i < count; ++i) {
      for (size_t s = 0; s < sites; ++s) column[s] = slices[s * count + i];
      const float median = MedianOf(column);
      std::memcpy(out.data() + i * kFloatBytes, &median, kFloatBytes);
    }
    RETURN_IF_ERROR(writer.Write(out.data(), count * kFloatBytes));
  }
  return absl::OkStatus();
}

absl::Status MedianAggregator::CheckCollecting(absl::string_view operation) const {
  if (collecting_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("median ", operation, " called without a round begun"));
}

void MedianAggregator::RemoveSpool() {
  spooled_.clear();
  if (spool_dir_.empty()) return;
  std::error_code ignored;  // a leftover directory is not worth failing a round for
  fs::remove_all(spool_dir_, ignored);
  spool_dir_.clear();
}

}  // namespace fedmi
