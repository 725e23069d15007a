// Simulated label scarcity and label noise on shards from SplitDataset,
// for experiments (`fedmi data split --labelled-fraction`, `--flip-labels`):
// what a real site's data looks like, with the truth kept aside in a CSV
// that only the experiment reads. A real site has no such file.
//
// Not thread-safe against other writers of the same shard.
#ifndef FEDMI_COMMON_DATA_LABEL_SIMULATION_H_
#define FEDMI_COMMON_DATA_LABEL_SIMULATION_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace fedmi {

// Keeps round(fraction * N) of the shard's N training rows labelled (at
// least 1), chosen by a shuffle seeded with `seed`, and moves the others'
// images to unlabelled_images (in their order). Writes `truth_csv` with
// columns id,label: each moved image's id (ImageId of its bytes) and its
// label, which is what a radiologist would answer. Returns the number of
// rows moved. InvalidArgument for fraction outside (0, 1] or a shard that
// has unlabelled_images already; the npz readers' and writers' errors.
absl::StatusOr<int64_t> HideTrainingLabels(const std::string& shard_path, double fraction,
                                           uint64_t seed, const std::string& truth_csv);

// Gives round(fraction * N) of the shard's N labelled training rows,
// chosen by a shuffle seeded with `seed`, another class: 1 - y for two
// classes, else a different class drawn uniformly. Writes `record_csv`
// with columns id,row,given,true. Returns the number flipped.
// InvalidArgument for fraction outside [0, 1].
absl::StatusOr<int64_t> FlipTrainingLabels(const std::string& shard_path, double fraction,
                                           uint64_t seed, const std::string& record_csv);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_LABEL_SIMULATION_H_
