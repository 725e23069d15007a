// A site's audit of its own labels (`fedmi data audit-labels`): each
// labelled training image is scored out of sample, by a copy of the
// federated model fine-tuned on the site's other images but not on it
// (stratified k-fold cross-validation), and the scores are read confident-
// learning style (common/evaluation/label_audit.h). Runs at the site; no
// score or label leaves it. Torch-free: it calls LocalModel's interface.
#ifndef FEDMI_CLIENT_LABEL_AUDIT_H_
#define FEDMI_CLIENT_LABEL_AUDIT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/evaluation/label_audit.h"

namespace fedmi {

struct SiteLabelAuditOptions {
  int folds = 5;
  // Fine-tuning epochs per fold; 0 scores with the federated model as it
  // is, which saw these labels as one site of several (fewer flips found,
  // none at a one-class site: docs/scarce-labels.md).
  int epochs = 3;
  double lr = 1e-3;
  int batch_size = 64;
  uint64_t seed = 0;  // folds and training order
};

struct AuditFold {
  int fold = 0;  // 1-based
  int folds = 0;
  int64_t trained_on = 0;
  double loss = 0;
  int64_t scored = 0;
};
using AuditFoldObserver = std::function<void(const AuditFold&)>;

// The fold (0 to folds - 1) of each row: a seeded shuffle within each
// class, dealt round-robin, so every fold has the class balance of the
// whole. `folds` >= 1.
std::vector<int> StratifiedFolds(const std::vector<int64_t>& labels, int folds, uint64_t seed);

// Out-of-sample class probabilities of every row of `train` (rows x
// num_classes, row-major). `model` holds the federated weights on entry and
// again on return, also after an error. InvalidArgument for fewer than 2
// folds or fewer than 2 images per fold; otherwise the first error of
// fine-tuning, scoring or restoring the weights.
absl::StatusOr<std::vector<float>> OutOfSampleProbabilities(
    ml::LocalModel& model, const ImageSet& train, const SiteLabelAuditOptions& options,
    const AuditFoldObserver& on_fold = nullptr);

// The audit: cross-validated probabilities flag every image whose given
// class is not the likeliest; the federated model's own (epochs 0) flag as
// many as confident learning counts (FlagRule). The errors of
// OutOfSampleProbabilities, and InvalidArgument for a label out of range.
absl::StatusOr<LabelAudit> AuditSiteLabels(ml::LocalModel& model, const ImageSet& train,
                                           const SiteLabelAuditOptions& options,
                                           const AuditFoldObserver& on_fold = nullptr);

}  // namespace fedmi

#endif  // FEDMI_CLIENT_LABEL_AUDIT_H_
