#include "common/evaluation/operating_threshold.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/base/enum_names.h"

namespace fedmi {
namespace {

constexpr EnumName<ThresholdMethod> kThresholdMethods[] = {
    {ThresholdMethod::kYouden, "youden"},
    {ThresholdMethod::kTargetSensitivity, "sensitivity"},
};

// Youden's J compares sums of count products; 128 bits keep them exact for
// any histogram whose counts fit int64.
__extension__ typedef __int128 Wide;

// A target of 0.95 over 20 positives must accept 19 of them although
// 0.95 * 20 is not exactly 19 in binary.
constexpr double kSensitivitySlack = 1e-12;

absl::Status CheckTarget(double target) {
  if (!(target > 0 && target <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target sensitivity must be in (0, 1], got ", target));
  }
  return absl::OkStatus();
}

double Ratio(int64_t numerator, int64_t denominator) {
  return static_cast<double>(numerator) / static_cast<double>(denominator);
}

}  // namespace

ScoreHistogram::ScoreHistogram(int bins)
    : negative_counts_(std::max(bins, 1), 0), positive_counts_(std::max(bins, 1), 0) {}

absl::StatusOr<ScoreHistogram> ScoreHistogram::FromScores(const std::vector<int64_t>& labels,
                                                          const std::vector<float>& scores,
                                                          int bins) {
  if (bins <= 0) return absl::InvalidArgumentError(absl::StrCat("bins must be > 0, got ", bins));
  if (labels.size() != scores.size()) {
    return absl::InvalidArgumentError(absl::StrCat("score histogram got ", labels.size(),
                                                   " labels but ", scores.size(), " scores"));
  }
  ScoreHistogram histogram(bins);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (absl::Status status = histogram.Add(labels[i], scores[i]); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("example ", i, ": ", status.message()));
    }
  }
  return histogram;
}

absl::StatusOr<ScoreHistogram> ScoreHistogram::FromCounts(std::vector<int64_t> negative_counts,
                                                          std::vector<int64_t> positive_counts) {
  if (negative_counts.size() != positive_counts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("score histogram has ", negative_counts.size(),
                                                   " bins for class 0 but ", positive_counts.size(),
                                                   " for class 1"));
  }
  if (negative_counts.empty()) return absl::InvalidArgumentError("score histogram has no bins");
  if (negative_counts.size() > static_cast<size_t>(kMaxScoreBins)) {
    return absl::InvalidArgumentError(absl::StrCat("score histogram has ", negative_counts.size(),
                                                   " bins; at most ", kMaxScoreBins));
  }
  ScoreHistogram histogram(1);
  for (size_t b = 0; b < negative_counts.size(); ++b) {
    if (negative_counts[b] < 0 || positive_counts[b] < 0 || negative_counts[b] > kMaxScoreCount ||
        positive_counts[b] > kMaxScoreCount) {
      return absl::InvalidArgumentError(absl::StrCat(
          "score histogram bin ", b, " has a count outside [0, ", kMaxScoreCount, "]"));
    }
    histogram.negatives_ += negative_counts[b];
    histogram.positives_ += positive_counts[b];
  }
  histogram.negative_counts_ = std::move(negative_counts);
  histogram.positive_counts_ = std::move(positive_counts);
  return histogram;
}

int ScoreHistogram::BinOf(float score) const {
  // float * int is exact in double for any bin count below 2^29, so the bin
  // agrees with comparing the score against the bin edges.
  const double scaled = std::floor(static_cast<double>(score) * bins());
  return static_cast<int>(std::clamp(scaled, 0.0, static_cast<double>(bins() - 1)));
}

absl::Status ScoreHistogram::Add(int64_t label, float score) {
  if (label != 0 && label != 1) {
    return absl::InvalidArgumentError(absl::StrCat("label ", label, " is not 0 or 1"));
  }
  if (!(score >= 0 && score <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("score ", score, " is not in [0, 1]"));
  }
  const int bin = BinOf(score);
  if (label == 1) {
    ++positive_counts_[bin];
    ++positives_;
  } else {
    ++negative_counts_[bin];
    ++negatives_;
  }
  return absl::OkStatus();
}

absl::Status ScoreHistogram::Merge(const ScoreHistogram& other) {
  if (other.bins() != bins()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot merge a score histogram of ",
                                                   other.bins(), " bins into one of ", bins()));
  }
  for (int b = 0; b < bins(); ++b) {
    negative_counts_[b] += other.negative_counts_[b];
    positive_counts_[b] += other.positive_counts_[b];
  }
  negatives_ += other.negatives_;
  positives_ += other.positives_;
  return absl::OkStatus();
}

const char* ThresholdMethodName(ThresholdMethod method) {
  return NameOf(kThresholdMethods, method);
}

