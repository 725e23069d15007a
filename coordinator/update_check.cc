#include "coordinator/update_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;

constexpr char kWhat[] = "aggregation";
constexpr size_t kGlobalSliceBytes = 64 * 1024;

bool IsFinite(const char* bytes) {
  uint32_t bits;
  std::memcpy(&bits, bytes, sizeof(bits));
  // All exponent bits set: an infinity or a NaN.
  return (bits & 0x7f800000u) != 0x7f800000u;
}

}  // namespace

UpdateValueScan::UpdateValueScan(std::string site, std::vector<TensorSpec> specs,
                                 std::unique_ptr<BundleFileReader> global)
    : site_(std::move(site)),
      specs_(std::move(specs)),
      global_(std::move(global)),
      parameters_(TotalBytes(specs_) / kFloatBytes) {}

absl::StatusOr<std::unique_ptr<UpdateValueScan>> UpdateValueScan::Create(
    std::string site, std::vector<TensorSpec> specs, std::unique_ptr<BundleFileReader> global) {
  RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32("the update check", specs));
  RETURN_IF_ERROR(CheckSpecsMatch(global->specs(), specs, "the global model"));
  return std::unique_ptr<UpdateValueScan>(
      new UpdateValueScan(std::move(site), std::move(specs), std::move(global)));
}

absl::Status UpdateValueScan::Add(const char* data, size_t size) {
  if (partial_bytes_ > 0) {
    const size_t taken = std::min(size, kFloatBytes - partial_bytes_);
    std::memcpy(partial_ + partial_bytes_, data, taken);
    partial_bytes_ += taken;
    data += taken;
    size -= taken;
    if (partial_bytes_ < kFloatBytes) return absl::OkStatus();
    partial_bytes_ = 0;
    RETURN_IF_ERROR(ScanFloats(partial_, 1));
  }
  const size_t whole = size / kFloatBytes;
  RETURN_IF_ERROR(ScanFloats(data, whole));
  partial_bytes_ = size - whole * kFloatBytes;
  std::memcpy(partial_, data + whole * kFloatBytes, partial_bytes_);
  return absl::OkStatus();
}

absl::Status UpdateValueScan::ScanFloats(const char* bytes, size_t count) {
  if (!finite_.ok()) return absl::OkStatus();  // refused anyway: nothing more to learn
  if (count > parameters_ - scanned_) {
    finite_ = absl::InvalidArgumentError(
        absl::StrCat("update of site '", site_, "' has more than the ", parameters_ * kFloatBytes,
                     " body bytes its tensors need"));
    return absl::OkStatus();
  }
  // A small slice: one is held per upload in progress, and a large one
  // would make the coordinator's memory grow with the number of sites.
  if (global_chunk_.empty()) global_chunk_.resize(kGlobalSliceBytes);
  const size_t per_slice = global_chunk_.size() / kFloatBytes;
  while (count > 0) {
    const size_t n = std::min(count, per_slice);
    RETURN_IF_ERROR(aggregator_internal::ReadExactly(*global_, global_chunk_.data(),
                                                     n * kFloatBytes, "the global model"));
    double lane[4] = {lanes_[0], lanes_[1], lanes_[2], lanes_[3]};
    const size_t first_lane = static_cast<size_t>(scanned_ % 4);
    bool finite = true;
    for (size_t i = 0; i < n; ++i) {
      const char* value = bytes + i * kFloatBytes;
      finite &= IsFinite(value);
      const double delta =
          static_cast<double>(LoadFloat(value)) - LoadFloat(global_chunk_.data() + i * kFloatBytes);
      lane[(first_lane + i) % 4] += delta * delta;
    }
    if (!finite) {
      RecordNonFinite(bytes, n);
      return absl::OkStatus();
    }
    std::copy(lane, lane + 4, lanes_);
    scanned_ += n;
    bytes += n * kFloatBytes;
    count -= n;
  }
  return absl::OkStatus();
}

void UpdateValueScan::RecordNonFinite(const char* bytes, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!IsFinite(bytes + i * kFloatBytes)) {
      finite_ = aggregator_internal::NonFiniteError(kWhat, site_, specs_, scanned_ + i,
                                                    LoadFloat(bytes + i * kFloatBytes));
      return;
    }
  }
}

UpdateValues UpdateValueScan::Finish() {
  UpdateValues values;
  values.finite = finite_;
  if (values.finite.ok() && (scanned_ != parameters_ || partial_bytes_ != 0)) {
    values.finite = absl::InvalidArgumentError(absl::StrCat(
        "update of site '", site_, "' ended after ", scanned_ * kFloatBytes + partial_bytes_,
        " body bytes, expected ", parameters_ * kFloatBytes));
  }
  values.squared_change = (lanes_[0] + lanes_[1]) + (lanes_[2] + lanes_[3]);
  return values;
}

absl::StatusOr<UpdateValues> ScanUpdateFile(const std::string& site,
                                            const std::vector<TensorSpec>& specs,
                                            const std::string& update_path,
                                            const std::string& global_path) {
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> update, BundleFileReader::Open(update_path));
  RETURN_IF_ERROR(
      CheckSpecsMatch(update->specs(), specs, absl::StrCat("update of site '", site, "'")));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global, BundleFileReader::Open(global_path));
  ASSIGN_OR_RETURN(std::unique_ptr<UpdateValueScan> scan,
                   UpdateValueScan::Create(site, specs, std::move(global)));
  std::vector<char> buffer(kMaxChunkBytes);
  while (true) {
    ASSIGN_OR_RETURN(size_t got, update->Read(buffer.data(), buffer.size()));
    if (got == 0) break;
    RETURN_IF_ERROR(scan->Add(buffer.data(), got));
  }
  return scan->Finish();
}

absl::StatusOr<double> CheckUpdateValues(const std::string& site, const UpdateValues& values,
                                         double max_norm) {
  RETURN_IF_ERROR(values.finite);
  const double norm = std::sqrt(values.squared_change);
  if (max_norm > 0 && !(norm <= max_norm)) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of site '", site, "' changes the model by ", norm,
                     " (L2), more than the run's bound of ", max_norm));
  }
  return norm;
}

}  // namespace fedmi
