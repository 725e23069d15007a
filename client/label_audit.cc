#include "client/label_audit.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {

std::vector<int> StratifiedFolds(const std::vector<int64_t>& labels, int folds, uint64_t seed) {
  std::vector<int64_t> order(labels.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(seed);
  std::shuffle(order.begin(), order.end(), random);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return labels[a] < labels[b]; });
  std::vector<int> fold(labels.size());
  for (size_t i = 0; i < order.size(); ++i) fold[order[i]] = static_cast<int>(i % folds);
  return fold;
}

absl::StatusOr<std::vector<float>> OutOfSampleProbabilities(ml::LocalModel& model,
                                                            const ImageSet& train,
                                                            const SiteLabelAuditOptions& options,
                                                            const AuditFoldObserver& on_fold) {
  const int64_t k = model.config().num_classes;
  if (options.epochs == 0) {
    ASSIGN_OR_RETURN(ml::ImageScores scores, model.Score(train, {}));
    return std::move(scores.probabilities);
  }
  if (options.folds < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("cross-validation needs at least 2 folds, not ", options.folds));
  }
  if (train.size() < 2 * static_cast<int64_t>(options.folds)) {
    return absl::InvalidArgumentError(absl::StrCat(train.size(), " labelled training images; ",
                                                   options.folds, " folds need at least ",
                                                   2 * options.folds));
  }
  ASSIGN_OR_RETURN(const TensorBundle global, model.ExportWeights());
  const std::vector<int> fold = StratifiedFolds(train.labels, options.folds, options.seed);
  std::vector<float> probabilities(train.size() * k);
  auto score_fold = [&](int f) -> absl::Status {
    std::vector<int64_t> train_rows, held_out;
    for (int64_t row = 0; row < train.size(); ++row) {
      (fold[row] == f ? held_out : train_rows).push_back(row);
    }
    RETURN_IF_ERROR(model.ImportWeights(global));
    ml::TrainOptions fine_tune;
    fine_tune.epochs = options.epochs;
    fine_tune.batch_size = options.batch_size;
    fine_tune.lr = options.lr;
    fine_tune.seed = options.seed * 1009 + f;
    // The site's own class balance is what gives a minority label away
    // among images the model cannot tell apart (a one-class site's flipped
    // labels); class-weighted fine-tuning hid it and found 0.21 of such a
    // site's flips where this finds 0.94 (docs/scarce-labels.md).
    fine_tune.balance_classes = false;
    ASSIGN_OR_RETURN(const ml::TrainSummary summary,
                     model.Train(SelectRows(train, train_rows), fine_tune));
    ASSIGN_OR_RETURN(const ml::ImageScores scores, model.Score(SelectRows(train, held_out), {}));
    for (size_t i = 0; i < held_out.size(); ++i) {
      std::copy(scores.probabilities.begin() + i * k, scores.probabilities.begin() + (i + 1) * k,
                probabilities.begin() + held_out[i] * k);
    }
    if (on_fold) {
      on_fold(AuditFold{f + 1, options.folds, static_cast<int64_t>(train_rows.size()), summary.loss,
                        static_cast<int64_t>(held_out.size())});
    }
    return absl::OkStatus();
  };
  absl::Status scored = absl::OkStatus();
  for (int f = 0; f < options.folds && scored.ok(); ++f) scored = score_fold(f);
  // The federated weights go back whether or not every fold was scored.
  const absl::Status restored = model.ImportWeights(global);
  RETURN_IF_ERROR(scored);
  RETURN_IF_ERROR(restored);
  return probabilities;
}

absl::StatusOr<LabelAudit> AuditSiteLabels(ml::LocalModel& model, const ImageSet& train,
                                           const SiteLabelAuditOptions& options,
                                           const AuditFoldObserver& on_fold) {
  ASSIGN_OR_RETURN(const std::vector<float> probabilities,
                   OutOfSampleProbabilities(model, train, options, on_fold));
  // Out-of-sample probabilities can be taken at their word; the federated
  // model saw these labels.
  return AuditLabels(
      probabilities, train.labels, model.config().num_classes,
      options.epochs > 0 ? FlagRule::kLikeliestDisagrees : FlagRule::kConfidentCount);
}

}  // namespace fedmi
