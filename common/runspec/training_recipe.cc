#include "common/runspec/training_recipe.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

constexpr int32_t kLegacyShiftPixels = 2;
constexpr double kDefaultStepGamma = 0.1;
// What LibTorch training accepts (ml::CheckAugmentationOptions).
constexpr double kMinCropScale = 0.08;
constexpr int32_t kMaxShiftPixels = 32;
constexpr double kMinLearningRate = 1e-12;
constexpr double kMaxProximalMu = 1e4;

nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

absl::Status CheckStrength(const char* field, double value, double below) {
  if (!(value >= 0 && value < below)) {
    return absl::InvalidArgumentError(
        absl::StrCat("augmentation ", field, " must be in [0, ", below, "), got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckAugmentation(const v1::Augmentation& augmentation, int32_t image_size) {
  const double crop = augmentation.crop_min_scale();
  if (!(crop == 0 || (crop >= kMinCropScale && crop <= 1))) {
    return absl::InvalidArgumentError(absl::StrCat("augmentation crop_min_scale must be in [",
                                                   kMinCropScale, ", 1] (0: no crop), got ", crop));
  }
  if (!(augmentation.rotation_degrees() >= 0 && augmentation.rotation_degrees() <= 180)) {
    return absl::InvalidArgumentError(
        absl::StrCat("augmentation rotation_degrees must be in [0, 180], got ",
                     augmentation.rotation_degrees()));
  }
  RETURN_IF_ERROR(CheckStrength("brightness", augmentation.brightness(), 1));
  RETURN_IF_ERROR(CheckStrength("contrast", augmentation.contrast(), 1));
  const int32_t max_shift = std::min(image_size / 4, kMaxShiftPixels);
  if (augmentation.shift_pixels() < 0 || augmentation.shift_pixels() > max_shift) {
    return absl::InvalidArgumentError(
        absl::StrCat("augmentation shift_pixels must be in [0, ", max_shift,
                     "] (a quarter of the image side, at most ", kMaxShiftPixels, "), got ",
                     augmentation.shift_pixels()));
  }
  return absl::OkStatus();
}

}  // namespace

int32_t InputImageSize(const v1::RunSpec& spec) {
  return spec.image_size() == 0 ? kDefaultImageSize : spec.image_size();
}

int32_t InputChannels(const v1::RunSpec& spec) {
  return spec.channels() == 0 ? 1 : spec.channels();
}

v1::Augmentation EffectiveAugmentation(const v1::RunSpec& spec) {
  if (spec.recipe().has_augmentation()) return spec.recipe().augmentation();
  v1::Augmentation legacy;
  legacy.set_shift_pixels(kLegacyShiftPixels);
  return legacy;
}

absl::StatusOr<v1::Augmentation> NamedAugmentation(const std::string& name) {
  v1::Augmentation augmentation;
  if (name == "none") return augmentation;
  augmentation.set_shift_pixels(kLegacyShiftPixels);
  if (name == "shift") return augmentation;
  if (name == "standard") {
    augmentation.set_crop_min_scale(0.85);
    augmentation.set_rotation_degrees(10);
    augmentation.set_brightness(0.1);
    augmentation.set_contrast(0.1);
    return augmentation;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown augmentation '", name, "'; known: none, shift, standard"));
}

const char* LrScheduleName(v1::LrSchedule schedule) {
  switch (schedule) {
    case v1::LR_SCHEDULE_CONSTANT:
      return "constant";
    case v1::LR_SCHEDULE_COSINE:
      return "cosine";
    case v1::LR_SCHEDULE_STEP:
      return "step";
    default:
      return "unknown";
  }
}

absl::StatusOr<v1::LrSchedule> ParseLrSchedule(const std::string& name) {
  for (v1::LrSchedule schedule :
       {v1::LR_SCHEDULE_CONSTANT, v1::LR_SCHEDULE_COSINE, v1::LR_SCHEDULE_STEP}) {
    if (name == LrScheduleName(schedule)) return schedule;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown learning-rate schedule '", name, "'; known: constant, cosine, step"));
}

double LearningRateForRound(const v1::RunSpec& spec, int32_t round) {
  const v1::TrainingRecipe& recipe = spec.recipe();
  const int32_t done = std::max(round, 1) - 1;
  switch (recipe.lr_schedule()) {
    case v1::LR_SCHEDULE_COSINE:
      return spec.lr() * 0.5 * (1 + std::cos(M_PI * done / std::max(spec.rounds(), 1)));
    case v1::LR_SCHEDULE_STEP: {
      const int32_t steps = recipe.lr_step_rounds() > 0 ? done / recipe.lr_step_rounds() : 0;
      const double gamma = recipe.lr_step_gamma() > 0 ? recipe.lr_step_gamma() : kDefaultStepGamma;
      return spec.lr() * std::pow(gamma, steps);
    }
    default:
      return spec.lr();
  }
}

ThresholdRule ThresholdRuleOf(const v1::RunSpec& spec) {
  ThresholdRule rule;
  if (spec.recipe().operating_point() == v1::OPERATING_POINT_TARGET_SENSITIVITY) {
    rule.method = ThresholdMethod::kTargetSensitivity;
    rule.target_sensitivity = spec.recipe().target_sensitivity();
  }
  return rule;
}

std::string OperatingPointText(const v1::RunSpec& spec) {
  return ThresholdRuleText(ThresholdRuleOf(spec));
}

absl::Status CompleteTrainingRecipe(v1::RunSpec* spec) {
  if (spec->image_size() == 0) spec->set_image_size(kDefaultImageSize);
  if (spec->channels() == 0) spec->set_channels(1);
  if (spec->image_size() < kMinImageSize || spec->image_size() > kMaxImageSize) {
    return absl::InvalidArgumentError(absl::StrCat("image_size must be between ", kMinImageSize,
                                                   " and ", kMaxImageSize, ", got ",
                                                   spec->image_size()));
  }
  if (spec->channels() != 1 && spec->channels() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels must be 1 (grey) or 3, got ", spec->channels()));
  }
  v1::TrainingRecipe& recipe = *spec->mutable_recipe();
  if (recipe.has_augmentation()) {
    RETURN_IF_ERROR(CheckAugmentation(recipe.augmentation(), spec->image_size()));
  }
  switch (recipe.lr_schedule()) {
    case v1::LR_SCHEDULE_CONSTANT:
    case v1::LR_SCHEDULE_COSINE:
      if (recipe.lr_step_rounds() != 0 || recipe.lr_step_gamma() != 0) {
        return absl::InvalidArgumentError(
            "lr_step_rounds and lr_step_gamma belong to the step schedule (--lr-schedule step)");
      }
      break;
    case v1::LR_SCHEDULE_STEP:
      if (recipe.lr_step_gamma() == 0) recipe.set_lr_step_gamma(kDefaultStepGamma);
      if (recipe.lr_step_rounds() < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the step schedule needs lr_step_rounds of at least 1, got ", recipe.lr_step_rounds()));
      }
      if (!(recipe.lr_step_gamma() > 0 && recipe.lr_step_gamma() <= 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("lr_step_gamma must be in (0, 1], got ", recipe.lr_step_gamma()));
      }
      // Sites refuse to train at a learning rate of 0, which gamma's power
      // reaches in floating point long before the last of many rounds.
      if (!(LearningRateForRound(*spec, spec->rounds()) >= kMinLearningRate)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the step schedule takes the learning rate below ", kMinLearningRate, " by round ",
            spec->rounds(), "; use fewer steps (lr_step_rounds) or a gamma closer to 1"));
      }
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown lr_schedule ", recipe.lr_schedule()));
  }
  if (!(recipe.weight_decay() >= 0 && recipe.weight_decay() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight_decay must be in [0, 1), got ", recipe.weight_decay()));
  }
  // Beyond 1e4 the pull towards the global model swamps any data loss.
  if (!(recipe.proximal_mu() >= 0 && recipe.proximal_mu() <= kMaxProximalMu)) {
    return absl::InvalidArgumentError(absl::StrCat("proximal_mu must be in [0, ", kMaxProximalMu,
                                                   "], got ", recipe.proximal_mu()));
  }
  switch (recipe.operating_point()) {
    case v1::OPERATING_POINT_YOUDEN:
      if (recipe.target_sensitivity() != 0) {
        return absl::InvalidArgumentError(
            "target_sensitivity is given but the operating point is Youden's J; ask for "
            "--target-sensitivity alone");
      }
      break;
    case v1::OPERATING_POINT_TARGET_SENSITIVITY:
      if (!(recipe.target_sensitivity() > 0 && recipe.target_sensitivity() < 1)) {
        return absl::InvalidArgumentError(absl::StrCat("target_sensitivity must be in (0, 1), got ",
                                                       recipe.target_sensitivity()));
      }
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown operating_point ", recipe.operating_point()));
  }
  return absl::OkStatus();
}

nlohmann::json TrainingSettingsToJson(const v1::RunSpec& spec) {
  const v1::TrainingRecipe& recipe = spec.recipe();
  const v1::Augmentation augmentation = EffectiveAugmentation(spec);
  return {{"image_size", InputImageSize(spec)},
          {"channels", InputChannels(spec)},
          {"first_frame_only", spec.first_frame_only()},
          {"augmentation",
           {{"crop_min_scale", Number(augmentation.crop_min_scale())},
            {"rotation_degrees", Number(augmentation.rotation_degrees())},
            {"horizontal_flip", augmentation.horizontal_flip()},
            {"brightness", Number(augmentation.brightness())},
            {"contrast", Number(augmentation.contrast())},
            {"shift_pixels", augmentation.shift_pixels()}}},
          {"lr_schedule", LrScheduleName(recipe.lr_schedule())},
          {"lr_step_rounds", recipe.lr_step_rounds()},
          {"lr_step_gamma", Number(recipe.lr_step_gamma())},
          {"weight_decay", Number(recipe.weight_decay())},
          {"proximal_mu", Number(recipe.proximal_mu())},
          {"operating_point", OperatingPointText(spec)}};
}

}  // namespace fedmi
