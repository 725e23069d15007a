#include "coordinator/run_status.h"

#include <string>

#include "common/base/names.h"
#include "common/crypto/sha256.h"

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
  for (const auto& round : rounds) {
    if (round.round == 0) continue;
    v1::RoundStatus* out = status.add_rounds();
    FillRoundStatus(round, out);
    for (const auto& part : participations) {
      if (part.round == round.round) FillParticipation(part, out->add_sites());
    }
    if (round.state == RoundState::kEvaluated) completed = round.round;
  }
  status.set_completed_rounds(completed);
  return status;
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
