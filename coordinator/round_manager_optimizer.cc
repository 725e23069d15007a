// The server optimizer's step between aggregation and commit: the new model
// and state are written to the model store before the round commits them
// together, so a crash in between leaves the last committed state in force
// and the repeated step writes the same bytes (docs/strategies.md).
#include <set>

#include "common/base/status.h"
#include "common/runspec/strategy_names.h"
#include "common/runspec/transfer.h"
#include "coordinator/round_manager.h"
#include "coordinator/server_optimizer_settings.h"

namespace fedmi {

absl::StatusOr<ServerStep> RoundManager::StepServerOptimizer(const std::string& aggregate_sha256) {
  ASSIGN_OR_RETURN(const ServerOptimizerOptions options, ServerOptimizerOptionsOf(run_.spec));
  if (options.kind == ServerOptimizerKind::kFedAvg) return ServerStep{aggregate_sha256, ""};
  ASSIGN_OR_RETURN(const ServerOptimizer optimizer, ServerOptimizer::Create(options));
  // Frozen tensors keep their weights; SCAFFOLD's server control variate and
  // BatchNorm's running statistics are the means of the sites' own, not
  // steps of an optimizer.
  std::set<std::string> taken_as_aggregated;
  for (const TensorSpec& spec : model_specs_) {
    if (IsFrozenInRound(run_.spec, spec.name, round_) || IsScaffoldControl(spec.name) ||
        IsRunningStatistic(spec.name)) {
      taken_as_aggregated.insert(spec.name);
    }
  }
  return optimizer.Step(*deps_.models, global_model_sha256_, aggregate_sha256, server_state_sha256_,
                        taken_as_aggregated);
}

}  // namespace fedmi
