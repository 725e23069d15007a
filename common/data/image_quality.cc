#include "common/data/image_quality.h"

#include <algorithm>
#include <cmath>

namespace fedmi {
namespace {

constexpr int kCells = kThumbnailSide * kThumbnailSide;
// With fewer, "the rest of the site" is one or no image.
constexpr int64_t kMinImagesForInversion = 3;
// Thumbnails are floats: an exact threshold would miss pairs that differ by
// exactly it after rounding.
constexpr double kDifferenceSlack = 1e-4;

double MeanAbsoluteDifference(const Thumbnail& a, const Thumbnail& b, double give_up_above) {
  const double budget = give_up_above * kCells;
  double sum = 0;
  for (int row = 0; row < kThumbnailSide; ++row) {
    for (int col = 0; col < kThumbnailSide; ++col) {
      const int i = row * kThumbnailSide + col;
      sum += std::fabs(static_cast<double>(a[i]) - b[i]);
    }
    // Distinct images differ from the first rows on: most pairs stop here.
    if (sum > budget) return sum / kCells;
  }
  return sum / kCells;
}

double ThumbnailMean(const Thumbnail& thumbnail) {
  double sum = 0;
  for (float v : thumbnail) sum += v;
  return sum / kCells;
}

double ThumbnailStd(const Thumbnail& thumbnail, double mean) {
  double squares = 0;
  for (float v : thumbnail) squares += (v - mean) * (v - mean);
  return std::sqrt(squares / kCells);
}

double Correlation(const Thumbnail& image, double mean, const std::vector<double>& typical_centred,
                   double typical_norm) {
  double dot = 0, norm = 0;
  for (int i = 0; i < kCells; ++i) {
    const double centred = image[i] - mean;
    dot += centred * typical_centred[i];
    norm += centred * centred;
  }
  if (norm <= 0 || typical_norm <= 0) return 0;
  return dot / (std::sqrt(norm) * typical_norm);
}

}  // namespace

const char* QualityFlagName(QualityFlag flag) {
  switch (flag) {
    case QualityFlag::kBlank:
      return "blank";
    case QualityFlag::kUnderExposed:
      return "under-exposed";
    case QualityFlag::kOverExposed:
      return "over-exposed";
    case QualityFlag::kInverted:
      return "inverted";
    case QualityFlag::kNearDuplicate:
      return "near-duplicate";
    case QualityFlag::kOutOfDistribution:
      return "out-of-distribution";
  }
  return "unknown";
}

const char* QualityStatisticName(QualityStatistic statistic) {
  switch (statistic) {
    case QualityStatistic::kStd:
      return "std";
    case QualityStatistic::kDarkFraction:
      return "dark_fraction";
    case QualityStatistic::kMean:
      return "mean";
    case QualityStatistic::kBrightFraction:
      return "bright_fraction";
    case QualityStatistic::kThumbnailStd:
      return "thumbnail_std";
    case QualityStatistic::kCorrelation:
      return "correlation";
    case QualityStatistic::kThumbnailDistance:
      return "thumbnail_difference";
    case QualityStatistic::kMahalanobis:
      return "mahalanobis";
  }
  return "unknown";
}

Thumbnail MakeThumbnail(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels) {
  // Cell (r, c) averages rows [r*H/16, (r+1)*H/16) and the same columns;
  // an image under 16 pixels a side repeats its pixels instead.
  auto span = [](int64_t cell, int64_t extent) {
    const int64_t begin = cell * extent / kThumbnailSide;
    return std::make_pair(begin, std::max(begin + 1, (cell + 1) * extent / kThumbnailSide));
  };
  Thumbnail thumbnail{};
  for (int row = 0; row < kThumbnailSide; ++row) {
    const auto [y0, y1] = span(row, height);
    for (int col = 0; col < kThumbnailSide; ++col) {
      const auto [x0, x1] = span(col, width);
      double sum = 0;
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* pixel = pixels + (y * width + x0) * channels;
        for (int64_t i = 0; i < (x1 - x0) * channels; ++i) sum += pixel[i];
      }
      thumbnail[row * kThumbnailSide + col] =
          static_cast<float>(sum / static_cast<double>((y1 - y0) * (x1 - x0) * channels));
    }
  }
  return thumbnail;
}

