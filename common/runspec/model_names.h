// The models a run can name (RunSpec.model): the architectures sites train
// with LibTorch (client/ml builds them from these names) and "synthetic",
// the benchmark model that needs neither data nor LibTorch. The CLI
// validates `run start --model` against this list without linking LibTorch.
//
// Constants and pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_
#define FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fedmi {

inline constexpr char kCnnModel[] = "cnn";
// The CNN with GroupNorm in place of BatchNorm: each example is normalised on
// its own, so per-example gradients (DP-SGD) exist.
inline constexpr char kCnnGroupNormModel[] = "cnn-gn";
inline constexpr char kResNet18Model[] = "resnet18";
inline constexpr char kSyntheticModel[] = "synthetic";
// What a run trains when its spec names no model.
inline constexpr char kDefaultModel[] = "cnn";

// The architectures client/ml can build, in its registry order: "cnn",
// "cnn-gn", "resnet18".
std::vector<std::string> TrainableModelNames();

// Every model a run spec may name: TrainableModelNames() then "synthetic".
std::vector<std::string> RunModelNames();

// The architectures whose examples never interact in a forward pass (no
// BatchNorm), so sample-level DP-SGD can clip each example's gradient:
// "cnn-gn".
std::vector<std::string> DpCompatibleModelNames();

bool IsTrainableModel(absl::string_view name);
bool IsDpCompatibleModel(absl::string_view name);
bool IsRunModel(absl::string_view name);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_
