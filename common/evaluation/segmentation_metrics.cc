#include "common/evaluation/segmentation_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// One-dimensional squared distance transform of f (n samples, stride
// `stride`) in place: d(p) = min_q (p - q)^2 + f(q). Lower envelope of
// parabolas, Felzenszwalb & Huttenlocher's algorithm; +inf samples are no
// parabola at all.
void Transform1d(double* f, int64_t n, int64_t stride, std::vector<double>& d,
                 std::vector<int64_t>& v, std::vector<double>& z) {
  d.resize(n);
  v.resize(n);
  z.resize(n + 1);
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    const double fq = f[q * stride];
    if (fq == kInfinity) continue;
    while (k >= 0) {
      const int64_t p = v[k];
      const double s =
          ((fq + static_cast<double>(q * q)) - (f[p * stride] + static_cast<double>(p * p))) /
          (2.0 * static_cast<double>(q - p));
      if (s <= z[k]) {
        --k;
        continue;
      }
      ++k;
      v[k] = q;
      z[k] = s;
      z[k + 1] = kInfinity;
      break;
    }
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kInfinity;
      z[1] = kInfinity;
    }
  }
  if (k < 0) return;  // No finite sample: all stay +inf.
  int64_t j = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[j + 1] < static_cast<double>(q)) ++j;
    const double dq = static_cast<double>(q - v[j]);
    d[q] = dq * dq + f[v[j] * stride];
  }
  for (int64_t q = 0; q < n; ++q) f[q * stride] = d[q];
}

// Surface pixels of a mask (see the header), as 0/1.
std::vector<uint8_t> Surface(const uint8_t* mask, int64_t height, int64_t width) {
  std::vector<uint8_t> surface(height * width, 0);
  auto background = [&](int64_t y, int64_t x) {
    return y < 0 || x < 0 || y >= height || x >= width || mask[y * width + x] == 0;
  };
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      if (mask[y * width + x] == 0) continue;
      surface[y * width + x] = background(y - 1, x) || background(y + 1, x) ||
                               background(y, x - 1) || background(y, x + 1);
    }
  }
  return surface;
}

// Appends the distances from each surface pixel of `from` to the nearest
// surface pixel of `to` (given as its squared distance transform).
void AppendDistances(const std::vector<uint8_t>& from, const std::vector<double>& to_distance,
                     std::vector<double>& out) {
  for (size_t i = 0; i < from.size(); ++i) {
    if (from[i]) out.push_back(std::sqrt(to_distance[i]));
  }
}

double Ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : std::nan("");
}

}  // namespace

MaskOverlap CountOverlap(const uint8_t* prediction, const uint8_t* truth, int64_t pixels) {
  MaskOverlap overlap;
  for (int64_t i = 0; i < pixels; ++i) {
    const bool p = prediction[i] != 0, t = truth[i] != 0;
    overlap.prediction += p;
    overlap.truth += t;
    overlap.intersection += p && t;
  }
  return overlap;
}

double DiceOf(const MaskOverlap& overlap) {
  const int64_t total = overlap.prediction + overlap.truth;
  return total == 0 ? 1.0 : 2.0 * overlap.intersection / static_cast<double>(total);
}

double IouOf(const MaskOverlap& overlap) {
  const int64_t united = overlap.Union();
  return united == 0 ? 1.0 : overlap.intersection / static_cast<double>(united);
}

void SquaredDistanceTransform(const uint8_t* seeds, int64_t height, int64_t width, double* out) {
  for (int64_t i = 0; i < height * width; ++i) out[i] = seeds[i] ? 0.0 : kInfinity;
  std::vector<double> d, z;
  std::vector<int64_t> v;
  for (int64_t x = 0; x < width; ++x) Transform1d(out + x, height, width, d, v, z);
  for (int64_t y = 0; y < height; ++y) Transform1d(out + y * width, width, 1, d, v, z);
}

