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
inline constexpr char kResNet18Model[] = "resnet18";
inline constexpr char kSyntheticModel[] = "synthetic";
// What a run trains when its spec names no model.
inline constexpr char kDefaultModel[] = "cnn";

// The architectures client/ml can build, in its registry order: "cnn",
// "resnet18".
std::vector<std::string> TrainableModelNames();

// Every model a run spec may name: TrainableModelNames() then "synthetic".
std::vector<std::string> RunModelNames();

bool IsTrainableModel(absl::string_view name);
bool IsRunModel(absl::string_view name);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_MODEL_NAMES_H_
