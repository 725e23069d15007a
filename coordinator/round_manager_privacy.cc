// RoundManager's differential-privacy budget: no round starts whose
// accounted epsilon would pass the run's target, no site-level round commits
// whose lost noise shares would, and each committed round leaves a
// privacy.spent entry from which an auditor can recompute epsilon.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "coordinator/round_manager.h"
#include "coordinator/run_status.h"

namespace fedmi {
namespace {

// The contributor count a round is planned with: every expected site (the
// count only matters for distributed site-level noise).
int PlannedContributors(const v1::DpSettings& dp) { return std::max(1, dp.expected_sites()); }

std::string LastModel(int32_t last) {
  return last > 0 ? absl::StrCat("the model of round ", last, " is the run's last")
                  : std::string("no round could run");
}

}  // namespace

absl::StatusOr<std::vector<int>> RoundManager::CommittedContributors(int32_t through_round) {
  ASSIGN_OR_RETURN(std::vector<ParticipationRecord> participations,
                   deps_.storage->ListParticipations(run_.id));
  return ContributorsPerRound(participations, through_round);
}

privacy::NoiseSource& RoundManager::DpNoise() {
  if (deps_.dp_noise != nullptr) return *deps_.dp_noise;
  if (own_dp_noise_ == nullptr) own_dp_noise_ = privacy::MakeSecureNoiseSource();
  return *own_dp_noise_;
}

double RoundManager::RoundClipNorm() const {
  return dp_clip_norm_ > 0 ? dp_clip_norm_ : run_.spec.dp().clip_norm();
}

SiteDpSum RoundManager::SiteDpSumOfRun() {
  return SiteDpSum::ForRound(run_.spec.dp(), RoundClipNorm(), &DpNoise());
}

std::optional<RoundManager::ClipStep> RoundManager::NextClipStep() {
  const v1::DpSettings& dp = run_.spec.dp();
  if (!IsSiteLevelDp(run_.spec) || !dp.adaptive_clipping()) return std::nullopt;
  int within = 0, contributors = 0;
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SlotState::kUploaded) continue;
    ++contributors;
    within += slot.dp_within_clip;
  }
  ClipStep step;
  step.clip = RoundClipNorm();
  step.noised_fraction = privacy::NoisedWithinFraction(
      dp, within, contributors, dp.clip_count_noise_multiplier() * DpNoise().Normal());
  step.next_clip = privacy::NextClipNorm(dp, step.clip, step.noised_fraction);
  // Keep S where a double and the codec can carry it, whatever the noise.
  step.next_clip = std::clamp(step.next_clip, dp.clip_norm() * 1e-6, dp.clip_norm() * 1e6);
  return step;
}

std::optional<privacy::PrivacySpent> RoundManager::EpsilonWithThisRound(int contributors) {
  auto after = [&]() -> absl::StatusOr<privacy::PrivacySpent> {
    ASSIGN_OR_RETURN(std::vector<int> counts, CommittedContributors(round_ - 1));
    counts.push_back(contributors);
    return privacy::EpsilonOfRounds(run_.spec.dp(), counts);
  }();
  if (!after.ok()) {
    Fail(absl::StrCat("round ", round_,
                      ": cannot account for differential privacy: ", after.status().message()));
    return std::nullopt;
  }
  return *after;
}

bool RoundManager::FinishIfBudgetExhausted() {
  if (!HasDifferentialPrivacy(run_.spec)) return false;
  const v1::DpSettings& dp = run_.spec.dp();
  const std::optional<privacy::PrivacySpent> after = EpsilonWithThisRound(PlannedContributors(dp));
  if (!after) return true;
  if (after->epsilon <= dp.target_epsilon()) return false;
  Finish(RunState::kDone,
         absl::StrFormat("privacy budget exhausted: round %d would take epsilon to %s at "
                         "delta %g, past the target %g; %s",
                         round_, FormatEpsilon(after->epsilon), dp.delta(), dp.target_epsilon(),
                         LastModel(round_ - 1)));
  return true;
}

bool RoundManager::FinishIfRoundOverBudget() {
  const v1::DpSettings& dp = run_.spec.dp();
  const int contributors = CountInState(SlotState::kUploaded);
  if (contributors >= DistributedNoiseShares(dp)) return false;  // also without shares
  const std::optional<privacy::PrivacySpent> after = EpsilonWithThisRound(contributors);
  if (!after) return true;
  if (after->epsilon <= dp.target_epsilon()) return false;
  // The aggregate holds too little noise to release: it is not committed.
  Finish(
      RunState::kDone,
      absl::StrFormat(
          "privacy budget exhausted: only %d of the %d expected sites' noise shares reached "
          "round %d's sum (noise multiplier %.4g instead of %.4g), which would take epsilon "
          "to %s at delta %g, past the target %g; the round is not committed and %s",
          contributors, dp.expected_sites(), round_,
          privacy::RoundNoiseMultiplier(dp, contributors), dp.noise_multiplier(),
          FormatEpsilon(after->epsilon), dp.delta(), dp.target_epsilon(), LastModel(round_ - 1)));
  return true;
}

void RoundManager::AuditPrivacySpent(const std::optional<ClipStep>& clip_step) {
  if (!HasDifferentialPrivacy(run_.spec)) return;
  const v1::DpSettings& dp = run_.spec.dp();
  auto mechanism = privacy::RoundMechanism(dp);
  auto contributors = CommittedContributors(round_);  // committed just now
  if (!mechanism.ok() || !contributors.ok() || contributors->empty()) return;
  auto spent = privacy::EpsilonOfRounds(dp, *contributors);
  if (!spent.ok()) return;  // FinishIfBudgetExhausted failed the run first
  nlohmann::json detail = {{"level", DpLevelName(dp.level())},
                           {"noise_multiplier", dp.noise_multiplier()},
                           {"clip_norm", clip_step ? clip_step->clip : dp.clip_norm()},
                           {"sample_rate", mechanism->sample_rate},
                           {"steps", mechanism->steps},
                           {"rounds", round_},
                           {"delta", dp.delta()},
                           {"epsilon", spent->epsilon},
                           {"target_epsilon", dp.target_epsilon()}};
  if (IsSiteLevelDp(run_.spec)) {
    const int sites = contributors->back();
    detail["noise_placement"] = DpNoisePlacementName(dp.noise_placement());
    detail["expected_sites"] = dp.expected_sites();
    detail["contributing_sites"] = sites;
    detail["round_noise_multiplier"] = privacy::RoundNoiseMultiplier(dp, sites);
  }
  if (clip_step) {
    detail["update_noise_multiplier"] = privacy::UpdateNoiseMultiplier(dp);
    detail["clip_count_noise_multiplier"] = dp.clip_count_noise_multiplier();
    detail["noised_within_fraction"] = clip_step->noised_fraction;
    detail["next_clip_norm"] = clip_step->next_clip;
  }
  Audit(audit::Action::kPrivacySpent, round_, detail);
}

}  // namespace fedmi
