#include "coordinator/run_status.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"

namespace fedmi {
namespace {

void FillRoundStatus(const RoundRecord& round, v1::RoundStatus* out) {
  out->set_round(round.round);
  out->set_state(StateName(round.state));
  *out->mutable_eval_metrics() = round.eval_metrics;
  std::string raw;
  if (HexDecode(round.model_sha256, &raw)) out->set_model_sha256(raw);
  out->set_started_at(round.started_at);
  out->set_finished_at(round.finished_at);
}

void FillParticipation(const ParticipationRecord& record, v1::SiteParticipation* out) {
  out->set_site(record.site);
  out->set_examples(record.examples);
  *out->mutable_train_metrics() = record.train_metrics;
  *out->mutable_eval_metrics() = record.eval_metrics;
  std::string raw;
  if (HexDecode(record.update_sha256, &raw)) out->set_update_sha256(raw);
  out->set_state(StateName(record.state));
  out->set_detail(record.detail);
}

// A site whose update reached the round's sum: uploaded (and maybe then
// evaluated). A site that only evaluated the round, or whose dropped or
// refused record an evaluation overwrote, never sent an update, so it has no
// update hash.
bool CountsForPrivacy(const ParticipationRecord& part) {
  return (part.state == ParticipationState::kUploaded ||
          part.state == ParticipationState::kEvaluated) &&
         !part.update_sha256.empty();
}

// +inf when the settings cannot be accounted (a stored spec from before
// they were completed), so nothing reads as free.
double EpsilonOf(const v1::DpSettings& dp, const std::vector<int>& contributors) {
  auto spent = privacy::EpsilonOfRounds(dp, contributors);
  return spent.ok() ? spent->epsilon : std::numeric_limits<double>::infinity();
}

void FillPrivacyBudget(const v1::RunSpec& spec, int32_t committed_rounds,
                       const std::vector<ParticipationRecord>& participations,
                       v1::PrivacyBudget* out) {
  const v1::DpSettings& dp = spec.dp();
  std::vector<int> contributors = ContributorsPerRound(participations, committed_rounds);
  out->set_target_epsilon(dp.target_epsilon());
  out->set_delta(dp.delta());
  out->set_rounds_accounted(committed_rounds);
  out->set_epsilon_spent(EpsilonOf(dp, contributors));
  contributors.push_back(std::max(1, dp.expected_sites()));  // the next round, as planned
  out->set_exhausted(EpsilonOf(dp, contributors) > dp.target_epsilon());
  if (dp.level() != v1::DP_LEVEL_SAMPLE) return;
  // Sites mostly share a round count; each count is accounted once.
  std::map<int64_t, double> epsilon_after;
  auto epsilon = [&](int64_t rounds) {
    auto [it, added] = epsilon_after.emplace(rounds, 0.0);
    if (added) {
      auto spent = privacy::EpsilonAfterRounds(dp, rounds);
      it->second = spent.ok() ? spent->epsilon : std::numeric_limits<double>::infinity();
    }
    return it->second;
  };
  std::map<std::string, std::set<int32_t>> rounds_by_site;
  for (const auto& part : participations) {
    if (part.round > 0 && part.round <= committed_rounds && CountsForPrivacy(part)) {
      rounds_by_site[part.site].insert(part.round);
    }
  }
  for (const auto& [site, rounds] : rounds_by_site) {
    v1::SitePrivacy* entry = out->add_sites();
    entry->set_site(site);
    entry->set_rounds(static_cast<int32_t>(rounds.size()));
    entry->set_epsilon(epsilon(static_cast<int64_t>(rounds.size())));
  }
}

}  // namespace

v1::RunStatus StoredRunStatus(const RunRecord& run, const std::vector<RoundRecord>& rounds,
                              const std::vector<ParticipationRecord>& participations) {
  v1::RunStatus status;
  status.set_run_id(run.id);
  *status.mutable_spec() = run.spec;
  status.set_state(StateName(run.state));
  status.set_error(run.error);
  // A live run overwrites the phase; a stored one is either waiting or over.
  status.set_phase(run.state == RunState::kPending ? "waiting-for-sites" : "finished");
  status.set_created_at(run.created_at);
  std::string raw;
  if (HexDecode(run.spec_sha256, &raw)) status.set_spec_sha256(raw);
  int32_t completed = 0;
  int32_t committed = 0;
  for (const auto& round : rounds) {
    if (round.round == 0) continue;
    committed = std::max(committed, round.round);
    v1::RoundStatus* out = status.add_rounds();
    FillRoundStatus(round, out);
    for (const auto& part : participations) {
      if (part.round == round.round) FillParticipation(part, out->add_sites());
    }
    if (round.state == RoundState::kEvaluated) completed = round.round;
  }
  status.set_completed_rounds(completed);
  if (HasDifferentialPrivacy(run.spec)) {
    FillPrivacyBudget(run.spec, committed, participations, status.mutable_privacy());
  }
  return status;
}

std::vector<int> ContributorsPerRound(const std::vector<ParticipationRecord>& participations,
                                      int32_t committed_rounds) {
  std::vector<int> contributors(static_cast<size_t>(std::max(0, committed_rounds)), 0);
  for (const auto& part : participations) {
    if (part.round > 0 && part.round <= committed_rounds && CountsForPrivacy(part)) {
      ++contributors[static_cast<size_t>(part.round - 1)];
    }
  }
  return contributors;
}

v1::SiteInfo SiteInfoOf(const SiteRecord& record, bool connected) {
  v1::SiteInfo info;
  info.set_site(record.name);
  info.set_connected(connected);
  info.set_last_seen(record.last_seen);
  info.set_train_examples(record.train_examples);
  info.set_val_examples(record.val_examples);
  info.set_registered_at(record.registered_at);
  info.set_state(StateName(record.revoked() ? SiteState::kRevoked : SiteState::kActive));
  info.set_certificate_expires(record.certificate_expires);
  info.set_revoked_by(record.revoked_by);
  info.set_revoked_at(record.revoked_at);
  info.set_revocation_reason(record.revocation_reason);
  return info;
}

v1::Revocation RevocationOf(const RevocationRecord& record) {
  v1::Revocation revocation;
  revocation.set_name(record.name);
  revocation.set_role(PartyRoleName(record.role));
  revocation.set_revoked_at(record.revoked_at);
  revocation.set_revoked_by(record.revoked_by);
  revocation.set_reason(record.reason);
  return revocation;
}

}  // namespace fedmi
