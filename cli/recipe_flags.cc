#include "cli/recipe_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "common/base/status.h"
#include "common/runspec/model_names.h"
#include "common/runspec/training_recipe.h"

namespace fedmi::cli {

void AddRecipeOptions(CLI::App* command, RecipeFlags* flags) {
  AddCheckedOption(command, "--image-size", flags->image_size,
                   "side in pixels every site resizes its images to (keeping the aspect ratio, "
                   "padded): 28, 64, 128 or 224",
                   CLI::IsMember({28, 64, 128, 224}));
  AddCheckedOption(command, "--channels", flags->channels,
                   "image channels the model takes: 1 (grey) or 3 (grey repeated, for "
                   "networks made for colour)",
                   CLI::IsMember({1, 3}));
  command->add_flag("--first-frame-only", flags->first_frame_only,
                    "train on the first frame of multi-frame DICOM objects (otherwise sites "
                    "skip them as unreadable)");
  AddCheckedOption(command, "--unet-width", flags->unet_base_width,
                   absl::StrCat("--model unet: channels of its first block, doubled at each "
                                "level (default ",
                                kUNetDefaultBaseWidth, ")"),
                   CLI::Range(1, kUNetMaxBaseWidth));
  AddCheckedOption(command, "--unet-depth", flags->unet_depth,
                   absl::StrCat("--model unet: poolings (default ", kUNetDefaultDepth,
                                "); --image-size must be a multiple of 2^depth"),
                   CLI::Range(1, kUNetMaxDepth));
  AddCheckedOption(command, "--augment", flags->augment,
                   "augmentation at the sites: none, shift (random shift of up to 2 pixels) or "
                   "standard (random resized crop of 85-100% of the area, rotation up to 10 "
                   "degrees, brightness and contrast jitter of 10%, shift); the flags below "
                   "change single parts",
                   CLI::IsMember({"none", "shift", "standard"}));
  AddCheckedOption(command, "--crop-min-scale", flags->crop_min_scale,
                   "random resized crop: smallest share of the image area kept (1: no crop)",
                   CLI::Range(0.08, 1.0));
  AddCheckedOption(command, "--rotation", flags->rotation,
                   "random rotation of up to this many degrees", CLI::Range(0.0, 180.0));
  AddCheckedOption(command, "--brightness", flags->brightness,
                   "brightness jitter: pixel values scaled by a factor in [1-b, 1+b]",
                   CLI::Range(0.0, 0.99));
  AddCheckedOption(command, "--contrast", flags->contrast,
                   "contrast jitter: distance from the image mean scaled by a factor in "
                   "[1-c, 1+c]",
                   CLI::Range(0.0, 0.99));
  AddCheckedOption(command, "--shift", flags->shift, "random shift of up to this many pixels",
                   CLI::Range(0, 32));
  command->add_flag("--horizontal-flip", flags->horizontal_flip,
                    "mirror half the training images left to right (off by default: on a "
                    "chest X-ray the heart is on the left)");
  AddCheckedOption(command, "--lr-schedule", flags->lr_schedule,
                   "learning rate over the rounds: constant, cosine (from --lr towards 0, "
                   "lr (1 + cos(pi (r-1) / R)) / 2 in round r of R) or step (times "
                   "--lr-step-gamma every --lr-step-rounds)",
                   CLI::IsMember({"constant", "cosine", "step"}));
  AddCheckedOption(command, "--lr-step-rounds", flags->lr_step_rounds,
                   "--lr-schedule step: rounds between two steps", CLI::Range(1, 100000));
  AddCheckedOption(command, "--lr-step-gamma", flags->lr_step_gamma,
                   "--lr-schedule step: factor of each step (default 0.1)",
                   CLI::Range(0.000001, 1.0));
  AddCheckedOption(command, "--weight-decay", flags->weight_decay,
                   "weight decay (decoupled, AdamW, with adam; L2 with sgd)",
                   CLI::Range(0.0, 0.99));
  AddCheckedOption(command, "--target-sensitivity", flags->target_sensitivity,
                   "choose the operating threshold as the highest one whose sensitivity on the "
                   "sites' pooled validation data reaches this (default: Youden's J, the best "
                   "sensitivity + specificity)",
                   CLI::Range(0.01, 0.999));
}

absl::Status ApplyRecipeFlags(const RecipeFlags& flags, v1::RunSpec* spec) {
  spec->set_image_size(flags.image_size);
  spec->set_channels(flags.channels);
  spec->set_first_frame_only(flags.first_frame_only);
  if (flags.unet_base_width != 0 || flags.unet_depth != 0) {
    spec->mutable_unet()->set_base_width(flags.unet_base_width);
    spec->mutable_unet()->set_depth(flags.unet_depth);
  }
  v1::TrainingRecipe& recipe = *spec->mutable_recipe();
  ASSIGN_OR_RETURN(v1::Augmentation augmentation, NamedAugmentation(flags.augment));
  if (flags.crop_min_scale >= 0) {
    augmentation.set_crop_min_scale(flags.crop_min_scale < 1 ? flags.crop_min_scale : 0);
  }
  if (flags.rotation >= 0) augmentation.set_rotation_degrees(flags.rotation);
  if (flags.brightness >= 0) augmentation.set_brightness(flags.brightness);
  if (flags.contrast >= 0) augmentation.set_contrast(flags.contrast);
  if (flags.shift >= 0) augmentation.set_shift_pixels(flags.shift);
  augmentation.set_horizontal_flip(flags.horizontal_flip);
  *recipe.mutable_augmentation() = augmentation;
  ASSIGN_OR_RETURN(v1::LrSchedule schedule, ParseLrSchedule(flags.lr_schedule));
  recipe.set_lr_schedule(schedule);
  if (recipe.lr_schedule() == v1::LR_SCHEDULE_STEP) {
    if (flags.lr_step_rounds == 0) {
      return absl::InvalidArgumentError("--lr-schedule step needs --lr-step-rounds");
    }
  } else if (flags.lr_step_rounds != 0 || flags.lr_step_gamma != 0) {
    return absl::InvalidArgumentError(
        "--lr-step-rounds and --lr-step-gamma need --lr-schedule step");
  }
  recipe.set_lr_step_rounds(flags.lr_step_rounds);
  recipe.set_lr_step_gamma(flags.lr_step_gamma);
  recipe.set_weight_decay(flags.weight_decay);
  if (flags.target_sensitivity > 0) {
    recipe.set_operating_point(v1::OPERATING_POINT_TARGET_SENSITIVITY);
    recipe.set_target_sensitivity(flags.target_sensitivity);
  }
  return absl::OkStatus();
}

std::string DescribeRecipe(const v1::RunSpec& spec) {
  const v1::Augmentation augmentation = EffectiveAugmentation(spec);
  std::string parts;
  auto add = [&parts](const std::string& part) {
    absl::StrAppend(&parts, parts.empty() ? "" : " ", part);
  };
  if (augmentation.crop_min_scale() > 0) {
    add(absl::StrFormat("crop>=%g", augmentation.crop_min_scale()));
  }
  if (augmentation.rotation_degrees() > 0) {
    add(absl::StrFormat("rotate<=%gdeg", augmentation.rotation_degrees()));
  }
  if (augmentation.horizontal_flip()) add("flip");
  if (augmentation.brightness() > 0)
    add(absl::StrFormat("brightness%g", augmentation.brightness()));
  if (augmentation.contrast() > 0) add(absl::StrFormat("contrast%g", augmentation.contrast()));
  if (augmentation.shift_pixels() > 0)
    add(absl::StrFormat("shift%dpx", augmentation.shift_pixels()));
  const std::string unet =
      spec.model() == kUNetModel
          ? absl::StrFormat(
                ", unet width %d depth %d",
                spec.unet().base_width() != 0 ? spec.unet().base_width() : kUNetDefaultBaseWidth,
                spec.unet().depth() != 0 ? spec.unet().depth() : kUNetDefaultDepth)
          : "";
  return absl::StrFormat("input %dx%dx%d%s, augmentation %s, %s learning rate %g%s, threshold %s",
                         InputImageSize(spec), InputImageSize(spec), InputChannels(spec), unet,
                         parts.empty() ? "none" : parts,
                         LrScheduleName(spec.recipe().lr_schedule()), spec.lr(),
                         spec.recipe().weight_decay() > 0
                             ? absl::StrFormat(", weight decay %g", spec.recipe().weight_decay())
                             : "",
                         OperatingPointText(spec));
}

}  // namespace fedmi::cli
