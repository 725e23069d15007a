// The input-geometry and training-recipe flags shared by `fedmi run start`
// and `fedmi sim` (--image-size, --channels, --first-frame-only, the U-Net's
// --unet-width and --unet-depth, --augment and its knobs, --lr-schedule,
// --weight-decay, --target-sensitivity), and how
// they become RunSpec fields. The coordinator checks the result
// (CompleteTrainingRecipe) like any spec.
#ifndef FEDMI_CLI_RECIPE_FLAGS_H_
#define FEDMI_CLI_RECIPE_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::cli {

struct RecipeFlags {
  int image_size = 28;
  int channels = 1;
  bool first_frame_only = false;
  int unet_base_width = 0;        // 0: the default (kUNetDefaultBaseWidth)
  int unet_depth = 0;             // 0: the default (kUNetDefaultDepth)
  std::string augment = "shift";  // none | shift | standard
  // Each overrides the preset's value when given (< 0: not given).
  double crop_min_scale = -1;
  double rotation = -1;
  double brightness = -1;
  double contrast = -1;
  int shift = -1;
  bool horizontal_flip = false;
  std::string lr_schedule = "constant";  // constant | cosine | step
  int lr_step_rounds = 0;
  double lr_step_gamma = 0;
  double weight_decay = 0;
  double target_sensitivity = 0;  // 0: Youden's J
};

void AddRecipeOptions(CLI::App* command, RecipeFlags* flags);

// Sets the spec's image_size, channels, first_frame_only, unet (when a
// U-Net flag is given) and recipe.
// InvalidArgument naming the flag for combinations no run accepts
// (--lr-step-rounds without --lr-schedule step, ...).
absl::Status ApplyRecipeFlags(const RecipeFlags& flags, v1::RunSpec* spec);

// "28x28x1, augmentation standard, cosine schedule, threshold youden": one
// line for `run start` and `sim` to print.
std::string DescribeRecipe(const v1::RunSpec& spec);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RECIPE_FLAGS_H_
