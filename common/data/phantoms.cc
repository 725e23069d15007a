#include "common/data/phantoms.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/data/image_data.h"
#include "common/data/segmentation_data.h"

namespace fedmi {
namespace {

constexpr double kPi = 3.14159265358979323846;

// An ellipse in pixel coordinates: centre, semi-axes along its own axes,
// and the rotation of its x axis from the image's (radians).
struct Ellipse {
  double cy = 0, cx = 0, ry = 1, rx = 1, angle = 0;

  bool Contains(double y, double x) const {
    const double dy = y - cy, dx = x - cx;
    const double c = std::cos(angle), s = std::sin(angle);
    const double u = c * dx + s * dy;   // Along the ellipse's x axis.
    const double v = -s * dx + c * dy;  // Along its y axis.
    return (u * u) / (rx * rx) + (v * v) / (ry * ry) <= 1.0;
  }
};

void DrawPhantom(const PhantomOptions& options, int64_t index, uint8_t* image, uint8_t* mask,
                 int64_t& label) {
  // Image `index` has its own stream, so it does not depend on the others.
  std::seed_seq seeds{static_cast<uint32_t>(options.seed),
                      static_cast<uint32_t>(options.seed >> 32), static_cast<uint32_t>(index),
                      static_cast<uint32_t>(index >> 32)};
  std::mt19937_64 rng(seeds);
  std::uniform_real_distribution<double> jitter(-1.0, 1.0);
  const double n = static_cast<double>(options.size);

  const Ellipse body{n * (0.5 + 0.02 * jitter(rng)), n * (0.5 + 0.02 * jitter(rng)),
                     n * (0.44 + 0.03 * jitter(rng)), n * (0.40 + 0.04 * jitter(rng)),
                     0.05 * jitter(rng)};
  Ellipse lungs[2];
  for (int side = 0; side < 2; ++side) {
    const double sign = side == 0 ? -1.0 : 1.0;
    lungs[side].cy = n * (0.48 + 0.04 * jitter(rng));
    lungs[side].cx = n * (0.5 + sign * (0.17 + 0.03 * jitter(rng)));
    lungs[side].ry = n * (0.25 + 0.04 * jitter(rng));
    lungs[side].rx = n * (0.11 + 0.02 * jitter(rng));
    // Tops lean towards the midline, as lungs do. (A positive angle turns
    // the ellipse clockwise on screen, y pointing down, which moves the top
    // of its long axis right: the left lung needs it, the right one not.)
    lungs[side].angle = -sign * (kPi / 180.0) * (8.0 + 7.0 * jitter(rng));
  }
  label = std::bernoulli_distribution(0.5)(rng) ? 1 : 0;
  const Ellipse& host = lungs[jitter(rng) < 0 ? 0 : 1];
  const double radius = n * (0.05 + 0.015 * jitter(rng));
  const double lesion_y = host.cy + 0.5 * host.ry * jitter(rng);
  const double lesion_x = host.cx + 0.4 * host.rx * jitter(rng);
  const double tissue = 150 + 15 * jitter(rng);
  const double air = 45 + 10 * jitter(rng);
  std::normal_distribution<double> noise(0.0, options.noise_sigma);

  for (int64_t y = 0; y < options.size; ++y) {
    for (int64_t x = 0; x < options.size; ++x) {
      const double py = y + 0.5, px = x + 0.5;
      const bool in_lung = lungs[0].Contains(py, px) || lungs[1].Contains(py, px);
      double value = 0;
      if (!options.body_outline || body.Contains(py, px)) value = tissue;
      if (in_lung) value = air;
      if (label == 1 && in_lung) {
        const double dy = py - lesion_y, dx = px - lesion_x;
        if (dy * dy + dx * dx <= radius * radius) value = tissue - 10;
      }
      if (options.noise_sigma > 0) value += noise(rng);
      image[y * options.size + x] = static_cast<uint8_t>(std::clamp(std::lround(value), 0L, 255L));
      mask[y * options.size + x] = in_lung ? 1 : 0;
    }
  }
}

}  // namespace

absl::StatusOr<ImageSet> GeneratePhantoms(const PhantomOptions& options, int64_t first,
                                          int64_t count) {
  if (options.size < 16 || options.size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("phantom size ", options.size, " is outside 16..1024"));
  }
  if (!(options.noise_sigma >= 0 && options.noise_sigma <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("phantom noise sigma ", options.noise_sigma, " is outside 0..100"));
  }
  if (count < 0 || first < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("phantom rows ", first, " + ", count, " are invalid"));
  }
  ImageSet set;
  set.height = set.width = options.size;
  set.channels = 1;
  const int64_t plane = options.size * options.size;
  set.pixels.resize(count * plane);
  set.masks.resize(count * plane);
  set.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    DrawPhantom(options, first + i, set.pixels.data() + i * plane, set.masks.data() + i * plane,
                set.labels[i]);
  }
  return set;
}

absl::StatusOr<std::map<std::string, NpyArray>> PhantomNpz(const PhantomOptions& options) {
  const auto& f = options.split_fractions;
  const bool shares_ok =
      f[0] >= 0 && f[1] >= 0 && f[2] >= 0 && std::abs(f[0] + f[1] + f[2] - 1.0) < 1e-6;
  if (!shares_ok || options.count < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "phantom split fractions ", f[0], ",", f[1], ",", f[2], " of ", options.count,
        " images are invalid: three shares >= 0 summing to 1, and at least one image"));
  }
  const int64_t train = std::llround(f[0] * options.count);
  const int64_t val = std::min<int64_t>(std::llround(f[1] * options.count), options.count - train);
  if (train < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("phantom split fractions give no training row of ", options.count));
  }
  std::map<std::string, NpyArray> npz;
  const std::pair<const char*, std::pair<int64_t, int64_t>> splits[] = {
      {"train", {0, train}},
      {"val", {train, val}},
      {"test", {train + val, options.count - train - val}}};
  for (const auto& [split, rows] : splits) {
    ASSIGN_OR_RETURN(ImageSet set, GeneratePhantoms(options, rows.first, rows.second));
    const std::string name(split);
    ASSIGN_OR_RETURN(npz[name + "_images"], ImagesToNpy(set));
    ASSIGN_OR_RETURN(npz[name + "_masks"], MasksToNpy(set));
    npz[name + "_labels"] = LabelsToNpy(set);
  }
  return npz;
}

}  // namespace fedmi
