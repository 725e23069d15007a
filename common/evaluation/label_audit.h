// Which labelled images likely carry a wrong label, confident-learning
// style (Northcutt et al. 2021), from class probabilities a model gives the
// site's images (the federated model, or cross-validated copies of it:
// client/label_audit.h). Arithmetic only.
//
// Class j's threshold t_j is the mean probability of class j over the
// images labelled j: how sure the model is, on average, of its own class.
// An image counts as likely mislabelled when some other class k reaches its
// threshold (p_k >= t_k), is the likeliest such class (the confident
// joint's off-diagonal) and is likelier than the given class: at a site
// where most images labelled j are mislabelled, t_j is low, and a middling
// p_j must not count an image whose own class the model prefers. Images
// are ranked by the margin p_given - max_{k != given} p_k, lowest first,
// and as many as were counted are flagged from the top of that ranking
// (cleanlab's "prune by noise rate": the confident joint says how many
// labels are wrong, the margin which ones). On PneumoniaMNIST with 10% of a
// site's labels flipped this flagged 130 to 175 flipped images where the
// counted set itself held 102 to 163 (docs/scarce-labels.md).
// Thread-compatible.
#ifndef FEDMI_COMMON_EVALUATION_LABEL_AUDIT_H_
#define FEDMI_COMMON_EVALUATION_LABEL_AUDIT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

struct LabelSuspect {
  int64_t row = 0;
  int64_t given = 0;  // the label the data has
  // The likeliest class over its threshold; else, for a flagged image, the
  // likeliest other class; else the given one.
  int64_t suggested = 0;
  double p_given = 0;
  double margin = 0;     // p_given - max over other classes; lower is more suspect
  bool flagged = false;  // among the `LabelAudit::flagged` lowest margins
};

struct LabelAudit {
  std::vector<double> class_thresholds;  // t_j; NaN for a class no image has
  std::vector<LabelSuspect> ranked;      // every row, most suspect first
  int64_t flagged = 0;
};

// Which images are flagged.
enum class FlagRule {
  // As many as confident learning counts, from the top of the ranking: for
  // a model that saw the labels (the federated model), whose own
  // preference at a skewed site says little.
  kConfidentCount,
  // Every image whose given class is not the likeliest (margin < 0): for
  // out-of-sample probabilities (cross-validation), where the count above
  // fell short (57 to 82 flags for 150 to 304 flips; docs/scarce-labels.md).
  kLikeliestDisagrees,
};

// `probabilities` rows x num_classes, row-major; `labels` one per row in
// [0, num_classes). InvalidArgument for inconsistent sizes or a label out
// of range.
absl::StatusOr<LabelAudit> AuditLabels(const std::vector<float>& probabilities,
                                       const std::vector<int64_t>& labels, int64_t num_classes,
                                       FlagRule rule = FlagRule::kConfidentCount);

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_LABEL_AUDIT_H_
