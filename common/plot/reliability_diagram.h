// The reliability diagram of a binary classifier (see
// common/evaluation/calibration.h): for each bin of predicted P(class 1), a
// bar up to the observed frequency of class 1, the gap to the diagonal
// shaded, the diagonal of perfect calibration, a strip below with the
// number of examples per bin, and the ECE, Brier score and example count
// printed in the plot. A fixed-size PNG, written by `fedmi model evaluate
// --reliability-plot`.
//
// Pure functions of their inputs; thread-safe.
#ifndef FEDMI_COMMON_PLOT_RELIABILITY_DIAGRAM_H_
#define FEDMI_COMMON_PLOT_RELIABILITY_DIAGRAM_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/base/env.h"
#include "common/evaluation/calibration.h"
#include "common/plot/canvas.h"

namespace fedmi {

inline constexpr int kReliabilityDiagramWidth = 600;
inline constexpr int kReliabilityDiagramHeight = 680;

inline constexpr Rgb kDiagonalColor{40, 40, 40};
inline constexpr Rgb kObservedBarColor{70, 120, 200};
inline constexpr Rgb kGapColor{220, 50, 50};
inline constexpr Rgb kCountBarColor{150, 150, 150};

// Where the square main plot lies, to map a probability to pixels (tests
// use it to find the diagonal and the bars).
struct ReliabilityFrame {
  int left = 80;
  int top = 60;
  int size = 480;  // pixels from 0 to 1 on both axes
  int X(double p) const;
  int Y(double frequency) const;
};

// The diagram, drawn. `bins` as ComputeCalibration gives them (empty bins
// are skipped); `title` is printed on top (upper case).
Canvas RenderReliabilityDiagram(const std::vector<ReliabilityBin>& bins, double ece, double brier,
                                absl::string_view title);

// RenderReliabilityDiagram saved as a PNG at `path` (atomically).
absl::Status WriteReliabilityDiagram(const std::vector<ReliabilityBin>& bins, double ece,
                                     double brier, absl::string_view title, const std::string& path,
                                     Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_RELIABILITY_DIAGRAM_H_
