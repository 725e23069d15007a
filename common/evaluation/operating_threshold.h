// Choosing a binary classifier's operating threshold (predict class 1 when
// P(class 1) >= threshold) from a histogram of its scores, so that sites can
// each send a histogram of their validation scores, the coordinator can sum
// them, and a threshold can be chosen on the federation's pooled validation
// data without any site's individual scores leaving it.
//
// ScoreHistogram counts scores per true class in `bins` equal-width bins
// over [0, 1]: bin b holds scores in [b / bins, (b + 1) / bins), the last
// bin also 1.0. The candidate thresholds are the lower bin edges b / bins
// for b in 0..bins-1, so a chosen threshold is exact to 1 / bins (1e-3 with
// the default 1000 bins), and for float scores "score >= b / bins" is
// exactly "score falls in bin b or above": the sensitivity and specificity
// reported with a threshold are what ComputeBinaryMetrics gives at it.
//
// Values; not thread-safe for concurrent mutation, safe to read from
// several threads. Errors are InvalidArgument naming what is wrong.
#ifndef FEDMI_COMMON_EVALUATION_OPERATING_THRESHOLD_H_
#define FEDMI_COMMON_EVALUATION_OPERATING_THRESHOLD_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi {

inline constexpr int kDefaultScoreBins = 1000;
// What FromCounts accepts from another party (a site's report): enough for
// any validation set, small enough that the coordinator's sum over a million
// sites can neither exhaust memory nor overflow.
inline constexpr int kMaxScoreBins = 100000;
inline constexpr int64_t kMaxScoreCount = int64_t{1} << 40;

class ScoreHistogram {
 public:
  // An empty histogram; `bins` must be positive (a non-positive count is
  // taken as 1 so the object stays usable; FromCounts reports the error).
  explicit ScoreHistogram(int bins = kDefaultScoreBins);

  // Counts labels[i] in {0, 1} with scores[i] = P(class 1) in [0, 1].
  // InvalidArgument when the sizes differ, a label is not 0 or 1, or a
  // score is NaN or outside [0, 1].
  static absl::StatusOr<ScoreHistogram> FromScores(const std::vector<int64_t>& labels,
                                                   const std::vector<float>& scores,
                                                   int bins = kDefaultScoreBins);
  // The inverse of negative_counts() / positive_counts() (e.g. from a
  // proto's repeated int64 fields). InvalidArgument when the two differ in
  // length, are empty or longer than kMaxScoreBins, or hold a count outside
  // [0, kMaxScoreCount].
  static absl::StatusOr<ScoreHistogram> FromCounts(std::vector<int64_t> negative_counts,
                                                   std::vector<int64_t> positive_counts);

  absl::Status Add(int64_t label, float score);
  // Adds `other`'s counts. InvalidArgument when its bin count differs (the
  // sum would mean nothing); this histogram is then unchanged.
  absl::Status Merge(const ScoreHistogram& other);

  int bins() const { return static_cast<int>(negative_counts_.size()); }
  // Per bin, the scores of examples whose true class is 0 / 1.
  const std::vector<int64_t>& negative_counts() const { return negative_counts_; }
  const std::vector<int64_t>& positive_counts() const { return positive_counts_; }
  int64_t negatives() const { return negatives_; }
  int64_t positives() const { return positives_; }

  // The bin `score` (in [0, 1]) falls in.
  int BinOf(float score) const;

 private:
  std::vector<int64_t> negative_counts_;
  std::vector<int64_t> positive_counts_;
  int64_t negatives_ = 0;
  int64_t positives_ = 0;
};

enum class ThresholdMethod {
  // Maximises Youden's J = sensitivity + specificity - 1. Among thresholds
  // with the same J the one closest to 0.5 wins (the conventional default,
  // so a flat optimum does not drift to an extreme); between two equally
  // close, the lower.
  kYouden,
  // The highest threshold whose sensitivity is >= target_sensitivity: the
  // most specific threshold that still finds the required share of cases.
  kTargetSensitivity,
};

// "youden", "sensitivity".
const char* ThresholdMethodName(ThresholdMethod method);

struct ThresholdRule {
  ThresholdMethod method = ThresholdMethod::kYouden;
  double target_sensitivity = 0.95;  // kTargetSensitivity only; in (0, 1]
};

// "youden" or "sensitivity>=0.95" (also stored as a model file's
// operating_threshold_method).
std::string ThresholdRuleText(const ThresholdRule& rule);
// Parses "youden", "sensitivity>=0.95" or "sensitivity:0.95" (easier to type
// in a shell). InvalidArgument naming the accepted forms otherwise, or for a
// target outside (0, 1].
absl::StatusOr<ThresholdRule> ParseThresholdRule(absl::string_view text);

struct OperatingPoint {
  double threshold = 0.5;  // a bin edge: b / bins
  double sensitivity = 0;  // share of class 1 with score >= threshold
  double specificity = 0;  // share of class 0 with score < threshold
  ThresholdRule rule;
};

// The threshold `rule` picks on `histogram`. InvalidArgument for an empty
// histogram, or when either class has no examples (neither sensitivity nor
// specificity would be defined), or an invalid target.
absl::StatusOr<OperatingPoint> ChooseOperatingThreshold(const ScoreHistogram& histogram,
                                                        const ThresholdRule& rule);

// A model file's stored operating threshold: metadata keys
// "operating_threshold" (a decimal in [0, 1]) and
// "operating_threshold_method" (ThresholdRuleText, or any text).
inline constexpr char kOperatingThresholdKey[] = "operating_threshold";
inline constexpr char kOperatingThresholdMethodKey[] = "operating_threshold_method";

struct StoredThreshold {
  double threshold = 0.5;
  std::string method;  // empty when the file does not say
};

// The two metadata entries for `point`.
std::map<std::string, std::string> OperatingThresholdMetadata(const OperatingPoint& point);
// nullopt when `metadata` has no "operating_threshold"; InvalidArgument
// when it is not a number in [0, 1].
absl::StatusOr<std::optional<StoredThreshold>> StoredThresholdOf(
    const std::map<std::string, std::string>& metadata);

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_OPERATING_THRESHOLD_H_