QualityReport CheckImageQuality(const ImageSet& images, const QualityThresholds& thresholds) {
  QualityReport report;
  if (images.height <= 0 || images.width <= 0 || images.channels <= 0 ||
      images.pixels.size() != static_cast<size_t>(images.size() * images.ImageBytes())) {
    return report;  // nothing well formed to check
  }
  const int64_t n = images.size();
  const int64_t pixels_per_image = images.height * images.width;
  report.images.resize(n);
  std::vector<Thumbnail> thumbnails(n);
  std::vector<double> thumbnail_mean(n);
  std::vector<bool> unusable(n, false);  // exposure or blank: checked no further
  std::vector<QualityFinding> findings;
  for (int64_t row = 0; row < n; ++row) {
    const uint8_t* pixels = images.pixels.data() + row * images.ImageBytes();
    double sum = 0, squares = 0;
    int64_t dark = 0, bright = 0;
    for (int64_t p = 0; p < pixels_per_image; ++p) {
      int grey = 0;
      for (int64_t c = 0; c < images.channels; ++c) grey += pixels[p * images.channels + c];
      const double level = static_cast<double>(grey) / images.channels;
      sum += level;
      squares += level * level;
      dark += level <= thresholds.dark_level;
      bright += level >= thresholds.bright_level;
    }
    ImageQuality& quality = report.images[row];
    const double count = static_cast<double>(std::max<int64_t>(1, pixels_per_image));
    quality.mean = sum / count;
    quality.std = std::sqrt(std::max(0.0, squares / count - quality.mean * quality.mean));
    quality.dark_fraction = dark / count;
    quality.bright_fraction = bright / count;
    thumbnails[row] = MakeThumbnail(pixels, images.height, images.width, images.channels);
    thumbnail_mean[row] = ThumbnailMean(thumbnails[row]);
    unusable[row] = true;
    if (quality.dark_fraction >= thresholds.clipped_min_fraction) {
      findings.push_back({row, QualityFlag::kUnderExposed, QualityStatistic::kDarkFraction,
                          quality.dark_fraction});
    } else if (quality.mean <= thresholds.dim_max_mean) {
      findings.push_back({row, QualityFlag::kUnderExposed, QualityStatistic::kMean, quality.mean});
    } else if (quality.bright_fraction >= thresholds.clipped_min_fraction) {
      findings.push_back({row, QualityFlag::kOverExposed, QualityStatistic::kBrightFraction,
                          quality.bright_fraction});
    } else if (quality.std < thresholds.blank_max_std) {
      findings.push_back({row, QualityFlag::kBlank, QualityStatistic::kStd, quality.std});
    } else if (const double coarse = ThumbnailStd(thumbnails[row], thumbnail_mean[row]);
               coarse < thresholds.blank_max_thumbnail_std) {
      // Noise over a flat frame: its pixels vary, its thumbnail barely.
      findings.push_back({row, QualityFlag::kBlank, QualityStatistic::kThumbnailStd, coarse});
    } else {
      unusable[row] = false;
    }
  }

  // Each image against the site's typical image: the mean thumbnail of its
  // other usable images, so that the image itself does not pull it over.
  std::vector<double> usable_sum(kCells, 0.0);
  int64_t usable_count = 0;
  for (int64_t row = 0; row < n; ++row) {
    if (unusable[row]) continue;
    for (int i = 0; i < kCells; ++i) usable_sum[i] += thumbnails[row][i];
    ++usable_count;
  }
  std::vector<double> others(kCells);
  for (int64_t row = 0; row < n; ++row) {
    if (unusable[row] || usable_count < kMinImagesForInversion) continue;
    double others_mean = 0;
    for (int i = 0; i < kCells; ++i) {
      others[i] = (usable_sum[i] - thumbnails[row][i]) / static_cast<double>(usable_count - 1);
      others_mean += others[i];
    }
    others_mean /= kCells;
    double others_norm = 0;
    for (double& v : others) {
      v -= others_mean;
      others_norm += v * v;
    }
    const double correlation =
        Correlation(thumbnails[row], thumbnail_mean[row], others, std::sqrt(others_norm));
    report.images[row].correlation = correlation;
    if (correlation < thresholds.inverted_max_correlation) {
      findings.push_back(
          {row, QualityFlag::kInverted, QualityStatistic::kCorrelation, correlation});
    }
  }

  // Near-duplicates. Two thumbnails within the threshold have means within
  // it too (|mean(a) - mean(b)| <= mean|a - b|), so only neighbours in mean
  // order need comparing.
  std::vector<int64_t> order;
  for (int64_t row = 0; row < n; ++row) {
    if (!unusable[row]) order.push_back(row);
  }
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return thumbnail_mean[a] != thumbnail_mean[b] ? thumbnail_mean[a] < thumbnail_mean[b] : a < b;
  });
  const double limit = thresholds.duplicate_max_difference + kDifferenceSlack;
  std::vector<int64_t> duplicate_of(n, -1);
  std::vector<double> difference(n, 0.0);
  for (size_t a = 0; a < order.size(); ++a) {
    for (size_t b = a + 1; b < order.size(); ++b) {
      const int64_t first = order[a], second = order[b];
      if (thumbnail_mean[second] - thumbnail_mean[first] > limit) {
        break;
      }
      const double mad = MeanAbsoluteDifference(thumbnails[first], thumbnails[second], limit);
      if (mad > limit) continue;
      // The later row repeats the earlier; keep the earliest such row.
      const int64_t earlier = std::min(first, second), later = std::max(first, second);
      if (duplicate_of[later] < 0 || earlier < duplicate_of[later]) {
        duplicate_of[later] = earlier;
        difference[later] = mad;
      }
    }
  }
  for (int64_t row = 0; row < n; ++row) {
    if (duplicate_of[row] < 0) continue;
    findings.push_back({row, QualityFlag::kNearDuplicate, QualityStatistic::kThumbnailDistance,
                        difference[row], duplicate_of[row]});
  }
  std::stable_sort(findings.begin(), findings.end(),
                   [](const QualityFinding& a, const QualityFinding& b) {
                     return a.index != b.index ? a.index < b.index : a.flag < b.flag;
                   });
  report.findings = std::move(findings);
  return report;
}

}  // namespace fedmi
