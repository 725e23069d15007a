// Canvas: a small RGB raster for plots fedmi writes itself (the reliability
// diagram of `fedmi model evaluate`), so that a figure needs neither Python
// nor a plotting library. Lines, filled (optionally translucent)
// rectangles and text in a built-in 5x7 bitmap font, saved as PNG
// (stb_image_write) through Env, atomically.
//
// The font has digits, letters (lower case is drawn as upper case), space
// and . , : - = ( ) / % + < > _ ?; any other character is drawn as '?'.
//
// Coordinates are pixels, (0, 0) the top-left corner; drawing outside the
// canvas is clipped. A value type; not thread-safe.
#ifndef FEDMI_COMMON_PLOT_CANVAS_H_
#define FEDMI_COMMON_PLOT_CANVAS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/env.h"

namespace fedmi {

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  bool operator==(const Rgb& other) const { return r == other.r && g == other.g && b == other.b; }
  bool operator!=(const Rgb& other) const { return !(*this == other); }
};

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};

class Canvas {
 public:
  // At least 1x1 (smaller sizes are raised to 1).
  Canvas(int width, int height, Rgb background = kWhite);

  int width() const { return width_; }
  int height() const { return height_; }
  // The colour at (x, y); the background colour outside the canvas.
  Rgb Pixel(int x, int y) const;

  void SetPixel(int x, int y, Rgb color);
  // Mixes `color` over the pixel: alpha 1 replaces it, 0 leaves it.
  void BlendPixel(int x, int y, Rgb color, double alpha);
  // The pixels x0 <= x < x1, y0 <= y < y1 (corners in either order).
  void FillRect(int x0, int y0, int x1, int y1, Rgb color, double alpha = 1);
  // The outline of the same rectangle, one pixel wide, inside it.
  void StrokeRect(int x0, int y0, int x1, int y1, Rgb color);
  // From (x0, y0) to (x1, y1), both ends included (Bresenham); a thickness
  // above 1 draws a square brush of that size centred on the line.
  void DrawLine(int x0, int y0, int x1, int y1, Rgb color, int thickness = 1);
  // Text with its top-left corner at (x, y), each font pixel a scale x scale
  // square.
  void DrawText(int x, int y, absl::string_view text, Rgb color, int scale = 1);
  static int TextWidth(absl::string_view text, int scale = 1);
  static int TextHeight(int scale = 1);

  // PNG bytes (8-bit RGB). Internal if the encoder fails (out of memory).
  absl::StatusOr<std::string> EncodePng() const;
  // Writes EncodePng() to `path`: all of it or nothing (WriteFileAtomically).
  absl::Status SavePng(const std::string& path, Env& env = *Env::Default()) const;

 private:
  int width_;
  int height_;
  Rgb background_;
  std::vector<uint8_t> pixels_;  // row-major RGB
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_CANVAS_H_
