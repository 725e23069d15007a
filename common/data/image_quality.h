// Image quality checks a site runs on its own images before it trains on
// them (`fedmi data inspect --quality`): blank and near-constant images,
// extreme under- and over-exposure, images inverted against the site's own
// typical image, and near-duplicates within the site. Nothing leaves the
// site; every threshold is a field below, documented in docs/data.md.
//
// Each image is read once for its pixel statistics and reduced to a 16x16
// grey thumbnail (area averages), which the inversion and duplicate checks
// compare. Pure; thread-compatible.
#ifndef FEDMI_COMMON_DATA_IMAGE_QUALITY_H_
#define FEDMI_COMMON_DATA_IMAGE_QUALITY_H_

#include <array>
#include <cstdint>
#include <vector>

#include "common/data/dataset.h"

namespace fedmi {

// kOutOfDistribution needs a model: `fedmi data inspect --ood-model`
// (cli/out_of_distribution.h) adds those findings; CheckImageQuality never
// does.
enum class QualityFlag {
  kBlank,
  kUnderExposed,
  kOverExposed,
  kInverted,
  kNearDuplicate,
  kOutOfDistribution
};

// "blank", "under-exposed", "over-exposed", "inverted", "near-duplicate",
// "out-of-distribution".
const char* QualityFlagName(QualityFlag flag);

// What a finding's value measures.
enum class QualityStatistic {
  kStd,                // grey-level standard deviation (blank)
  kDarkFraction,       // pixels <= dark_level (under-exposed)
  kMean,               // mean grey level (under-exposed: dim)
  kBrightFraction,     // pixels >= bright_level (over-exposed)
  kThumbnailStd,       // standard deviation of the 16x16 thumbnail (blank)
  kCorrelation,        // with the site's typical image (inverted)
  kThumbnailDistance,  // mean absolute thumbnail difference (near-duplicate)
  kMahalanobis,        // distance to the training images in a model's embedding
};

// "std", "dark_fraction", "mean", "bright_fraction", "thumbnail_std",
// "correlation", "thumbnail_difference", "mahalanobis".
const char* QualityStatisticName(QualityStatistic statistic);

struct QualityThresholds {
  // Under-exposed: at least clipped_min_fraction of the pixels are at or
  // below dark_level, or the mean grey level is at most dim_max_mean.
  // Over-exposed: at least clipped_min_fraction are at or above
  // bright_level. PneumoniaMNIST's largest fractions are 0.43 (dark: the
  // black borders) and 0.07 (bright); its darkest image has mean 65.
  double clipped_min_fraction = 0.6;
  int dark_level = 5;
  int bright_level = 250;
  double dim_max_mean = 25.0;
  // Blank or near-constant (and not under- or over-exposed, which a black or
  // white frame is): the standard deviation of the grey levels (0-255) is
  // below blank_max_std, or that of the 16x16 thumbnail below
  // blank_max_thumbnail_std (noise over a flat frame). PneumoniaMNIST's
  // lowest are 6.3 and 5.9.
  double blank_max_std = 2.0;
  double blank_max_thumbnail_std = 3.0;
  // Inverted: the image's thumbnail correlates below this (Pearson) with the
  // site's typical image: the mean thumbnail of its other usable images
  // (at least 2 of them). An inverted copy of an image correlates about
  // minus as much as the image; PneumoniaMNIST's real images range from
  // 0.12 to 0.94.
  double inverted_max_correlation = -0.05;
  // Near-duplicates: the mean absolute difference of two thumbnails is at
  // most this many grey levels. Between distinct PneumoniaMNIST images it is
  // above 5.6 for 99% of them.
  double duplicate_max_difference = 2.0;
};

inline constexpr int kThumbnailSide = 16;
using Thumbnail = std::array<float, kThumbnailSide * kThumbnailSide>;

// What the checks measured of one image.
struct ImageQuality {
  double mean = 0;  // grey levels
  double std = 0;
  double dark_fraction = 0;    // pixels <= dark_level
  double bright_fraction = 0;  // pixels >= bright_level
  // With the site's typical image; 0 where not judged (the image is flagged
  // for exposure or blank, or the site has fewer than 3 usable images).
  double correlation = 0;
};

struct QualityFinding {
  int64_t index = 0;  // row in the checked ImageSet
  QualityFlag flag = QualityFlag::kBlank;
  QualityStatistic statistic = QualityStatistic::kStd;
  double value = 0;           // the statistic that crossed its threshold
  int64_t duplicate_of = -1;  // kNearDuplicate: the earlier row it repeats
};

struct QualityReport {
  std::vector<ImageQuality> images;      // one per row
  std::vector<QualityFinding> findings;  // by row, then flag
};

// A grey 16x16 thumbnail of one image (height x width x channels, row
// major): cell (r, c) is the mean of rows [r*height/16, (r+1)*height/16)
// and the same columns, channels averaged; a side under 16 pixels repeats
// its pixels. Both sides must be at least 1.
Thumbnail MakeThumbnail(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels);

// Runs every check on `images`. An image gets at most one of under-exposed,
// over-exposed and blank, in that order; one that has any of them takes no
// part in the typical image, the inversion check or the duplicate search
// (two white frames are not worth calling duplicates).
// Each near-duplicate names the first earlier row within the threshold;
// the first of a group is not flagged.
QualityReport CheckImageQuality(const ImageSet& images, const QualityThresholds& thresholds = {});

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_IMAGE_QUALITY_H_
