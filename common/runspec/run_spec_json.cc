#include "common/runspec/run_spec_json.h"

#include <cmath>

#include "common/runspec/dp_spec.h"
#include "common/runspec/training_recipe.h"

namespace fedmi {
namespace {

nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json RunSpecToJson(const v1::RunSpec& spec) {
  return {{"model", spec.model()},
          {"strategy", spec.strategy()},
          {"rounds", spec.rounds()},
          {"min_sites", spec.min_sites()},
          {"max_sites", spec.max_sites()},
          {"local_epochs", spec.local_epochs()},
          {"batch_size", spec.batch_size()},
          {"lr", Number(spec.lr())},
          {"optimizer", spec.optimizer()},
          {"seed", spec.seed()},
          {"num_classes", spec.num_classes()},
          {"synthetic_params", spec.synthetic_params()},
          {"round_timeout_s", Number(spec.round_timeout_s())},
          {"max_round_retries", spec.max_round_retries()},
          {"secure_aggregation", spec.secure_aggregation()},
          {"secagg",
           {{"threshold", spec.secagg().threshold()},
            {"neighbours", spec.secagg().neighbours()},
            {"clip", Number(spec.secagg().clip())},
            {"max_examples", spec.secagg().max_examples()}}},
          {"dp", DpSettingsToJson(spec.dp())},
          {"training", TrainingSettingsToJson(spec)}};
}

}  // namespace fedmi
