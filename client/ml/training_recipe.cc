#include "client/ml/training_recipe.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/runspec/model_file_format.h"

namespace fedmi::ml {
namespace {

constexpr int kMaxShiftLimit = 32;
constexpr double kMinCropScale = 0.08;  // torchvision's RandomResizedCrop default
constexpr double kMaxCropAspect = 2;

// `n` draws uniform on [low, high), float32, on the CPU.
torch::Tensor Uniform(int64_t n, double low, double high, at::Generator& generator) {
  return torch::rand({n}, generator, torch::kFloat32).mul_(high - low).add_(low);
}

// Whether anything but the shift moves pixels: then the shift joins the one
// affine resampling instead of taking its exact whole-pixel path.
bool NeedsWarp(const AugmentationOptions& options) {
  return options.crop_min_scale < 1 || options.crop_max_aspect > 1 ||
         options.max_rotation_degrees > 0 || options.horizontal_flip;
}

}  // namespace

absl::Status CheckAugmentationOptions(const AugmentationOptions& options) {
  auto out_of_range = [](const char* name, double value, const char* range) {
    return absl::InvalidArgumentError(
        absl::StrCat("augmentation ", name, " is ", value, ", outside ", range));
  };
  if (options.max_shift < 0 || options.max_shift > kMaxShiftLimit) {
    return out_of_range("max_shift", options.max_shift, "[0, 32]");
  }
  if (!(options.crop_min_scale >= kMinCropScale && options.crop_min_scale <= 1)) {
    return out_of_range("crop_min_scale", options.crop_min_scale, "[0.08, 1]");
  }
  if (!(options.crop_max_aspect >= 1 && options.crop_max_aspect <= kMaxCropAspect)) {
    return out_of_range("crop_max_aspect", options.crop_max_aspect, "[1, 2]");
  }
  if (!(options.max_rotation_degrees >= 0 && options.max_rotation_degrees <= 180)) {
    return out_of_range("max_rotation_degrees", options.max_rotation_degrees, "[0, 180]");
  }
  if (!(options.brightness >= 0 && options.brightness < 1)) {
    return out_of_range("brightness", options.brightness, "[0, 1)");
  }
  if (!(options.contrast >= 0 && options.contrast < 1)) {
    return out_of_range("contrast", options.contrast, "[0, 1)");
  }
  if (!(options.cutout >= 0 && options.cutout < 1)) {
    return out_of_range("cutout", options.cutout, "[0, 1)");
  }
  return absl::OkStatus();
}

ExampleGeometry ExampleGeometry::Identity(int64_t n) {
  ExampleGeometry identity;
  identity.scale_x = torch::ones({n}, torch::kFloat32);
  identity.scale_y = torch::ones({n}, torch::kFloat32);
  identity.offset_x = torch::zeros({n}, torch::kFloat32);
  identity.offset_y = torch::zeros({n}, torch::kFloat32);
  identity.angle_degrees = torch::zeros({n}, torch::kFloat32);
  identity.mirror = torch::zeros({n}, torch::kFloat32);
  return identity;
}

torch::Tensor WarpBatch(const torch::Tensor& batch, const ExampleGeometry& geometry) {
  const double h = static_cast<double>(batch.size(2));
  const double w = static_cast<double>(batch.size(3));
  const torch::Tensor radians = geometry.angle_degrees * (M_PI / 180.0);
  const torch::Tensor cos = radians.cos(), sin = radians.sin();
  const torch::Tensor sign = 1 - 2 * geometry.mirror;
  // Output pixel p (from the centre, in pixels) samples the input at
  // crop * rotate * mirror * p + offset. affine_grid wants that map in
  // coordinates where each side spans [-1, 1]; rescaling by the sides keeps
  // the rotation a rotation on non-square images.
  const torch::Tensor a00 = geometry.scale_x * cos * sign;
  const torch::Tensor a01 = -geometry.scale_x * sin * (h / w);
  const torch::Tensor a10 = geometry.scale_y * sin * sign * (w / h);
  const torch::Tensor a11 = geometry.scale_y * cos;
  const torch::Tensor t0 = geometry.offset_x * (2.0 / w);
  const torch::Tensor t1 = geometry.offset_y * (2.0 / h);
  const torch::Tensor theta =
      torch::stack({torch::stack({a00, a01, t0}, 1), torch::stack({a10, a11, t1}, 1)}, 1)
          .to(batch.options());
  const torch::Tensor grid =
      torch::affine_grid_generator(theta, batch.sizes(), /*align_corners=*/false);
  return torch::grid_sampler(batch, grid, /*interpolation_mode=*/0 /* bilinear */,
                             /*padding_mode=*/1 /* border */, /*align_corners=*/false);
}

torch::Tensor JitterIntensity(const torch::Tensor& batch, const torch::Tensor& brightness,
                              const torch::Tensor& contrast) {
  const int64_t n = batch.size(0);
  const torch::Tensor b = brightness.to(batch.options()).view({n, 1, 1, 1});
  const torch::Tensor c = contrast.to(batch.options()).view({n, 1, 1, 1});
  // In [0, 1] units (pixel / kPixelScale) and back to the model's input.
  torch::Tensor v = batch.mul(kInputStd).add_(kInputMean).mul_(b);
  const torch::Tensor mean = v.mean({1, 2, 3}, /*keepdim=*/true);
  v = (v - mean).mul_(c).add_(mean).clamp_(0, 1);
  return v.sub_(kInputMean).div_(kInputStd);
}

torch::Tensor RandomShift(const torch::Tensor& batch, int64_t max_shift, at::Generator& generator) {
  const int64_t n = batch.size(0), h = batch.size(2), w = batch.size(3);
  torch::Tensor padded =
      torch::replication_pad2d(batch, {max_shift, max_shift, max_shift, max_shift});
  torch::Tensor offsets = torch::randint(0, 2 * max_shift + 1, {n, 2}, generator, torch::kInt64);
  auto offset = offsets.accessor<int64_t, 2>();
  torch::Tensor shifted = torch::empty_like(batch);
  for (int64_t i = 0; i < n; ++i) {
    shifted[i].copy_(padded[i].narrow(1, offset[i][0], h).narrow(2, offset[i][1], w));
  }
  return shifted;
}

ExampleGeometry DrawGeometry(const AugmentationOptions& options, int64_t n, int64_t height,
                             int64_t width, at::Generator& generator) {
  ExampleGeometry g = ExampleGeometry::Identity(n);
  if (options.crop_min_scale < 1 || options.crop_max_aspect > 1) {
    const torch::Tensor area = Uniform(n, options.crop_min_scale, 1, generator);
    const double log_aspect = std::log(options.crop_max_aspect);
    const torch::Tensor aspect = Uniform(n, -log_aspect, log_aspect, generator).exp_();
    g.scale_x = (area * aspect).sqrt_().clamp_max_(1);
    g.scale_y = (area / aspect).sqrt_().clamp_max_(1);
    // Anywhere the whole region stays inside the image.
    g.offset_x = Uniform(n, -1, 1, generator).mul_(1 - g.scale_x).mul_(width / 2.0);
    g.offset_y = Uniform(n, -1, 1, generator).mul_(1 - g.scale_y).mul_(height / 2.0);
  }
  if (options.max_rotation_degrees > 0) {
    g.angle_degrees =
        Uniform(n, -options.max_rotation_degrees, options.max_rotation_degrees, generator);
  }
  if (options.horizontal_flip) {
    g.mirror = torch::rand({n}, generator, torch::kFloat32).lt(0.5).to(torch::kFloat32);
  }
  if (options.max_shift > 0) {
    g.offset_x += Uniform(n, -options.max_shift, options.max_shift, generator);
    g.offset_y += Uniform(n, -options.max_shift, options.max_shift, generator);
  }
  return g;
}

torch::Tensor CutOut(const torch::Tensor& batch, double side_fraction, at::Generator& generator) {
  const int64_t n = batch.size(0), height = batch.size(2), width = batch.size(3);
  const double half = side_fraction * static_cast<double>(std::min(height, width)) / 2;
  const torch::Tensor centre_x = Uniform(n, 0, static_cast<double>(width), generator).view({n, 1});
  const torch::Tensor centre_y = Uniform(n, 0, static_cast<double>(height), generator).view({n, 1});
  // Pixel centres at k + 1/2, so a square covers the pixels it mostly holds.
  const torch::Tensor xs = torch::arange(width, torch::kFloat32).add_(0.5).view({1, width});
  const torch::Tensor ys = torch::arange(height, torch::kFloat32).add_(0.5).view({1, height});
  const torch::Tensor inside_x = (xs - centre_x).abs_().lt(half);  // n, W
  const torch::Tensor inside_y = (ys - centre_y).abs_().lt(half);  // n, H
  const torch::Tensor erase = inside_y.unsqueeze(2).logical_and(inside_x.unsqueeze(1));
  constexpr double kMidGrey = (0.5 - kInputMean) / kInputStd;
  return batch.masked_fill(erase.unsqueeze(1).to(batch.device()), kMidGrey);
}

torch::Tensor AugmentRows(const torch::Tensor& batch, const torch::Tensor& rows,
                          const TrainOptions& options, at::Generator& generator) {
  if (options.strongly_augmented_from <= 0) {
    return Augment(batch, options.augmentation, generator);
  }
  const torch::Tensor strong = rows.ge(options.strongly_augmented_from);
  // Every row is written below, by one of the two augmentations.
  torch::Tensor out = torch::empty_like(batch);
  for (const bool is_strong : {false, true}) {
    const torch::Tensor picked = (is_strong ? strong : strong.logical_not()).nonzero().squeeze(1);
    if (picked.numel() == 0) continue;
    const AugmentationOptions& augmentation =
        is_strong ? options.strong_augmentation : options.augmentation;
    out.index_copy_(0, picked, Augment(batch.index_select(0, picked), augmentation, generator));
  }
  return out;
}

namespace {

// Augment's body; a non-null `mask` moves with the images (see
// AugmentWithMask). The draws do not depend on it.
torch::Tensor AugmentImpl(const torch::Tensor& batch, const AugmentationOptions& options,
                          at::Generator& generator, torch::Tensor* mask) {
  const int64_t n = batch.size(0);
  const int64_t channels = batch.size(1);
  const bool moves = NeedsWarp(options) || options.max_shift > 0;
  // Images and mask as one tensor, so each example's draw applies to both.
  torch::Tensor out = (mask != nullptr && moves) ? torch::cat({batch, *mask}, 1) : batch;
  if (NeedsWarp(options)) {
    out = WarpBatch(out, DrawGeometry(options, n, batch.size(2), batch.size(3), generator));
  } else if (options.max_shift > 0) {
    out = RandomShift(out, options.max_shift, generator);
  }
  if (mask != nullptr && moves) {
    *mask = out.slice(1, channels).gt(0.5).to(torch::kFloat32);
    out = out.slice(1, 0, channels).contiguous();
  }
  if (options.brightness > 0 || options.contrast > 0) {
    const torch::Tensor brightness =
        options.brightness > 0
            ? Uniform(n, 1 - options.brightness, 1 + options.brightness, generator)
            : torch::ones({n}, torch::kFloat32);
    const torch::Tensor contrast =
        options.contrast > 0 ? Uniform(n, 1 - options.contrast, 1 + options.contrast, generator)
                             : torch::ones({n}, torch::kFloat32);
    out = JitterIntensity(out, brightness, contrast);
  }
  if (options.cutout > 0) out = CutOut(out, options.cutout, generator);
  return out;
}

}  // namespace

torch::Tensor Augment(const torch::Tensor& batch, const AugmentationOptions& options,
                      at::Generator& generator) {
  return AugmentImpl(batch, options, generator, /*mask=*/nullptr);
}

torch::Tensor AugmentWithMask(const torch::Tensor& batch, const AugmentationOptions& options,
                              at::Generator& generator, torch::Tensor* mask) {
  return AugmentImpl(batch, options, generator, mask);
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<torch::Tensor>& params,
                                                       const TrainOptions& options) {
  if (options.optimizer == "adam") {
    // Plain Adam without decay: the same steps as before weight_decay existed.
    if (options.weight_decay == 0) {
      return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(options.lr));
    }
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  }
  if (options.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(options.lr)
                                                           .momentum(options.sgd_momentum)
                                                           .weight_decay(options.weight_decay));
  }
  return nullptr;
}

}  // namespace fedmi::ml
