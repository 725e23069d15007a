// Differential-privacy accounting for DP-SGD style training: Renyi
// differential privacy (RDP) of the Poisson-sampled Gaussian mechanism,
// composed over steps and over events with different parameters, and turned
// into an (epsilon, delta) guarantee.
//
// Sources: Mironov 2017 ("Renyi Differential Privacy") for RDP and its
// composition; Mironov, Talwar, Zhang 2019 ("Renyi Differential Privacy of
// the Sampled Gaussian Mechanism", Sec. 3.3) for the RDP of one step; Balle
// et al. 2020 ("Hypothesis Testing Interpretations and Renyi Differential
// Privacy", Thm. 21) for the tight conversion. The numbers agree with
// Opacus, TensorFlow Privacy and Google's dp-accounting (see
// tests/common/privacy/rdp_accountant_test.cc and docs/privacy.md).
//
// Everything here is a pure function of its arguments except RdpAccountant,
// a value type that is not thread-safe (guard a shared one). Bad parameters
// give InvalidArgument naming the parameter; nothing throws.
#ifndef FEDMI_COMMON_PRIVACY_RDP_ACCOUNTANT_H_
#define FEDMI_COMMON_PRIVACY_RDP_ACCOUNTANT_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi::privacy {

// Composition of `steps` runs of the sampled Gaussian mechanism: each step
// samples every record independently with probability sample_rate (Poisson)
// and adds Gaussian noise of std noise_multiplier * sensitivity.
struct SampledGaussian {
  double sample_rate = 1;       // q in (0, 1]
  double noise_multiplier = 0;  // sigma > 0
  int64_t steps = 0;            // >= 0
};

// How an RDP curve becomes (epsilon, delta). Both are valid upper bounds;
// kTight is never larger than kClassic.
enum class EpsilonConversion {
  // Balle et al. 2020, Thm. 21, as Opacus and dp-accounting use:
  // eps = rdp + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1),
  // plus dp-accounting's KL shortcut (epsilon 0 when sqrt(1 - exp(-rdp)) <= delta).
  kTight,
  // Mironov 2017, Prop. 3: eps = rdp - log(delta) / (alpha - 1); what TF
  // Privacy used before 2021, for comparison with older papers.
  kClassic,
};

// "tight" or "classic".
const char* ConversionName(EpsilonConversion conversion);
std::optional<EpsilonConversion> ParseConversion(absl::string_view name);

// The largest order ComputeRdp accepts: the integer expansion has `order`
// terms, and orders this large never give the best epsilon at any useful delta.
inline constexpr double kMaxOrder = 10000;

// Opacus' default orders: 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63.
std::vector<double> DefaultOrders();

// RDP of `mechanism` at each order (1 < alpha <= kMaxOrder, integer or
// fractional), computed in log space (Mironov, Talwar, Zhang 2019: the
// binomial expansion for integer orders, the two-series formula with erfc
// for fractional ones). q = 1 gives the closed form alpha / (2 sigma^2) *
// steps; steps = 0 gives 0. An order whose fractional series does not
// converge (small orders with large q and small sigma) gets +infinity, so
// that EpsilonFromRdp ignores it. sigma = 0 (no noise: infinite epsilon) is
// InvalidArgument like every other bad parameter, so that no caller can take
// it for a finite budget.
absl::StatusOr<std::vector<double>> ComputeRdp(const SampledGaussian& mechanism,
                                               const std::vector<double>& orders);

struct PrivacySpent {
  double epsilon = 0;
  double delta = 0;
  double order = 0;  // the order that gave the smallest epsilon
};

// The smallest epsilon over `orders` at `delta` (0 < delta < 1), never below
// 0. rdp[i] >= 0 is the RDP at orders[i]; +infinity entries are skipped, and
// if every entry is infinite the answer is epsilon = +infinity. RDP 0 at
// every order (e.g. steps = 0) gives epsilon 0 under both conversions.
absl::StatusOr<PrivacySpent> EpsilonFromRdp(
    const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
    EpsilonConversion conversion = EpsilonConversion::kTight);

// Composes heterogeneous events (different q, sigma, steps: RDP adds up per
// order). Not thread-safe. Invalid orders given to the constructor surface
// as InvalidArgument from Add(), Spent() and SpentAfter().
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = DefaultOrders());

  // InvalidArgument on bad parameters, state unchanged.
  absl::Status Add(const SampledGaussian& event);
  absl::StatusOr<PrivacySpent> Spent(
      double delta, EpsilonConversion conversion = EpsilonConversion::kTight) const;
  // What Spent() would say after also adding `next`, without adding it
  // (budget checks before a round).
  absl::StatusOr<PrivacySpent> SpentAfter(
      const SampledGaussian& next, double delta,
      EpsilonConversion conversion = EpsilonConversion::kTight) const;

  const std::vector<SampledGaussian>& events() const { return events_; }
  const std::vector<double>& orders() const { return orders_; }
  // The composed RDP at each of orders().
  const std::vector<double>& rdp() const { return rdp_; }

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
  std::vector<SampledGaussian> events_;
};

// Smallest noise multiplier (to relative precision 1e-9) whose epsilon after
// `steps` steps (>= 1) at `sample_rate` is at most target_epsilon (> 0) at
// `delta`, over DefaultOrders(). InvalidArgument for bad inputs; OutOfRange
// when the target cannot be met with a noise multiplier up to 1e6, or would
// be met by any noise multiplier down to 1e-6 (a target that large protects
// nothing).
absl::StatusOr<double> CalibrateNoiseMultiplier(
    double target_epsilon, double delta, double sample_rate, int64_t steps,
    EpsilonConversion conversion = EpsilonConversion::kTight);

}  // namespace fedmi::privacy

#endif  // FEDMI_COMMON_PRIVACY_RDP_ACCOUNTANT_H_