std::string ThresholdRuleText(const ThresholdRule& rule) {
  if (rule.method == ThresholdMethod::kTargetSensitivity) {
    return absl::StrCat(ThresholdMethodName(rule.method), ">=", rule.target_sensitivity);
  }
  return ThresholdMethodName(rule.method);
}

absl::StatusOr<ThresholdRule> ParseThresholdRule(absl::string_view text) {
  const absl::string_view sensitivity = ThresholdMethodName(ThresholdMethod::kTargetSensitivity);
  ThresholdRule rule;
  if (text == ThresholdMethodName(ThresholdMethod::kYouden)) return rule;
  if (absl::StartsWith(text, sensitivity)) {
    absl::string_view target = text.substr(sensitivity.size());
    if (absl::ConsumePrefix(&target, ">=") || absl::ConsumePrefix(&target, ":")) {
      rule.method = ThresholdMethod::kTargetSensitivity;
      if (!absl::SimpleAtod(target, &rule.target_sensitivity)) {
        return absl::InvalidArgumentError(
            absl::StrCat("threshold rule '", text, "': '", target, "' is not a number"));
      }
      if (absl::Status status = CheckTarget(rule.target_sensitivity); !status.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("threshold rule '", text, "': ", status.message()));
      }
      return rule;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown threshold rule '", text, "'; use 'youden' or 'sensitivity:0.95'"));
}

absl::StatusOr<OperatingPoint> ChooseOperatingThreshold(const ScoreHistogram& histogram,
                                                        const ThresholdRule& rule) {
  const int64_t positives = histogram.positives();
  const int64_t negatives = histogram.negatives();
  if (positives + negatives == 0) {
    return absl::InvalidArgumentError("cannot choose a threshold on an empty score histogram");
  }
  if (positives == 0 || negatives == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot choose a threshold without both classes: the score histogram has ",
                     negatives, " examples of class 0 and ", positives, " of class 1"));
  }
  if (rule.method == ThresholdMethod::kTargetSensitivity) {
    if (absl::Status status = CheckTarget(rule.target_sensitivity); !status.ok()) return status;
  }
  const int bins = histogram.bins();
  // At threshold b / bins: true positives are class 1 in bins >= b, true
  // negatives class 0 in bins < b.
  std::vector<int64_t> true_positives(bins), true_negatives(bins);
  int64_t above = positives;
  int64_t below = 0;
  for (int b = 0; b < bins; ++b) {
    true_positives[b] = above;
    true_negatives[b] = below;
    above -= histogram.positive_counts()[b];
    below += histogram.negative_counts()[b];
  }

  int chosen = 0;
  if (rule.method == ThresholdMethod::kYouden) {
    // J * P * N = TP * N + TN * P - P * N: compare TP * N + TN * P exactly.
    Wide best_key = -1;
    int best_distance = 0;
    for (int b = 0; b < bins; ++b) {
      const Wide key = static_cast<Wide>(true_positives[b]) * negatives +
                       static_cast<Wide>(true_negatives[b]) * positives;
      const int distance = std::abs(2 * b - bins);  // |b / bins - 0.5| * 2 bins
      if (key > best_key || (key == best_key && distance < best_distance)) {
        best_key = key;
        best_distance = distance;
        chosen = b;
      }
    }
  } else {
    for (int b = bins - 1; b >= 0; --b) {
      if (Ratio(true_positives[b], positives) >= rule.target_sensitivity - kSensitivitySlack) {
        chosen = b;
        break;
      }
    }
  }
  OperatingPoint point;
  point.threshold = static_cast<double>(chosen) / bins;
  point.sensitivity = Ratio(true_positives[chosen], positives);
  point.specificity = Ratio(true_negatives[chosen], negatives);
  point.rule = rule;
  return point;
}

std::map<std::string, std::string> OperatingThresholdMetadata(const OperatingPoint& point) {
  // 15 significant digits: bin edges such as 0.374 print as written, and
  // parse back to the same double.
  std::string threshold = absl::StrFormat("%.15g", point.threshold);
  return {{kOperatingThresholdKey, std::move(threshold)},
          {kOperatingThresholdMethodKey, ThresholdRuleText(point.rule)}};
}

absl::StatusOr<std::optional<StoredThreshold>> StoredThresholdOf(
    const std::map<std::string, std::string>& metadata) {
  auto threshold = metadata.find(kOperatingThresholdKey);
  if (threshold == metadata.end()) return std::optional<StoredThreshold>();
  StoredThreshold stored;
  if (!absl::SimpleAtod(threshold->second, &stored.threshold) ||
      !(stored.threshold >= 0 && stored.threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("model metadata ", kOperatingThresholdKey,
                                                   " is '", threshold->second,
                                                   "', not a number in [0, 1]"));
  }
  auto method = metadata.find(kOperatingThresholdMethodKey);
  if (method != metadata.end()) stored.method = method->second;
  return std::optional<StoredThreshold>(std::move(stored));
}

}  // namespace fedmi
