// Norm-bounded FedAvg ("norm_bounded"; Sun et al., "Can You Really Backdoor
// Federated Learning?", 2019): each site's change to the round's global
// model, d_i = w_i - g, is scaled down to L2 norm at most B before the
// example-weighted mean,
//   new = g + sum_i p_i s_i d_i / sum_i p_i,   s_i = min(1, B / ||d_i||),
// so no site moves the model by more than B times its share of the examples,
// however it scales its update. It is computed as a FedAvg fold of the sites'
// weights with weights p_i s_i, plus g with the weight left over:
//   new = (sum_i p_i s_i w_i + sum_i p_i (1 - s_i) g) / sum_i p_i
// accumulated in double. With every update within B (all s_i = 1) this is
// FedAvg's sum, bit for bit.
//
// Streaming, no spool: Begin reads the global model into memory; Accept
// copies the update into a buffer while it measures ||d_i||, then folds the
// buffer in with its scale. Memory: 8 bytes (accumulator) + 4 (global model)
// + 4 (the update being accepted) per parameter, plus one 1 MiB chunk,
// however many sites take part.
//
// Under secure aggregation the coordinator cannot see d_i: there each site
// clips its own change to B (SiteWorker) and the coordinator takes the plain
// FedAvg mean of the masked sum; this class is the plaintext path.
//
// Not thread-safe: the RoundManager serialises calls. An Accept that fails
// (a short body, a NaN) leaves the aggregate as it was: nothing is folded in
// before the whole update has been read and checked.
#ifndef FEDMI_COORDINATOR_NORM_BOUNDED_AGGREGATOR_H_
#define FEDMI_COORDINATOR_NORM_BOUNDED_AGGREGATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregator.h"

namespace fedmi {

class NormBoundedAggregator : public Aggregator {
 public:
  // How one accepted update was scaled, in order of arrival.
  struct SiteScale {
    std::string site;
    double norm = 0;   // ||w_i - g||_2 of the update as sent
    double scale = 1;  // s_i = min(1, B / norm)
  };

  // `global_model_path`: the model the round's sites trained from, with the
  // round's tensors (Begin checks them), read by every Begin. `norm_bound`
  // must pass CheckNormBound; Begin refuses the round otherwise.
  NormBoundedAggregator(double norm_bound, std::string global_model_path);

  // InvalidArgument unless norm_bound is finite and > 0.
  static absl::Status CheckNormBound(double norm_bound);

  // Also NotFound / DataLoss / InvalidArgument when the global model cannot
  // be read or has other tensors than `model_specs`.
  absl::Status Begin(int32_t round, const std::vector<TensorSpec>& model_specs) override;
  absl::Status Accept(const std::string& site, double weight, BundleFileReader& update) override;
  int accepted() const override { return static_cast<int>(scales_.size()); }
  absl::StatusOr<std::string> Finish(const ModelStore& store) override;

  // The round's accepted updates and their scales (for logs and tests).
  const std::vector<SiteScale>& scales() const { return scales_; }
  SiteDecisions decisions() const override;

 private:
  absl::Status CheckCollecting(const char* operation) const;

  const double norm_bound_;
  const std::string global_model_path_;
  bool collecting_ = false;
  int32_t round_ = 0;
  std::vector<TensorSpec> specs_;
  std::vector<float> global_;
  std::vector<float> update_;  // the update being accepted
  std::vector<double> sum_;    // sum_i p_i s_i w_i, one per parameter
  double total_weight_ = 0;    // sum_i p_i
  double global_weight_ = 0;   // sum_i p_i (1 - s_i), the weight of g
  std::vector<SiteScale> scales_;
  std::vector<char> chunk_;  // one body chunk, reused for reading and writing
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_NORM_BOUNDED_AGGREGATOR_H_
