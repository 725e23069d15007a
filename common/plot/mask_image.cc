#include "common/plot/mask_image.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

absl::Status CheckPicture(int64_t height, int64_t width, int scale) {
  if (height < 1 || width < 1 || scale < 1 || scale > 64 || height * scale > 32768 ||
      width * scale > 32768) {
    return absl::InvalidArgumentError(absl::StrCat("mask picture of ", height, "x", width,
                                                   " at scale ", scale,
                                                   " is invalid: sides >= 1, scale 1..64, at "
                                                   "most 32768 pixels a side"));
  }
  return absl::OkStatus();
}

bool IsSurface(const uint8_t* mask, int64_t height, int64_t width, int64_t y, int64_t x) {
  if (mask[y * width + x] == 0) return false;
  auto background = [&](int64_t yy, int64_t xx) {
    return yy < 0 || xx < 0 || yy >= height || xx >= width || mask[yy * width + xx] == 0;
  };
  return background(y - 1, x) || background(y + 1, x) || background(y, x - 1) ||
         background(y, x + 1);
}

void FillBlock(Canvas& canvas, int64_t y, int64_t x, int scale, Rgb color, double alpha = 1) {
  canvas.FillRect(static_cast<int>(x * scale), static_cast<int>(y * scale),
                  static_cast<int>((x + 1) * scale), static_cast<int>((y + 1) * scale), color,
                  alpha);
}

void DrawOutline(Canvas& canvas, const uint8_t* mask, int64_t height, int64_t width, int scale,
                 Rgb color) {
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      if (IsSurface(mask, height, width, y, x)) FillBlock(canvas, y, x, scale, color);
    }
  }
}

}  // namespace

absl::StatusOr<Canvas> MaskCanvas(const uint8_t* mask, int64_t height, int64_t width, int scale) {
  if (absl::Status valid = CheckPicture(height, width, scale); !valid.ok()) return valid;
  Canvas canvas(static_cast<int>(width * scale), static_cast<int>(height * scale), kBlack);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      if (mask[y * width + x] != 0) FillBlock(canvas, y, x, scale, kWhite);
    }
  }
  return canvas;
}

absl::StatusOr<Canvas> MaskOverlayCanvas(const uint8_t* image, int64_t height, int64_t width,
                                         int64_t channels, const uint8_t* mask,
                                         const MaskOverlayOptions& options) {
  if (absl::Status valid = CheckPicture(height, width, options.scale); !valid.ok()) return valid;
  if (channels != 1 && channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("image of ", channels, " channels cannot be drawn; expected 1 or 3"));
  }
  const int scale = options.scale;
  Canvas canvas(static_cast<int>(width * scale), static_cast<int>(height * scale), kBlack);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const uint8_t* p = image + (y * width + x) * channels;
      const Rgb color = channels == 1 ? Rgb{p[0], p[0], p[0]} : Rgb{p[0], p[1], p[2]};
      FillBlock(canvas, y, x, scale, color);
      if (options.fill_alpha > 0 && mask[y * width + x] != 0) {
        FillBlock(canvas, y, x, scale, options.outline, options.fill_alpha);
      }
    }
  }
  if (options.truth != nullptr) {
    DrawOutline(canvas, options.truth, height, width, scale, options.truth_outline);
  }
  DrawOutline(canvas, mask, height, width, scale, options.outline);
  return canvas;
}

absl::Status SaveMaskPng(const uint8_t* mask, int64_t height, int64_t width,
                         const std::string& path, int scale, Env& env) {
  absl::StatusOr<Canvas> canvas = MaskCanvas(mask, height, width, scale);
  if (!canvas.ok()) return canvas.status();
  return canvas->SavePng(path, env);
}

absl::Status SaveMaskOverlayPng(const uint8_t* image, int64_t height, int64_t width,
                                int64_t channels, const uint8_t* mask, const std::string& path,
                                const MaskOverlayOptions& options, Env& env) {
  absl::StatusOr<Canvas> canvas = MaskOverlayCanvas(image, height, width, channels, mask, options);
  if (!canvas.ok()) return canvas.status();
  return canvas->SavePng(path, env);
}

}  // namespace fedmi
