// RoundManager's differential-privacy budget: no round starts whose
// accounted epsilon would pass the run's target, and each committed round
// leaves a privacy.spent entry from which an auditor can recompute epsilon.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "coordinator/round_manager.h"

namespace fedmi {

bool RoundManager::FinishIfBudgetExhausted() {
  if (!HasDifferentialPrivacy(run_.spec)) return false;
  const v1::DpSettings& dp = run_.spec.dp();
  auto after = privacy::EpsilonAfterRounds(dp, round_);
  if (!after.ok()) {
    Fail(absl::StrCat("round ", round_,
                      ": cannot account for differential privacy: ", after.status().message()));
    return true;
  }
  if (after->epsilon <= dp.target_epsilon()) return false;
  const int32_t last = round_ - 1;
  Finish(RunState::kDone,
         absl::StrFormat("privacy budget exhausted: round %d would take epsilon to %s at "
                         "delta %g, past the target %g; %s",
                         round_, FormatEpsilon(after->epsilon), dp.delta(), dp.target_epsilon(),
                         last > 0 ? absl::StrCat("the model of round ", last, " is the run's last")
                                  : std::string("no round could run")));
  return true;
}

void RoundManager::AuditPrivacySpent() {
  if (!HasDifferentialPrivacy(run_.spec)) return;
  const v1::DpSettings& dp = run_.spec.dp();
  auto mechanism = privacy::RoundMechanism(dp);
  auto spent = privacy::EpsilonAfterRounds(dp, round_);
  if (!mechanism.ok() || !spent.ok()) return;  // FinishIfBudgetExhausted failed the run first
  Audit(audit::Action::kPrivacySpent, round_,
        {{"level", DpLevelName(dp.level())},
         {"noise_multiplier", dp.noise_multiplier()},
         {"clip_norm", dp.clip_norm()},
         {"sample_rate", mechanism->sample_rate},
         {"steps", mechanism->steps},
         {"rounds", round_},
         {"delta", dp.delta()},
         {"epsilon", spent->epsilon},
         {"target_epsilon", dp.target_epsilon()}});
}

}  // namespace fedmi
