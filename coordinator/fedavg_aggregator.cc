// FedAvg: the example-weighted mean of the sites' float32 weights.
//
// Each update's body is read in chunks of at most kMaxChunkBytes and folded
// straight into a double-precision running sum (sum_i w_i * x_i), so memory is
// one double per parameter plus one chunk buffer however many sites take part.
// Finish divides by sum_i w_i and streams the float32 result into the model
// store chunk by chunk.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/large_buffer.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "coordinator/aggregator.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;

constexpr char kFedAvg[] = "fedavg";

class FedAvgAggregator : public Aggregator {
 public:
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) override {
    RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32(kFedAvg, model_specs));
    round_ = round;
    specs_ = model_specs;
    total_weight_ = 0;
    accepted_ = 0;
    state_ = State::kCollecting;
    const uint64_t parameters = TotalBytes(specs_) / kFloatBytes;
    sum_size_ = 0;
    // calloc, not a vector's fill: a large block comes from mmap already
    // zeroed, page by page as the first fold touches it, instead of being
    // written with zeros once more every round (11% of the coordinator's
    // time at 4 sites x 11M parameters).
    sum_.reset(parameters > 0 ? static_cast<double*>(std::calloc(parameters, sizeof(double)))
                              : nullptr);
    if (parameters > 0 && sum_ == nullptr) {
      state_ = State::kIdle;
      return absl::ResourceExhaustedError(
          absl::StrCat("fedavg round ", round, ": cannot allocate the accumulator for ", parameters,
                       " parameters (", parameters * sizeof(double), " bytes)"));
    }
    AdviseHugePages(sum_.get(), parameters * sizeof(double));
    sum_size_ = parameters;
    try {
      chunk_.resize(kMaxChunkBytes);
    } catch (const std::bad_alloc&) {
      state_ = State::kIdle;
      return absl::ResourceExhaustedError(
          absl::StrCat("fedavg round ", round, ": cannot allocate a chunk buffer"));
    }
    return absl::OkStatus();
  }

  absl::Status Accept(const std::string& site, double weight, BundleFileReader& update) override {
    RETURN_IF_ERROR(CheckCollecting("Accept"));
    if (!(weight > 0) || !std::isfinite(weight)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fedavg round ", round_, ": weight of site '", site, "' is ", weight,
                       ", expected a finite number > 0 (its example count)"));
    }
    if (!std::isfinite(total_weight_ + weight)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fedavg round ", round_, ": weight of site '", site, "' is ", weight,
                       ", which overflows the total weight ", total_weight_));
    }
    RETURN_IF_ERROR(
        CheckSpecsMatch(update.specs(), specs_, absl::StrCat("update of site '", site, "'")));
    // From here on a failure leaves a partial sum behind.
    absl::Status status = AddWeighted(site, weight, update);
    if (!status.ok()) {
      state_ = State::kBroken;
      return status;
    }
    total_weight_ += weight;
    ++accepted_;
    return absl::OkStatus();
  }

  int accepted() const override { return accepted_; }

  absl::StatusOr<std::string> Finish(const ModelStore& store) override {
    RETURN_IF_ERROR(CheckCollecting("Finish"));
    if (accepted_ == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("fedavg round ", round_, ": no update was accepted"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
    const size_t per_chunk = kMaxChunkBytes / kFloatBytes;
    for (size_t begin = 0; begin < sum_size_; begin += per_chunk) {
      const size_t count = std::min(per_chunk, sum_size_ - begin);
      for (size_t i = 0; i < count; ++i) {
        const float mean = static_cast<float>(sum_[begin + i] / total_weight_);
        std::memcpy(chunk_.data() + i * kFloatBytes, &mean, kFloatBytes);
      }
      RETURN_IF_ERROR(writer->Write(chunk_.data(), count * kFloatBytes));
    }
    std::string digest;
    RETURN_IF_ERROR(writer->Commit(&digest).status());
    // Release the accumulator; a failed Finish above keeps it for a retry.
    state_ = State::kIdle;
    sum_.reset();
    sum_size_ = 0;
    std::vector<char>().swap(chunk_);
    return HexEncode(digest);
  }

 private:
  enum class State { kIdle, kCollecting, kBroken };

  absl::Status CheckCollecting(absl::string_view operation) const {
    switch (state_) {
      case State::kCollecting:
        return absl::OkStatus();
      case State::kIdle:
        return absl::FailedPreconditionError(
            absl::StrCat("fedavg ", operation, " called without a round begun"));
      case State::kBroken:
        return absl::FailedPreconditionError(absl::StrCat(
            "fedavg ", operation, " in round ", round_,
            ": the aggregate is unusable after a failed Accept; begin the round again"));
    }
    return absl::InternalError("unreachable");
  }

  // sum_ += weight * update, reading the body one chunk at a time.
  absl::Status AddWeighted(const std::string& site, double weight, BundleFileReader& update) {
    return aggregator_internal::ForEachFiniteFloatRun(
        kFedAvg, site, specs_, update, chunk_,
        [&](uint64_t first, const char* bytes, size_t count) {
          for (size_t i = 0; i < count; ++i) {
            sum_[first + i] += weight * static_cast<double>(LoadFloat(bytes + i * kFloatBytes));
          }
          return absl::OkStatus();
        });
  }

  State state_ = State::kIdle;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  struct Free {
    void operator()(double* p) const { std::free(p); }
  };
  std::unique_ptr<double[], Free> sum_;  // sum of weight * value, one per parameter
  size_t sum_size_ = 0;
  double total_weight_ = 0;
  int accepted_ = 0;
  std::vector<char> chunk_;  // one body chunk, reused for reading and writing
};

}  // namespace

std::unique_ptr<Aggregator> aggregator_internal::MakeFedAvgAggregator() {
  return std::make_unique<FedAvgAggregator>();
}

}  // namespace fedmi
