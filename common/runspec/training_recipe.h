// What a run spec asks of a site's local training beyond the optimizer: the
// input geometry, augmentation, the learning rate of each round, and how
// the operating threshold is chosen. Sites and the coordinator read these
// through one set of functions, so that a spec stored before a field existed
// means the same everywhere.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_TRAINING_RECIPE_H_
#define FEDMI_COMMON_RUNSPEC_TRAINING_RECIPE_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/evaluation/operating_threshold.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// The image sides `fedmi` offers on its command lines. Specs may hold any
// side in [kMinImageSize, kMaxImageSize]; an architecture may need more
// (ResNet-18: 32).
inline constexpr int32_t kDefaultImageSize = 28;
inline constexpr int32_t kMinImageSize = 8;
inline constexpr int32_t kMaxImageSize = 1024;

// The spec's image side and channel count, 0 read as 28 and 1.
int32_t InputImageSize(const v1::RunSpec& spec);
int32_t InputChannels(const v1::RunSpec& spec);

// The spec's augmentation; absent: the random shift of up to 2 pixels that
// runs had before augmentation was configurable.
v1::Augmentation EffectiveAugmentation(const v1::RunSpec& spec);
// Augmentations `fedmi` names on its command lines: "none"; "shift" (the
// default above); "standard": random resized crop of at least 85% of the
// area, rotation up to 10 degrees, brightness and contrast jitter of 10%, and
// the 2-pixel shift, no flip. InvalidArgument for other names.
absl::StatusOr<v1::Augmentation> NamedAugmentation(const std::string& name);

// "constant", "cosine", "step"; "unknown" for other values. Parse: the
// inverse, InvalidArgument for other names.
const char* LrScheduleName(v1::LrSchedule schedule);
absl::StatusOr<v1::LrSchedule> ParseLrSchedule(const std::string& name);

// The learning rate of round `round` (1-based) under the spec's schedule.
double LearningRateForRound(const v1::RunSpec& spec, int32_t round);

// The rule the spec's operating point names, and its text ("youden",
// "sensitivity>=0.95") as model files and reports give it.
ThresholdRule ThresholdRuleOf(const v1::RunSpec& spec);
std::string OperatingPointText(const v1::RunSpec& spec);

// Fills the recipe's defaults (image size and channels written out, step
// schedule gamma 0.1) and refuses what no site could run: an image side
// outside [8, 1024], channels other than 1 or 3, negative or non-finite
// augmentation strengths (crop_min_scale in (0, 1], rotation up to 180,
// brightness and contrast below 1, shift up to a quarter of the image),
// a step schedule without step rounds, gamma outside (0, 1], weight decay
// outside [0, 1), a target sensitivity outside (0, 1) or one given
// without that operating point. Each error names the field.
absl::Status CompleteTrainingRecipe(v1::RunSpec* spec);

// image_size, channels, first_frame_only and the recipe, by proto names.
nlohmann::json TrainingSettingsToJson(const v1::RunSpec& spec);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_TRAINING_RECIPE_H_
