#include "client/site_scarce_labels.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/csv.h"
#include "common/base/env.h"
#include "common/base/status.h"

namespace fedmi {

const char* SemiSupervisedMethodName(SemiSupervisedMethod method) {
  switch (method) {
    case SemiSupervisedMethod::kOff:
      return "off";
    case SemiSupervisedMethod::kPseudoLabel:
      return "pseudo-label";
    case SemiSupervisedMethod::kFixMatch:
      return "fixmatch";
  }
  return "off";
}

absl::StatusOr<SemiSupervisedMethod> ParseSemiSupervisedMethod(const std::string& name) {
  for (SemiSupervisedMethod method :
       {SemiSupervisedMethod::kOff, SemiSupervisedMethod::kPseudoLabel,
        SemiSupervisedMethod::kFixMatch}) {
    if (name == SemiSupervisedMethodName(method)) return method;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown semi-supervised method '", name,
                                                 "'; known: off, pseudo-label, fixmatch"));
}

ml::AugmentationOptions StrongAugmentation() {
  ml::AugmentationOptions strong;
  strong.max_shift = 3;
  strong.crop_min_scale = 0.6;
  strong.crop_max_aspect = 1.25;
  strong.max_rotation_degrees = 15;
  strong.brightness = 0.4;
  strong.contrast = 0.4;
  strong.cutout = 0.5;
  return strong;
}

const ImageSet& UseRoundTrainingSet(const SiteDataset& data, RoundTrainingSet& set,
                                    ml::TrainOptions& options) {
  options.example_weights = std::move(set.weights);
  // The coordinator sees metrics of the labelled images alone.
  options.reported_rows = data.train.size();
  if (set.pseudo_labelled == 0) return data.train;
  if (set.strongly_augmented) {
    options.strongly_augmented_from = data.train.size();
    options.strong_augmentation = StrongAugmentation();
  }
  return set.with_pseudo_labels;
}

absl::Status CheckLocalLabelOptions(const LocalLabelOptions& options) {
  if (!(options.pseudo_label_threshold > 0.5 && options.pseudo_label_threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pseudo-label threshold ", options.pseudo_label_threshold, " is outside (0.5, 1]"));
  }
  if (options.pseudo_label_ramp_rounds < 1 || !(options.pseudo_label_weight > 0)) {
    return absl::InvalidArgumentError("pseudo-label ramp rounds must be >= 1 and weight > 0");
  }
  if (!(options.noisy_label_weight >= 0 && options.noisy_label_weight <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("noisy-label weight ", options.noisy_label_weight, " is outside [0, 1]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::set<std::string>> ReadFlaggedLabelIds(const std::string& path) {
  if (!Env::Default()->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("suspects list ", path, " does not exist"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  std::set<std::string> ids;
  int id_column = -1, flagged_column = -1;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    const std::vector<std::string> fields = CsvFields(line);
    if (header) {
      id_column = CsvColumn(fields, "id");
      flagged_column = CsvColumn(fields, "flagged");
      if (id_column < 0 || flagged_column < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, " has no 'id' and 'flagged' columns; is it from `fedmi data audit-labels`?"));
      }
      header = false;
      continue;
    }
    const size_t needed = static_cast<size_t>(std::max(id_column, flagged_column));
    if (fields.size() > needed && fields[flagged_column] == "1") ids.insert(fields[id_column]);
  }
  return ids;
}

absl::StatusOr<RoundTrainingSet> BuildRoundTrainingSet(ml::LocalModel& model,
                                                       const SiteDataset& data,
                                                       const LocalLabelOptions& options,
                                                       int32_t round) {
  RoundTrainingSet set;
  const ImageSet& train = data.train;
  set.weights.assign(train.size(), 1.0f);
  if (!options.noisy_label_ids.empty()) {
    for (int64_t row = 0; row < train.size(); ++row) {
      if (options.noisy_label_ids.count(ImageId(train, row)) > 0) {
        set.weights[row] = static_cast<float>(options.noisy_label_weight);
        ++set.noisy_down_weighted;
      }
    }
  }
  const ImageSet& pool = data.unlabelled.images;
  if (!options.pseudo_labels() || pool.size() == 0) return set;
  ASSIGN_OR_RETURN(ml::ImageScores scores, model.Score(pool, {}));
  const int64_t k = scores.num_classes;
  std::vector<int64_t> confident;
  std::vector<int64_t> classes;
  for (int64_t row = 0; row < pool.size(); ++row) {
    const float* p = scores.probabilities.data() + row * k;
    const int64_t best = std::max_element(p, p + k) - p;
    if (p[best] >= options.pseudo_label_threshold) {
      confident.push_back(row);
      classes.push_back(best);
    }
  }
  if (confident.empty()) return set;
  const double ramp = std::min(1.0, static_cast<double>(round) / options.pseudo_label_ramp_rounds);
  // Together they weigh at most what the labelled images weigh: a pool ten
  // times the labelled set would otherwise drown the labels in the model's
  // own guesses.
  const double share =
      std::min(1.0, static_cast<double>(train.size()) / static_cast<double>(confident.size()));
  const float weight = static_cast<float>(options.pseudo_label_weight * ramp * share);
  // The labelled rows, then the pseudo-labelled ones, each copied once.
  ImageSet& combined = set.with_pseudo_labels;
  combined.height = train.height;
  combined.width = train.width;
  combined.channels = train.channels;
  combined.masks = train.masks;
  const int64_t bytes = pool.ImageBytes();
  combined.pixels.reserve(train.pixels.size() + confident.size() * bytes);
  combined.pixels.assign(train.pixels.begin(), train.pixels.end());
  for (int64_t row : confident) {
    const uint8_t* image = pool.pixels.data() + row * bytes;
    combined.pixels.insert(combined.pixels.end(), image, image + bytes);
  }
  combined.labels.reserve(train.labels.size() + classes.size());
  combined.labels.assign(train.labels.begin(), train.labels.end());
  combined.labels.insert(combined.labels.end(), classes.begin(), classes.end());
  set.weights.resize(set.with_pseudo_labels.size(), weight);
  set.pseudo_labelled = static_cast<int64_t>(confident.size());
  set.pseudo_label_weight = weight;
  set.strongly_augmented = options.semi_supervised == SemiSupervisedMethod::kFixMatch;
  return set;
}

std::string DescribeRoundTrainingSet(const SiteDataset& data, const LocalLabelOptions& options,
                                     const RoundTrainingSet& set) {
  std::string text = absl::StrCat(data.train.size(), " labelled images");
  if (!options.noisy_label_ids.empty()) {
    absl::StrAppend(&text, " (", set.noisy_down_weighted, " with suspect labels at weight ",
                    options.noisy_label_weight, ")");
  }
  if (options.pseudo_labels()) {
    absl::StrAppend(&text, " and ", set.pseudo_labelled, " pseudo-labelled ones of ",
                    data.unlabelled.images.size(), " unlabelled");
    if (set.pseudo_labelled > 0) absl::StrAppend(&text, " at weight ", set.pseudo_label_weight);
    if (set.strongly_augmented) absl::StrAppend(&text, ", strongly augmented (FixMatch)");
  }
  return text;
}

}  // namespace fedmi
