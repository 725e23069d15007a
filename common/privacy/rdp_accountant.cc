#include "common/privacy/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/status.h"

namespace fedmi::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr EnumName<EpsilonConversion> kConversionNames[] = {
    {EpsilonConversion::kTight, "tight"},
    {EpsilonConversion::kClassic, "classic"},
};

// log(exp(a) + exp(b)) without overflow; -inf stands for 0.
double LogAddExp(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == -kInf) return a;
  return a + std::log1p(std::exp(b - a));
}

// log(erfc(x)). erfc underflows past x ~ 26.5, so from x = 25 on use its
// asymptotic series erfc(x) = exp(-x^2) / (x sqrt(pi)) * sum_n (-1)^n
// (2n-1)!! / (2x^2)^n, whose sixth term is below 1e-13 there.
double LogErfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double u = 1 / (2 * x * x);
  const double series = -u * (1 - 3 * u * (1 - 5 * u * (1 - 7 * u * (1 - 9 * u))));
  return -x * x - std::log(x) - 0.5 * std::log(M_PI) + std::log1p(series);
}

absl::Status ValidateMechanism(const SampledGaussian& mechanism) {
  const double q = mechanism.sample_rate;
  if (!(q > 0 && q <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("sample_rate must be in (0, 1], got ", q));
  }
  const double sigma = mechanism.noise_multiplier;
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "noise_multiplier must be positive and finite (0 means no noise: epsilon is infinite), "
        "got ",
        sigma));
  }
  if (mechanism.steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be >= 0, got ", mechanism.steps));
  }
  return absl::OkStatus();
}

