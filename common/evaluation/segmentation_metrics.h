// Segmentation metrics of binary masks (nonzero = foreground): Dice, IoU
// and the 95th-percentile Hausdorff distance, per image and over a data
// set. Arithmetic only (no LibTorch, no images kept), so that sites can
// each send SegmentationCounts and the coordinator can sum them the way it
// sums ScoreHistograms (operating_threshold.h).
//
// Definitions, for prediction P and truth T of one image:
//   Dice = 2 |P ∩ T| / (|P| + |T|),  IoU = |P ∩ T| / |P ∪ T|,
// both 1 when P and T are empty (nothing to find, nothing found) and 0
// when exactly one is empty.
// Pooled Dice/IoU take the sums of |P ∩ T|, |P| and |T| over all images
// (one big image); mean Dice/IoU average the per-image values, so small
// structures weigh as much as large ones.
// HD95: the surface of a mask is its foreground pixels with a background
// 4-neighbour (outside the image counts as background). The distances (in
// pixels, between pixel centres, exact Euclidean) from every surface pixel
// of P to the nearest of T and from every surface pixel of T to the nearest
// of P are pooled, and HD95 is their 95th percentile with linear
// interpolation (numpy's default; medpy's hd95). 0 when both masks are
// empty; NaN (undefined) when exactly one is, and such images are left out
// of the mean and counted in hausdorff_undefined.
//
// Values; not thread-safe for concurrent mutation.
#ifndef FEDMI_COMMON_EVALUATION_SEGMENTATION_METRICS_H_
#define FEDMI_COMMON_EVALUATION_SEGMENTATION_METRICS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace fedmi {

// The overlap of one predicted mask with its truth, in pixels.
struct MaskOverlap {
  int64_t intersection = 0;  // |P ∩ T|
  int64_t prediction = 0;    // |P|
  int64_t truth = 0;         // |T|
  int64_t Union() const { return prediction + truth - intersection; }
};

// Counts over `pixels` bytes of each mask.
MaskOverlap CountOverlap(const uint8_t* prediction, const uint8_t* truth, int64_t pixels);
double DiceOf(const MaskOverlap& overlap);
double IouOf(const MaskOverlap& overlap);

// HD95 of two height x width masks as defined above (NaN when exactly one
// is empty).
double Hausdorff95(const uint8_t* prediction, const uint8_t* truth, int64_t height, int64_t width);

// Squared Euclidean distance from every pixel of a height x width grid to
// the nearest pixel where `seeds` is nonzero (Felzenszwalb & Huttenlocher,
// "Distance Transforms of Sampled Functions", 2012; exact). `out` gets
// height * width values; all +infinity when there is no seed.
void SquaredDistanceTransform(const uint8_t* seeds, int64_t height, int64_t width, double* out);

// Mergeable totals over images, like ScoreHistogram for thresholds.
struct SegmentationCounts {
  int64_t images = 0;
  int64_t intersection = 0;  // Sums over images.
  int64_t prediction = 0;
  int64_t truth = 0;
  double dice_sum = 0;  // Per-image Dice, summed.
  double iou_sum = 0;
  double hausdorff95_sum = 0;       // Over images where HD95 is defined.
  int64_t hausdorff95_images = 0;   // Images where it is defined.
  int64_t hausdorff_undefined = 0;  // Images with exactly one mask empty.

  // Adds one image's overlap (Dice and IoU sums, pixel sums).
  void Add(const MaskOverlap& overlap);
  // Adds one height x width image: overlap and, with `hausdorff`, its HD95.
  void AddImage(const uint8_t* prediction, const uint8_t* truth, int64_t height, int64_t width,
                bool hausdorff = true);
  // Adds `other` (e.g. a site's report). InvalidArgument, leaving this
  // unchanged, when `other` fails Check().
  absl::Status Merge(const SegmentationCounts& other);
  // InvalidArgument naming the field when the counts cannot come from real
  // masks: a negative count, intersection above prediction or truth, a
  // Dice/IoU sum outside [0, images], a non-finite or negative HD95 sum, or
  // more HD95 images than images.
  absl::Status Check() const;

  int64_t Union() const { return prediction + truth - intersection; }
  // 2 I / (P + T) and I / (P + T - I) over all pixels; 1 when nothing is
  // predicted and nothing is true; NaN with no image.
  double PooledDice() const;
  double PooledIou() const;
  // Means of the per-image values; NaN with no image (with no image where
  // HD95 is defined, for MeanHausdorff95).
  double MeanDice() const;
  double MeanIou() const;
  double MeanHausdorff95() const;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_SEGMENTATION_METRICS_H_
