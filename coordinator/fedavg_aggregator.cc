// FedAvg: the example-weighted mean of the sites' float32 weights.
//
// Each update's body is read in chunks of at most kMaxChunkBytes and folded
// straight into a double-precision running sum (sum_i w_i * x_i), so memory is
// one double per parameter plus one chunk buffer however many sites take part.
// Finish divides by sum_i w_i and streams the float32 result into the model
// store chunk by chunk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "common/status.h"
#include "coordinator/aggregator.h"

namespace fedmi {
namespace {

constexpr char kFedAvg[] = "fedavg";
constexpr size_t kFloatBytes = sizeof(float);
static_assert(kMaxChunkBytes % kFloatBytes == 0, "chunks must hold whole floats");
static_assert(std::numeric_limits<float>::is_iec559, "float must be IEEE-754 binary32");

float LoadFloat(const char* bytes) {
  // Bundle bodies are little-endian; so are the hosts fedmi supports.
  float value;
  std::memcpy(&value, bytes, kFloatBytes);
  return value;
}

class FedAvgAggregator : public Aggregator {
 public:
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) override {
    for (const TensorSpec& spec : model_specs) {
      if (spec.dtype != DType::kFloat32) {
        return absl::InvalidArgumentError(
            absl::StrCat("fedavg cannot aggregate tensor '", spec.name, "' of dtype ",
                         DTypeName(spec.dtype), ": only float32 tensors are supported"));
      }
    }
    round_ = round;
    specs_ = model_specs;
    total_weight_ = 0;
    accepted_ = 0;
    state_ = State::kCollecting;
    const uint64_t parameters = TotalBytes(specs_) / kFloatBytes;
    try {
      sum_.assign(parameters, 0.0);
      sum_.shrink_to_fit();
      chunk_.resize(kMaxChunkBytes);
    } catch (const std::bad_alloc&) {
      state_ = State::kIdle;
      return absl::ResourceExhaustedError(
          absl::StrCat("fedavg round ", round, ": cannot allocate the accumulator for ", parameters,
                       " parameters (", parameters * sizeof(double), " bytes)"));
    } catch (const std::length_error&) {
      state_ = State::kIdle;
      return absl::ResourceExhaustedError(absl::StrCat("fedavg round ", round, ": a model of ",
                                                       parameters, " parameters is too large"));
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
    for (size_t begin = 0; begin < sum_.size(); begin += per_chunk) {
      const size_t count = std::min(per_chunk, sum_.size() - begin);
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
    std::vector<double>().swap(sum_);
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
    const uint64_t expected = sum_.size() * kFloatBytes;
    uint64_t offset = 0;  // body bytes consumed so far
    size_t carried = 0;   // bytes of a float split across two reads
    while (true) {
      ASSIGN_OR_RETURN(size_t got, update.Read(chunk_.data() + carried, chunk_.size() - carried));
      if (got == 0) break;
      const size_t available = carried + got;
      const size_t floats = available / kFloatBytes;
      const size_t first = offset / kFloatBytes;
      if (first + floats > sum_.size()) {
        return absl::InvalidArgumentError(absl::StrCat("update of site '", site,
                                                       "' has more than the ", expected,
                                                       " body bytes its tensors need"));
      }
      for (size_t i = 0; i < floats; ++i) {
        const float value = LoadFloat(chunk_.data() + i * kFloatBytes);
        if (!std::isfinite(value)) return NonFinite(site, first + i, value);
        sum_[first + i] += weight * static_cast<double>(value);
      }
      offset += floats * kFloatBytes;
      carried = available - floats * kFloatBytes;
      std::memmove(chunk_.data(), chunk_.data() + floats * kFloatBytes, carried);
    }
    if (offset != expected || carried != 0) {
      return absl::InvalidArgumentError(absl::StrCat("update of site '", site, "' ended after ",
                                                     offset + carried, " body bytes, expected ",
                                                     expected));
    }
    return absl::OkStatus();
  }

  // Names the tensor and element of a NaN or infinity, which would otherwise
  // silently poison the global model.
  absl::Status NonFinite(const std::string& site, uint64_t parameter, float value) const {
    uint64_t start = 0;
    for (const TensorSpec& spec : specs_) {
      const uint64_t count = static_cast<uint64_t>(spec.NumElements());
      if (parameter < start + count) {
        return absl::InvalidArgumentError(
            absl::StrCat("update of site '", site, "' has ", value, " in tensor '", spec.name,
                         "' at element ", parameter - start, "; fedavg needs finite weights"));
      }
      start += count;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("update of site '", site, "' has ", value, " at parameter ", parameter));
  }

  State state_ = State::kIdle;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  std::vector<double> sum_;  // sum of weight * value, one per parameter
  double total_weight_ = 0;
  int accepted_ = 0;
  std::vector<char> chunk_;  // one body chunk, reused for reading and writing
};

}  // namespace

absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy) {
  if (strategy == kFedAvg) return std::make_unique<FedAvgAggregator>();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown aggregation strategy '", strategy, "'; known strategies: ", kFedAvg));
}

}  // namespace fedmi
