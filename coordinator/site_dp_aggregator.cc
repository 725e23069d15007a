#include "coordinator/site_dp_aggregator.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;

constexpr char kSiteDp[] = "site-level DP-FedAvg";
// Relative slack of the plaintext norm check: the site and the coordinator
// sum the same float32 differences in double, in different orders.
constexpr double kNormSlack = 1e-9;

class SiteDpAggregator : public Aggregator {
 public:
  SiteDpAggregator(SiteDpSum sum, std::string global_model_path)
      : dp_sum_(sum), global_model_path_(std::move(global_model_path)) {}

  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) override {
    broken_ = true;
    RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32(kSiteDp, model_specs));
    round_ = round;
    specs_ = model_specs;
    accepted_ = 0;
    noised_ = false;
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global,
                     BundleFileReader::Open(global_model_path_));
    RETURN_IF_ERROR(CheckSpecsMatch(global->specs(), specs_,
                                    absl::StrCat("global model ", global_model_path_)));
    const uint64_t parameters = TotalBytes(specs_) / kFloatBytes;
    try {
      global_.assign(parameters, 0.0f);
      sum_.assign(parameters, 0.0);
      chunk_.resize(kMaxChunkBytes);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat(
          kSiteDp, " round ", round, ": cannot allocate for ", parameters, " parameters"));
    }
    RETURN_IF_ERROR(aggregator_internal::ReadExactly(
        *global, reinterpret_cast<char*>(global_.data()), parameters * kFloatBytes,
        absl::StrCat("global model ", global_model_path_)));
    broken_ = false;
    return absl::OkStatus();
  }

  absl::Status Accept(const std::string& site, double /*weight*/,
                      BundleFileReader& update) override {
    RETURN_IF_ERROR(CheckUsable("Accept"));
    RETURN_IF_ERROR(
        CheckSpecsMatch(update.specs(), specs_, absl::StrCat("update of site '", site, "'")));
    absl::Status status = aggregator_internal::ForEachFiniteFloatRun(
        kSiteDp, site, specs_, update, chunk_,
        [&](uint64_t first, const char* bytes, size_t count) {
          for (size_t i = 0; i < count; ++i) {
            sum_[first + i] += static_cast<double>(LoadFloat(bytes + i * kFloatBytes)) -
                               static_cast<double>(global_[first + i]);
          }
          return absl::OkStatus();
        });
    if (!status.ok()) {
      broken_ = true;
      return status;
    }
    ++accepted_;
    return absl::OkStatus();
  }

  int accepted() const override { return accepted_; }

  absl::StatusOr<std::string> Finish(const ModelStore& store) override {
    RETURN_IF_ERROR(CheckUsable("Finish"));
    if (accepted_ == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(kSiteDp, " round ", round_, ": no update was accepted"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
    // Noise is drawn once per Finish: a retried Finish must not average
    // two draws away, so the sum is privatized in place first.
    if (!noised_) {
      dp_sum_.Apply(sum_.data(), sum_.size());
      noised_ = true;
    }
    const size_t per_chunk = kMaxChunkBytes / kFloatBytes;
    for (size_t begin = 0; begin < sum_.size(); begin += per_chunk) {
      const size_t count = std::min(per_chunk, sum_.size() - begin);
      for (size_t i = 0; i < count; ++i) {
        const float value =
            static_cast<float>(static_cast<double>(global_[begin + i]) + sum_[begin + i]);
        std::memcpy(chunk_.data() + i * kFloatBytes, &value, kFloatBytes);
      }
      RETURN_IF_ERROR(writer->Write(chunk_.data(), count * kFloatBytes));
    }
    std::string digest;
    RETURN_IF_ERROR(writer->Commit(&digest).status());
    broken_ = true;  // the round is over; Begin starts the next
    std::vector<double>().swap(sum_);
    std::vector<float>().swap(global_);
    return HexEncode(digest);
  }

 private:
  absl::Status CheckUsable(const char* operation) const {
    if (!broken_) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        kSiteDp, " ", operation, " in round ", round_,
        " without a usable round (not begun, finished, or a failed Accept); begin the round"));
  }

  SiteDpSum dp_sum_;
  const std::string global_model_path_;
  bool broken_ = true;
  bool noised_ = false;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  std::vector<float> global_;
  std::vector<double> sum_;  // sum of the accepted sites' changes
  int accepted_ = 0;
  std::vector<char> chunk_;
};

}  // namespace

SiteDpSum SiteDpSum::ForRound(const v1::DpSettings& dp, double clip, privacy::NoiseSource* noise) {
  SiteDpSum sum;
  sum.denominator = std::max(1, dp.expected_sites());
  if (dp.noise_placement() == v1::DP_NOISE_CENTRAL) {
    sum.noise_stddev = privacy::UpdateNoiseMultiplier(dp) * clip;
    sum.noise = noise;
  }
  return sum;
}

void SiteDpSum::Apply(double* sum, size_t count) const {
  if (noise_stddev > 0) noise->AddTo(sum, count, noise_stddev);
  for (size_t i = 0; i < count; ++i) sum[i] /= denominator;
}

double SiteDpUpdateNormBound(double clip) { return clip * (1 + kNormSlack); }

std::unique_ptr<Aggregator> MakeSiteDpAggregator(SiteDpSum sum, std::string global_model_path) {
  return std::make_unique<SiteDpAggregator>(sum, std::move(global_model_path));
}

}  // namespace fedmi
