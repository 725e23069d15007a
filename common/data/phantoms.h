// Synthetic chest-like images with exact lung masks, for segmentation tests
// and demos without patient data (`fedmi data phantoms`).
//
// Each image (size x size, grey) has
//  - an optional body outline: an ellipse of soft tissue (grey ~150) on a
//    black background; without it the whole image is tissue;
//  - two ellipsoid "lungs" (grey ~45), left and right of the centre, whose
//    centres, semi-axes and rotations are jittered per image;
//  - in about half of the images a bright round opacity inside one lung
//    (label 1; label 0 without): the lung mask still covers it, as a lung
//    segmentation would;
//  - Gaussian noise (noise_sigma grey levels), clamped to 0..255.
// The mask is exact: pixel (y, x) is 1 when its centre lies in either lung
// ellipse.
//
// Image i depends only on (seed, i), so a seed reproduces the set and a
// larger count extends it. Uses std::mt19937_64 and <random>'s
// distributions: reproducible on one standard library. Pure; thread-safe.
#ifndef FEDMI_COMMON_DATA_PHANTOMS_H_
#define FEDMI_COMMON_DATA_PHANTOMS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/data/dataset.h"
#include "common/data/npz.h"

namespace fedmi {

struct PhantomOptions {
  int64_t count = 200;  // Images over all splits.
  int64_t size = 64;    // Height and width, 16..1024.
  uint64_t seed = 0;
  bool body_outline = true;
  double noise_sigma = 12.0;  // Grey levels, 0..100.
  // Shares of train, val and test: each >= 0, summing to 1. Rows:
  // round(train * count), round(val * count), the rest to test.
  std::array<double, 3> split_fractions = {0.7, 0.15, 0.15};
};

// Images first .. first + count - 1 of the phantom sequence of
// options.seed (options.count and split_fractions unused), with masks and
// labels. InvalidArgument for a size or noise out of range or count < 0.
absl::StatusOr<ImageSet> GeneratePhantoms(const PhantomOptions& options, int64_t first,
                                          int64_t count);

// The phantom data set as npz members train_/val_/test_ images (|u1
// (N,H,W)), masks (|u1 (N,H,W), 0/1) and labels (|u1 (N,1)), in sequence
// order (train the first rows, then val, then test). InvalidArgument for
// bad fractions (not three non-negative shares summing to 1, or no train
// row) and GeneratePhantoms' errors.
absl::StatusOr<std::map<std::string, NpyArray>> PhantomNpz(const PhantomOptions& options);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_PHANTOMS_H_