double Hausdorff95(const uint8_t* prediction, const uint8_t* truth, int64_t height, int64_t width) {
  const std::vector<uint8_t> p = Surface(prediction, height, width);
  const std::vector<uint8_t> t = Surface(truth, height, width);
  const bool p_empty = std::none_of(p.begin(), p.end(), [](uint8_t s) { return s != 0; });
  const bool t_empty = std::none_of(t.begin(), t.end(), [](uint8_t s) { return s != 0; });
  if (p_empty && t_empty) return 0.0;
  if (p_empty || t_empty) return std::nan("");
  std::vector<double> to_p(height * width), to_t(height * width);
  SquaredDistanceTransform(p.data(), height, width, to_p.data());
  SquaredDistanceTransform(t.data(), height, width, to_t.data());
  std::vector<double> distances;
  AppendDistances(p, to_t, distances);
  AppendDistances(t, to_p, distances);
  std::sort(distances.begin(), distances.end());
  // numpy.percentile(..., 95), linear interpolation between order statistics.
  const double position = 0.95 * static_cast<double>(distances.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, distances.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return distances[below] + fraction * (distances[above] - distances[below]);
}

void SegmentationCounts::Add(const MaskOverlap& overlap) {
  ++images;
  intersection += overlap.intersection;
  prediction += overlap.prediction;
  truth += overlap.truth;
  dice_sum += DiceOf(overlap);
  iou_sum += IouOf(overlap);
}

void SegmentationCounts::AddImage(const uint8_t* prediction_mask, const uint8_t* truth_mask,
                                  int64_t height, int64_t width, bool hausdorff) {
  Add(CountOverlap(prediction_mask, truth_mask, height * width));
  if (!hausdorff) return;
  const double hd95 = Hausdorff95(prediction_mask, truth_mask, height, width);
  if (std::isnan(hd95)) {
    ++hausdorff_undefined;
  } else {
    hausdorff95_sum += hd95;
    ++hausdorff95_images;
  }
}

absl::Status SegmentationCounts::Check() const {
  auto bad = [](const char* field, auto value, const char* why) {
    return absl::InvalidArgumentError(
        absl::StrCat("segmentation counts: ", field, " ", value, " ", why));
  };
  if (images < 0) return bad("images", images, "is negative");
  if (prediction < 0) return bad("prediction", prediction, "is negative");
  if (truth < 0) return bad("truth", truth, "is negative");
  if (intersection < 0 || intersection > std::min(prediction, truth)) {
    return bad("intersection", intersection, "is outside [0, min(prediction, truth)]");
  }
  // Slack for rounding in sums of values that are each at most 1.
  const double n = static_cast<double>(images) * (1 + 1e-9) + 1e-9;
  if (!(dice_sum >= 0 && dice_sum <= n)) return bad("dice_sum", dice_sum, "is outside [0, images]");
  if (!(iou_sum >= 0 && iou_sum <= n)) return bad("iou_sum", iou_sum, "is outside [0, images]");
  if (!(hausdorff95_sum >= 0 && std::isfinite(hausdorff95_sum))) {
    return bad("hausdorff95_sum", hausdorff95_sum, "is negative or not finite");
  }
  if (hausdorff95_images < 0 || hausdorff_undefined < 0 ||
      hausdorff95_images > images - hausdorff_undefined) {
    return bad("hausdorff95_images", hausdorff95_images,
               "and hausdorff_undefined are negative or exceed images");
  }
  return absl::OkStatus();
}

absl::Status SegmentationCounts::Merge(const SegmentationCounts& other) {
  if (absl::Status valid = other.Check(); !valid.ok()) return valid;
  // Both are valid, so every count is non-negative: only a sum can go wrong.
  for (auto [mine, theirs] : {std::pair{images, other.images},
                              {intersection, other.intersection},
                              {prediction, other.prediction},
                              {truth, other.truth},
                              {hausdorff95_images, other.hausdorff95_images},
                              {hausdorff_undefined, other.hausdorff_undefined}}) {
    if (theirs > std::numeric_limits<int64_t>::max() - mine) {
      return absl::InvalidArgumentError(
          absl::StrCat("segmentation counts: adding ", theirs, " to ", mine, " overflows"));
    }
  }
  images += other.images;
  intersection += other.intersection;
  prediction += other.prediction;
  truth += other.truth;
  dice_sum += other.dice_sum;
  iou_sum += other.iou_sum;
  hausdorff95_sum += other.hausdorff95_sum;
  hausdorff95_images += other.hausdorff95_images;
  hausdorff_undefined += other.hausdorff_undefined;
  return absl::OkStatus();
}

double SegmentationCounts::PooledDice() const {
  if (images == 0) return std::nan("");
  return DiceOf({intersection, prediction, truth});
}

double SegmentationCounts::PooledIou() const {
  if (images == 0) return std::nan("");
  return IouOf({intersection, prediction, truth});
}

double SegmentationCounts::MeanDice() const { return Ratio(dice_sum, images); }
double SegmentationCounts::MeanIou() const { return Ratio(iou_sum, images); }
double SegmentationCounts::MeanHausdorff95() const {
  return Ratio(hausdorff95_sum, hausdorff95_images);
}

}  // namespace fedmi
