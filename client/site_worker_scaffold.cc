// SiteWorker's side of SCAFFOLD (client/scaffold.h): reading the round's
// control variates before training and saving the new one after it.
#include "client/site_worker.h"
#include "common/base/log.h"
#include "common/base/status.h"

namespace fedmi {

absl::StatusOr<SiteWorker::ScaffoldRound> SiteWorker::BeginScaffoldRound(
    int64_t run_id, int32_t round, const v1::RunSpec& spec, const TensorBundle& global) {
  ScaffoldRound scaffold;
  scaffold.spec_sha256 = RunSpecSha256Hex(spec);
  scaffold.units = spec.lr();
  ASSIGN_OR_RETURN(scaffold.global, SplitScaffoldGlobal(global));
  // The bundle carries c in weight units (client/scaffold.h).
  scaffold.global.server_control =
      ScaledControls(scaffold.global.server_control, 1.0 / scaffold.units);
  ASSIGN_OR_RETURN(std::optional<TensorBundle> saved,
                   scaffold_controls_.Before(run_id, scaffold.spec_sha256, round));
  if (saved.has_value()) {
    scaffold.client_control = *std::move(saved);
  } else {
    // This site's first round of the run: c_i = 0.
    scaffold.client_control = scaffold.global.server_control;
    std::fill(scaffold.client_control.body.begin(), scaffold.client_control.body.end(), 0);
  }
  ASSIGN_OR_RETURN(scaffold.offset,
                   ControlOffset(scaffold.global.server_control, scaffold.client_control));
  return scaffold;
}

absl::StatusOr<TensorBundle> SiteWorker::FinishScaffoldRound(int64_t run_id, int32_t round,
                                                             const ScaffoldRound& scaffold,
                                                             double lr, int64_t steps,
                                                             const TensorBundle& trained) {
  ASSIGN_OR_RETURN(TensorBundle next,
                   NextClientControl(scaffold.client_control, scaffold.global.server_control,
                                     scaffold.global.weights, trained, steps, lr));
  // Saved before the update leaves: a repeat of this round reads the
  // variate of the round before, so it sends the same update again.
  RETURN_IF_ERROR(scaffold_controls_.Save(run_id, scaffold.spec_sha256, round, next));
  FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": SCAFFOLD control variate "
                  << "updated over " << steps << " steps";
  return WithScaffoldControls(trained, ScaledControls(next, scaffold.units));
}

}  // namespace fedmi