absl::Status ValidateOrders(const std::vector<double>& orders) {
  if (orders.empty()) return absl::InvalidArgumentError("orders must not be empty");
  for (size_t i = 0; i < orders.size(); ++i) {
    if (!(orders[i] > 1 && orders[i] <= kMaxOrder)) {
      return absl::InvalidArgumentError(absl::StrCat("orders must each be in (1, ", kMaxOrder,
                                                     "], got ", orders[i], " at index ", i));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDelta(double delta) {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  return absl::OkStatus();
}

// log(A_alpha) for integer alpha and 0 < q < 1 (MTZ 2019, Sec. 3.3):
// A = sum_i C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)).
// Every term is positive, so a log-sum-exp is exact to rounding.
double LogAInteger(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  std::vector<double> terms(static_cast<size_t>(alpha) + 1);
  // log C(alpha, i) by the recurrence C(a, i) = C(a, i-1) (a - i + 1) / i:
  // std::lgamma writes the global signgam, which would be a data race.
  double log_binomial = 0;
  for (int64_t i = 0; i <= alpha; ++i) {
    if (i > 0) {
      log_binomial +=
          std::log(static_cast<double>(alpha - i + 1)) - std::log(static_cast<double>(i));
    }
    const auto k = static_cast<double>(i);
    terms[i] = log_binomial + k * log_q + static_cast<double>(alpha - i) * log_1mq +
               (k * k - k) / (2 * sigma * sigma);
  }
  const double top = *std::max_element(terms.begin(), terms.end());
  double sum = 0;
  for (double term : terms) sum += std::exp(term - top);
  return top + std::log(sum);
}

// The fractional series stops when a term is this far (in log) below the
// positive part: e^-36 ~ 2e-16, the rounding of A itself. (Opacus and TF
// Privacy stop at e^-30 absolute; for small q, where A - 1 is tiny, that
// costs RDP its seventh digit.)
constexpr double kSeriesTolerance = 36;
// Small orders with large q and small sigma converge like a power of i; an
// order that needs more terms is given +inf (skipped, never optimistic).
constexpr int kMaxSeriesTerms = 100000;
// When the negative terms cancel all but this much (in log) of the positive
// ones, rounding could make the difference too small; the positive part
// alone is then used, an upper bound that keeps the accounting conservative.
constexpr double kMaxCancellation = 20;

// log(A_alpha) for fractional alpha and 0 < q < 1: the two series of MTZ
// 2019, Sec. 3.3, splitting the integral at z0 = sigma^2 log(1/q - 1) + 1/2.
// Term i carries C(alpha, i), which alternates in sign from i = alpha + 1 on,
// while the terms shrink; positive and negative terms are summed apart and
// subtracted once. The series stops right after a positive term, so that
// the omitted tail is negative and the result an upper bound.
double LogAFractional(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double z0 = sigma * sigma * (log_1mq - log_q) + 0.5;
  const double erfc_scale = 1 / (std::sqrt(2.0) * sigma);
  const double log_half = std::log(0.5);
  double log_positive = -kInf;
  double log_negative = -kInf;
  double log_binomial = 0;  // log |C(alpha, i)|
  bool negative = false;    // sign of C(alpha, i)
  for (int i = 0; i < kMaxSeriesTerms; ++i) {
    const auto k = static_cast<double>(i);
    if (i > 0) {
      const double factor = alpha - k + 1;
      log_binomial += std::log(std::fabs(factor)) - std::log(k);
      if (factor < 0) negative = !negative;
    }
    const double j = alpha - k;
    const double log_s0 = log_binomial + k * log_q + j * log_1mq +
                          (k * k - k) / (2 * sigma * sigma) + log_half +
                          LogErfc((k - z0) * erfc_scale);
    const double log_s1 = log_binomial + j * log_q + k * log_1mq +
                          (j * j - j) / (2 * sigma * sigma) + log_half +
                          LogErfc((z0 - j) * erfc_scale);
    const double log_term = LogAddExp(log_s0, log_s1);
    if (negative) {
      log_negative = LogAddExp(log_negative, log_term);
      continue;
    }
    log_positive = LogAddExp(log_positive, log_term);
    if (k > alpha + 1 && log_term < log_positive - kSeriesTolerance) {
      const double log_difference =
          log_positive + std::log(-std::expm1(log_negative - log_positive));
      return log_positive - log_difference < kMaxCancellation ? log_difference : log_positive;
    }
  }
  return kInf;
}

// RDP of one step at `order`, for a validated mechanism.
double StepRdp(double q, double sigma, double order) {
  if (q == 1) return order / (2 * sigma * sigma);
  const double log_a = std::floor(order) == order
                           ? LogAInteger(q, sigma, static_cast<int64_t>(order))
                           : LogAFractional(q, sigma, order);
  // A >= 1 in exact arithmetic (a Renyi divergence is never negative).
  return std::max(log_a, 0.0) / (order - 1);
}

// Epsilon at one order, before the minimum over orders and the clamp at 0.
double EpsilonAtOrder(double order, double rdp, double delta, EpsilonConversion conversion) {
  if (conversion == EpsilonConversion::kClassic) return rdp - std::log(delta) / (order - 1);
  // dp-accounting's shortcut: delta >= sqrt(1 - exp(-KL)) already gives
  // (0, delta)-DP, and the KL divergence is at most the RDP at any order > 1.
  if (delta * delta + std::expm1(-rdp) > 0) return 0;
  return rdp + std::log1p(-1 / order) - (std::log(delta) + std::log(order)) / (order - 1);
}

}  // namespace

const char* ConversionName(EpsilonConversion conversion) {
  return NameOf(kConversionNames, conversion);
}

std::optional<EpsilonConversion> ParseConversion(absl::string_view name) {
  return ParseName(kConversionNames, name);
}

std::vector<double> DefaultOrders() {
  std::vector<double> orders;
  // 1 + x / 10.0 exactly as Opacus spells it, so that the orders are the same doubles.
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int order = 12; order < 64; ++order) orders.push_back(order);
  return orders;
}

absl::StatusOr<std::vector<double>> ComputeRdp(const SampledGaussian& mechanism,
                                               const std::vector<double>& orders) {
  RETURN_IF_ERROR(ValidateMechanism(mechanism));
  RETURN_IF_ERROR(ValidateOrders(orders));
  std::vector<double> rdp(orders.size(), 0.0);
  if (mechanism.steps == 0) return rdp;
  const auto steps = static_cast<double>(mechanism.steps);
  for (size_t i = 0; i < orders.size(); ++i) {
    rdp[i] = steps * StepRdp(mechanism.sample_rate, mechanism.noise_multiplier, orders[i]);
  }
  return rdp;
}

absl::StatusOr<PrivacySpent> EpsilonFromRdp(const std::vector<double>& orders,
                                            const std::vector<double>& rdp, double delta,
                                            EpsilonConversion conversion) {
  RETURN_IF_ERROR(ValidateOrders(orders));
  RETURN_IF_ERROR(ValidateDelta(delta));
  if (rdp.size() != orders.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rdp has ", rdp.size(), " values for ", orders.size(), " orders"));
  }
  PrivacySpent best{kInf, delta, orders.front()};
  for (size_t i = 0; i < orders.size(); ++i) {
    if (!(rdp[i] >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rdp must be >= 0, got ", rdp[i], " at order ", orders[i]));
    }
    if (rdp[i] == kInf) continue;
    const double epsilon = EpsilonAtOrder(orders[i], rdp[i], delta, conversion);
    if (epsilon < best.epsilon) {
      best.epsilon = epsilon;
      best.order = orders[i];
    }
  }
  // The tight formula goes below 0 for tiny RDP; no guarantee is better than
  // 0. RDP 0 at every order (nothing composed yet) is (0, 0)-DP, which the
  // classic formula, loose by design, would report as -log(delta) / (alpha - 1).
  const bool nothing_spent = std::all_of(rdp.begin(), rdp.end(), [](double r) { return r == 0; });
  best.epsilon = nothing_spent ? 0 : std::max(best.epsilon, 0.0);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

absl::Status RdpAccountant::Add(const SampledGaussian& event) {
  ASSIGN_OR_RETURN(std::vector<double> rdp, ComputeRdp(event, orders_));
  for (size_t i = 0; i < rdp_.size(); ++i) rdp_[i] += rdp[i];
  events_.push_back(event);
  return absl::OkStatus();
}

absl::StatusOr<PrivacySpent> RdpAccountant::Spent(double delta,
                                                  EpsilonConversion conversion) const {
  return EpsilonFromRdp(orders_, rdp_, delta, conversion);
}

absl::StatusOr<PrivacySpent> RdpAccountant::SpentAfter(const SampledGaussian& next, double delta,
                                                       EpsilonConversion conversion) const {
  ASSIGN_OR_RETURN(std::vector<double> rdp, ComputeRdp(next, orders_));
  for (size_t i = 0; i < rdp.size(); ++i) rdp[i] += rdp_[i];
  return EpsilonFromRdp(orders_, rdp, delta, conversion);
}

absl::StatusOr<double> CalibrateNoiseMultiplier(double target_epsilon, double delta,
                                                double sample_rate, int64_t steps,
                                                EpsilonConversion conversion) {
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_epsilon must be positive and finite, got ", target_epsilon));
  }
  RETURN_IF_ERROR(ValidateDelta(delta));
  if (steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be >= 1, got ", steps));
  }
  constexpr double kMaxSigma = 1e6;
  constexpr double kMinSigma = 1e-6;
  constexpr double kRelativePrecision = 1e-9;
  const std::vector<double> orders = DefaultOrders();
  // Epsilon is non-increasing in sigma (so is the RDP at every order), which
  // makes a bisection on log(sigma) find the boundary.
  auto epsilon_at = [&](double sigma) -> absl::StatusOr<double> {
    ASSIGN_OR_RETURN(std::vector<double> rdp, ComputeRdp({sample_rate, sigma, steps}, orders));
    ASSIGN_OR_RETURN(PrivacySpent spent, EpsilonFromRdp(orders, rdp, delta, conversion));
    return spent.epsilon;
  };
  // Bracket: epsilon(low) > target >= epsilon(high).
  double high = 1;
  ASSIGN_OR_RETURN(double epsilon_high, epsilon_at(high));
  while (epsilon_high > target_epsilon) {
    if (high >= kMaxSigma) {
      return absl::OutOfRangeError(absl::StrCat("target_epsilon ", target_epsilon, " at delta ",
                                                delta, " cannot be met: even noise multiplier ",
                                                high, " gives epsilon ", epsilon_high));
    }
    high *= 2;
    ASSIGN_OR_RETURN(epsilon_high, epsilon_at(high));
  }
  double low = high / 2;
  ASSIGN_OR_RETURN(double epsilon_low, epsilon_at(low));
  while (epsilon_low <= target_epsilon) {
    high = low;
    if (low <= kMinSigma) {
      return absl::OutOfRangeError(absl::StrCat("target_epsilon ", target_epsilon,
                                                " is met even by noise multiplier ", low,
                                                ": a budget that large protects nothing"));
    }
    low /= 2;
    ASSIGN_OR_RETURN(epsilon_low, epsilon_at(low));
  }
  while (high / low - 1 > kRelativePrecision) {
    const double middle = std::sqrt(low * high);
    ASSIGN_OR_RETURN(double epsilon, epsilon_at(middle));
    if (epsilon <= target_epsilon) {
      high = middle;
    } else {
      low = middle;
    }
  }
  return high;
}

}  // namespace fedmi::privacy
