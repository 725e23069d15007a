// What a site does during local training about scarce or doubtful labels,
// by its own operator's choice (fedmi-client flags; the run does not set
// them and the coordinator does not learn them):
//
//   pseudo-labels  (Lee 2013) each round, the unlabelled images that the
//                  round's global model puts in one class with probability
//                  >= threshold join training with that class as label, at
//                  weight `weight * min(1, round / ramp_rounds) *
//                  min(1, labelled / pseudo-labelled)`: early global models
//                  are poor teachers, so their pseudo-labels count little,
//                  and all of them together never outweigh the labels.
//   FixMatch       (Sohn et al. 2020) the same pseudo-labels, from the
//                  global model's view of the image as it is (the weak
//                  view), but trained on strongly augmented views
//                  (StrongAugmentation, new ones each epoch): the model
//                  learns to keep its class under heavy change. As in
//                  SemiFL (Diao et al. 2022), the teacher is the round's
//                  global model, not the model being trained.
//   noisy labels   images a label audit flagged (`fedmi data audit-labels`
//                  suspects.csv, flagged = 1), found by ImageId at the run's
//                  geometry, train at `noisy_label_weight`.
//
// Only training changes: validation metrics come from labelled images
// alone, and the example count sent for weighting stays the number of
// labelled training images.
#ifndef FEDMI_CLIENT_SITE_SCARCE_LABELS_H_
#define FEDMI_CLIENT_SITE_SCARCE_LABELS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"

namespace fedmi {

enum class SemiSupervisedMethod { kOff, kPseudoLabel, kFixMatch };

// "off", "pseudo-label", "fixmatch": the flag's values.
const char* SemiSupervisedMethodName(SemiSupervisedMethod method);
absl::StatusOr<SemiSupervisedMethod> ParseSemiSupervisedMethod(const std::string& name);

struct LocalLabelOptions {
  SemiSupervisedMethod semi_supervised = SemiSupervisedMethod::kOff;
  double pseudo_label_threshold = 0.95;  // in (0.5, 1]
  int pseudo_label_ramp_rounds = 5;      // >= 1
  double pseudo_label_weight = 1;        // > 0
  std::set<std::string> noisy_label_ids;
  double noisy_label_weight = 1;  // in [0, 1]

  bool pseudo_labels() const { return semi_supervised != SemiSupervisedMethod::kOff; }
  bool active() const { return pseudo_labels() || !noisy_label_ids.empty(); }
};

// InvalidArgument naming the first setting out of range.
absl::Status CheckLocalLabelOptions(const LocalLabelOptions& options);

// The ids of the flagged rows of a suspects list from `fedmi data
// audit-labels`. NotFound for a missing file; InvalidArgument naming the
// file when it lacks the id or flagged column.
absl::StatusOr<std::set<std::string>> ReadFlaggedLabelIds(const std::string& path);

struct RoundTrainingSet {
  // The labelled images plus the pseudo-labelled ones, when there are any;
  // else empty and training uses the data's own training set.
  ImageSet with_pseudo_labels;
  std::vector<float> weights;  // one per image trained on
  int64_t pseudo_labelled = 0;
  float pseudo_label_weight = 0;
  int64_t noisy_down_weighted = 0;
  bool strongly_augmented = false;  // FixMatch: the pseudo-labelled rows
};

// FixMatch's strong augmentation for chest X-rays, after RandAugment's
// kinds of change without those that alter anatomy (no mirroring): a crop
// of 60% to 100% of the area, rotation up to 15 degrees, shift up to 3
// pixels, brightness and contrast up to 40%, and a cutout of half the side.
ml::AugmentationOptions StrongAugmentation();

// Moves the round's set into `options`: example weights, the labelled rows
// reported, and for FixMatch the strongly augmented rows. Returns the
// images to train on (`data.train` when there are no pseudo-labels).
const ImageSet& UseRoundTrainingSet(const SiteDataset& data, RoundTrainingSet& set,
                                    ml::TrainOptions& options);

// "153 labelled images (12 with suspect labels at weight 0.2) and 236
// pseudo-labelled ones at weight 0.4": what a round trains on, for the log.
std::string DescribeRoundTrainingSet(const SiteDataset& data, const LocalLabelOptions& options,
                                     const RoundTrainingSet& set);

// What round `round` (1-based) trains on. `model` holds the round's global
// weights; it scores the unlabelled images (pseudo-labels only).
absl::StatusOr<RoundTrainingSet> BuildRoundTrainingSet(ml::LocalModel& model,
                                                       const SiteDataset& data,
                                                       const LocalLabelOptions& options,
                                                       int32_t round);

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_SCARCE_LABELS_H_
