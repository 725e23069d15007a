#include "common/evaluation/label_audit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace fedmi {

absl::StatusOr<LabelAudit> AuditLabels(const std::vector<float>& probabilities,
                                       const std::vector<int64_t>& labels, int64_t num_classes,
                                       FlagRule rule) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  if (num_classes < 2 || static_cast<int64_t>(probabilities.size()) != rows * num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a label audit needs rows x classes probabilities (", rows, " x ", num_classes,
                     ", got ", probabilities.size(), ")"));
  }
  LabelAudit audit;
  std::vector<double> sum(num_classes, 0);
  std::vector<int64_t> count(num_classes, 0);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t label = labels[row];
    if (label < 0 || label >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", row, " has label ", label, ", outside 0 to ", num_classes - 1));
    }
    sum[label] += probabilities[row * num_classes + label];
    ++count[label];
  }
  for (int64_t c = 0; c < num_classes; ++c) {
    audit.class_thresholds.push_back(count[c] > 0 ? sum[c] / count[c]
                                                  : std::numeric_limits<double>::quiet_NaN());
  }
  audit.ranked.reserve(rows);
  for (int64_t row = 0; row < rows; ++row) {
    const float* p = probabilities.data() + row * num_classes;
    LabelSuspect suspect;
    suspect.row = row;
    suspect.given = suspect.suggested = labels[row];
    suspect.p_given = p[suspect.given];
    double best_other = 0;
    double best_confident = -1;
    for (int64_t c = 0; c < num_classes; ++c) {
      if (c != suspect.given) best_other = std::max<double>(best_other, p[c]);
      // NaN thresholds (no image labelled c) never compare true.
      if (p[c] >= audit.class_thresholds[c] && p[c] > best_confident) {
        best_confident = p[c];
        suspect.suggested = c;
      }
    }
    suspect.margin = suspect.p_given - best_other;
    // The suggested class must also beat the given one: where most images
    // labelled j are mislabelled, t_j is low, and a correctly labelled
    // image would otherwise be flagged for a middling p_j.
    if (suspect.suggested != suspect.given && p[suspect.suggested] > suspect.p_given) {
      ++audit.flagged;
    }
    audit.ranked.push_back(suspect);
  }
  std::stable_sort(
      audit.ranked.begin(), audit.ranked.end(),
      [](const LabelSuspect& a, const LabelSuspect& b) { return a.margin < b.margin; });
  // Each counted image has a negative margin, so the `flagged` lowest
  // margins are all negative too: a flagged image's given class is never
  // the likeliest, under either rule.
  if (rule == FlagRule::kLikeliestDisagrees) {
    audit.flagged = std::count_if(audit.ranked.begin(), audit.ranked.end(),
                                  [](const LabelSuspect& s) { return s.margin < 0; });
  }
  for (int64_t i = 0; i < audit.flagged; ++i) {
    LabelSuspect& suspect = audit.ranked[i];
    suspect.flagged = true;
    if (suspect.suggested != suspect.given) continue;
    // Flagged although no other class reached its threshold: suggest the
    // likeliest other class.
    const float* p = probabilities.data() + suspect.row * num_classes;
    for (int64_t c = 0; c < num_classes; ++c) {
      if (c != suspect.given &&
          (suspect.suggested == suspect.given || p[c] > p[suspect.suggested])) {
        suspect.suggested = c;
      }
    }
  }
  return audit;
}

}  // namespace fedmi
