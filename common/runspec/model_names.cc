#include "common/runspec/model_names.h"

#include <algorithm>

namespace fedmi {
namespace {

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> TrainableModelNames() {
  return {kCnnModel, kCnnGroupNormModel, kResNet18Model};
}

std::vector<std::string> DpCompatibleModelNames() { return {kCnnGroupNormModel}; }

std::vector<std::string> RunModelNames() {
  std::vector<std::string> names = TrainableModelNames();
  names.push_back(kSyntheticModel);
  return names;
}

bool IsTrainableModel(absl::string_view name) { return Contains(TrainableModelNames(), name); }

bool IsDpCompatibleModel(absl::string_view name) {
  return Contains(DpCompatibleModelNames(), name);
}

bool IsRunModel(absl::string_view name) { return Contains(RunModelNames(), name); }

}  // namespace fedmi
