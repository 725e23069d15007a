#include "coordinator/norm_bounded_aggregator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/runspec/strategy_names.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;

constexpr const char* kNormBounded = kNormBoundedStrategy;

}  // namespace

NormBoundedAggregator::NormBoundedAggregator(double norm_bound, std::string global_model_path)
    : norm_bound_(norm_bound), global_model_path_(std::move(global_model_path)) {}

absl::Status NormBoundedAggregator::CheckNormBound(double norm_bound) {
  if (norm_bound > 0 && std::isfinite(norm_bound)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(kNormBounded,
                   ": norm_bound must be a finite number > 0 (the L2 norm each site's change "
                   "to the global model is scaled down to), got ",
                   norm_bound));
}

absl::Status NormBoundedAggregator::Begin(int32_t round,
                                          const std::vector<TensorSpec>& model_specs) {
  collecting_ = false;
  RETURN_IF_ERROR(CheckNormBound(norm_bound_));
  RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32(kNormBounded, model_specs));
  round_ = round;
  specs_ = model_specs;
  total_weight_ = 0;
  global_weight_ = 0;
  scales_.clear();
  const std::string what = absl::StrCat("global model ", global_model_path_);
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global,
                   BundleFileReader::Open(global_model_path_));
  RETURN_IF_ERROR(CheckSpecsMatch(global->specs(), specs_, what));
  const uint64_t parameters = TotalBytes(specs_) / kFloatBytes;
  try {
    global_.assign(parameters, 0.0f);
    update_.assign(parameters, 0.0f);
    sum_.assign(parameters, 0.0);
    chunk_.resize(kMaxChunkBytes);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(kNormBounded, " round ", round,
                                                     ": cannot allocate for ", parameters,
                                                     " parameters (", parameters * 16, " bytes)"));
  } catch (const std::length_error&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        kNormBounded, " round ", round, ": a model of ", parameters, " parameters is too large"));
  }
  RETURN_IF_ERROR(aggregator_internal::ReadExactly(*global, reinterpret_cast<char*>(global_.data()),
                                                   parameters * kFloatBytes, what));
  collecting_ = true;
  return absl::OkStatus();
}

absl::Status NormBoundedAggregator::Accept(const std::string& site, double weight,
                                           BundleFileReader& update) {
  RETURN_IF_ERROR(CheckCollecting("Accept"));
  if (!(weight > 0) || !std::isfinite(weight) || !std::isfinite(total_weight_ + weight)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kNormBounded, " round ", round_, ": weight of site '", site, "' is ", weight,
        ", expected a finite number > 0 (its example count) that keeps the total weight ",
        total_weight_, " finite"));
  }
  RETURN_IF_ERROR(
      CheckSpecsMatch(update.specs(), specs_, absl::StrCat("update of site '", site, "'")));
  // The scale is known only once the whole update is read: keep it, and
  // fold it in afterwards.
  double squared = 0;
  RETURN_IF_ERROR(aggregator_internal::ForEachFiniteFloatRun(
      kNormBounded, site, specs_, update, chunk_,
      [&](uint64_t first, const char* bytes, size_t count) {
        std::memcpy(update_.data() + first, bytes, count * kFloatBytes);
        for (size_t i = 0; i < count; ++i) {
          const double change = static_cast<double>(LoadFloat(bytes + i * kFloatBytes)) -
                                static_cast<double>(global_[first + i]);
          squared += change * change;
        }
        return absl::OkStatus();
      }));
  const double norm = std::sqrt(squared);
  const double scale = norm > norm_bound_ ? norm_bound_ / norm : 1.0;
  const double folded = weight * scale;
  for (size_t i = 0; i < sum_.size(); ++i) {
    sum_[i] += folded * static_cast<double>(update_[i]);
  }
  // Exactly 0 for an update within the bound, which keeps such rounds FedAvg.
  global_weight_ += weight * (1.0 - scale);
  total_weight_ += weight;
  scales_.push_back(SiteScale{site, norm, scale});
  return absl::OkStatus();
}

SiteDecisions NormBoundedAggregator::decisions() const {
  SiteDecisions decisions;
  decisions.norm_bound = norm_bound_;
  for (const SiteScale& scaled : scales_) {
    decisions.change_norms.emplace_back(scaled.site, scaled.norm);
    if (scaled.scale < 1) decisions.scaled_down.push_back(scaled.site);
  }
  return decisions;
}

absl::StatusOr<std::string> NormBoundedAggregator::Finish(const ModelStore& store) {
  RETURN_IF_ERROR(CheckCollecting("Finish"));
  if (scales_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kNormBounded, " round ", round_, ": no update was accepted"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
  const size_t per_chunk = kMaxChunkBytes / kFloatBytes;
  for (size_t begin = 0; begin < sum_.size(); begin += per_chunk) {
    const size_t count = std::min(per_chunk, sum_.size() - begin);
    for (size_t i = 0; i < count; ++i) {
      const double weighted =
          sum_[begin + i] + global_weight_ * static_cast<double>(global_[begin + i]);
      const float mean = static_cast<float>(weighted / total_weight_);
      std::memcpy(chunk_.data() + i * kFloatBytes, &mean, kFloatBytes);
    }
    RETURN_IF_ERROR(writer->Write(chunk_.data(), count * kFloatBytes));
  }
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  // Release the buffers; a failed Finish above keeps them for a retry.
  collecting_ = false;
  std::vector<double>().swap(sum_);
  std::vector<float>().swap(global_);
  std::vector<float>().swap(update_);
  std::vector<char>().swap(chunk_);
  return HexEncode(digest);
}

absl::Status NormBoundedAggregator::CheckCollecting(const char* operation) const {
  if (collecting_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      kNormBounded, " ", operation, " called without a round begun (or after its Finish)"));
}

}  // namespace fedmi
