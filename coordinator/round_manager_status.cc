// RoundManager's live status: the current round as the sites see it now,
// merged into what Storage holds (round_manager.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "coordinator/round_manager.h"

namespace fedmi {

void RoundManager::FillLiveStatus(v1::RunStatus* status) const {
  status->set_state(StateName(run_.state));
  status->set_error(run_.error);
  status->set_phase(RunPhaseName(phase_));
  status->set_current_round(phase_ == RunPhase::kFinished ? 0 : round_);
  if (slots_.empty()) return;
  v1::RoundStatus* live = nullptr;
  for (auto& round : *status->mutable_rounds()) {
    if (round.round() == round_) live = &round;
  }
  if (live == nullptr) {
    live = status->add_rounds();
    live->set_round(round_);
    live->set_started_at(round_started_at_);
  }
  live->set_state(secure_ == nullptr ? RunPhaseName(phase_)
                                     : absl::StrCat(RunPhaseName(phase_), " (secure aggregation: ",
                                                    SecureRound::StepName(secure_->step()), ")"));
  // Sites that left the round before this phase keep their stored record.
  auto* sites = live->mutable_sites();
  sites->erase(std::remove_if(sites->begin(), sites->end(),
                              [this](const v1::SiteParticipation& part) {
                                return slots_.count(part.site()) > 0;
                              }),
               sites->end());
  for (const auto& [site, slot] : slots_) {
    v1::SiteParticipation* part = live->add_sites();
    part->set_site(site);
    part->set_examples(slot.record.examples);
    *part->mutable_train_metrics() = slot.record.train_metrics;
    *part->mutable_eval_metrics() = slot.record.eval_metrics;
    // A site's validation scores are only ever pooled, never shown.
    part->mutable_eval_metrics()->clear_negative_score_counts();
    part->mutable_eval_metrics()->clear_positive_score_counts();
    std::string raw;
    if (HexDecode(slot.record.update_sha256, &raw)) part->set_update_sha256(raw);
    ParticipationState state = phase_ == RunPhase::kEvaluating ? ParticipationState::kEvaluating
                                                               : ParticipationState::kTraining;
    if (slot.state == SlotState::kUploaded) state = ParticipationState::kUploaded;
    if (slot.state == SlotState::kEvaluated) state = ParticipationState::kEvaluated;
    // A site that left keeps the state it left with (dropped, refused).
    if (slot.state == SlotState::kDropped) state = slot.record.state;
    part->set_state(StateName(state));
    part->set_detail(slot.record.detail);
  }
}

}  // namespace fedmi
