#include "common/data/label_simulation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "common/data/unlabelled_data.h"

namespace fedmi {
namespace {

std::vector<int64_t> ShuffledRows(int64_t n, uint64_t seed) {
  std::vector<int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  std::mt19937_64 random(seed);
  std::shuffle(rows.begin(), rows.end(), random);
  return rows;
}

}  // namespace

absl::StatusOr<int64_t> HideTrainingLabels(const std::string& shard_path, double fraction,
                                           uint64_t seed, const std::string& truth_csv) {
  if (!(fraction > 0 && fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("labelled fraction ", fraction, " is outside (0, 1]"));
  }
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(shard_path));
  if (arrays.count("train_masks") > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(shard_path, " has masks; hiding labels is for classification shards"));
  }
  if (arrays.count(kNpzUnlabelledImages) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(shard_path, " has unlabelled images already"));
  }
  ASSIGN_OR_RETURN(ImageSet train, ImageSetFromNpz(arrays, shard_path, "train"));
  const int64_t n = train.size();
  const int64_t keep = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n)),
                                           std::min<int64_t>(1, n), n);
  std::vector<int64_t> shuffled = ShuffledRows(n, seed);
  std::vector<int64_t> labelled(shuffled.begin(), shuffled.begin() + keep);
  std::vector<int64_t> hidden(shuffled.begin() + keep, shuffled.end());
  std::sort(labelled.begin(), labelled.end());
  std::sort(hidden.begin(), hidden.end());
  const ImageSet kept = SelectRows(train, labelled);
  ImageSet moved = SelectRows(train, hidden);
  std::string truth = "id,label\n";
  for (int64_t row = 0; row < moved.size(); ++row) {
    absl::StrAppend(&truth, ImageId(moved, row), ",", moved.labels[row], "\n");
  }
  ASSIGN_OR_RETURN(arrays["train_images"], ImagesToNpy(kept));
  arrays["train_labels"] = LabelsToNpy(kept);
  ASSIGN_OR_RETURN(arrays[kNpzUnlabelledImages], ImagesToNpy(moved));
  RETURN_IF_ERROR(WriteFileAtomically(*Env::Default(), truth_csv, truth));
  RETURN_IF_ERROR(WriteNpz(shard_path, arrays));
  return moved.size();
}

absl::StatusOr<int64_t> FlipTrainingLabels(const std::string& shard_path, double fraction,
                                           uint64_t seed, const std::string& record_csv) {
  if (!(fraction >= 0 && fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("flipped fraction ", fraction, " is outside [0, 1]"));
  }
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(shard_path));
  ASSIGN_OR_RETURN(ImageSet train, ImageSetFromNpz(arrays, shard_path, "train"));
  int64_t num_classes = 2;
  for (int64_t label : train.labels) num_classes = std::max(num_classes, label + 1);
  const int64_t n = train.size();
  const int64_t flips = std::llround(fraction * static_cast<double>(n));
  std::vector<int64_t> rows = ShuffledRows(n, seed);
  rows.resize(flips);
  std::sort(rows.begin(), rows.end());
  std::mt19937_64 random(seed + 1);
  std::string record = "id,row,given,true\n";
  for (int64_t row : rows) {
    const int64_t truth = train.labels[row];
    const int64_t shift = 1 + static_cast<int64_t>(random() % (num_classes - 1));
    train.labels[row] = (truth + shift) % num_classes;
    absl::StrAppend(&record, ImageId(train, row), ",", row, ",", train.labels[row], ",", truth,
                    "\n");
  }
  arrays["train_labels"] = LabelsToNpy(train);
  RETURN_IF_ERROR(WriteFileAtomically(*Env::Default(), record_csv, record));
  RETURN_IF_ERROR(WriteNpz(shard_path, arrays));
  return flips;
}

}  // namespace fedmi
