#include "coordinator/round_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/training_recipe.h"
#include "coordinator/evaluation_summary.h"
#include "coordinator/site_selection.h"
#include "coordinator/strategy_settings.h"

namespace fedmi {
namespace {

// The strategy's decisions about sites, in the round's audit entry: whose
// update Krum left out, and each site's change norm against the bound with
// those it scaled down.
void AddSiteDecisions(const SiteDecisions& decisions, const std::string& where,
                      nlohmann::json& aggregated) {
  if (!decisions.left_out.empty()) aggregated["left_out"] = decisions.left_out;
  if (decisions.change_norms.empty()) return;
  nlohmann::json norms = nlohmann::json::object();
  for (const auto& [site, norm] : decisions.change_norms) norms[site] = norm;
  const nlohmann::json scaled_down = decisions.scaled_down;
  aggregated["norm_bound"] = decisions.norm_bound;
  aggregated["change_norms"] = norms;
  aggregated["scaled_down"] = scaled_down;
  FEDMI_LOG(INFO) << where << ": norm bound " << decisions.norm_bound << ": change norms "
                  << norms.dump() << ", scaled down " << scaled_down.dump();
}

}  // namespace

const char* RunPhaseName(RunPhase phase) {
  static constexpr EnumName<RunPhase> kPhaseNames[] = {
      {RunPhase::kWaitingForSites, "waiting-for-sites"},
      {RunPhase::kInitializing, "initializing"},
      {RunPhase::kTraining, "training"},
      {RunPhase::kEvaluating, "evaluating"},
      {RunPhase::kFinished, "finished"},
  };
  return NameOf(kPhaseNames, phase);
}

RoundManager::RoundManager(RunRecord run, Deps deps) : run_(std::move(run)), deps_(deps) {}

absl::StatusOr<std::unique_ptr<RoundManager>> RoundManager::Load(int64_t run_id, Deps deps) {
  ASSIGN_OR_RETURN(RunRecord run, deps.storage->GetRun(run_id));
  std::unique_ptr<RoundManager> manager(new RoundManager(std::move(run), deps));
  RETURN_IF_ERROR(manager->Resume());
  return manager;
}

absl::Status RoundManager::Resume() {
  if (IsTerminal(run_.state)) {
    phase_ = RunPhase::kFinished;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, deps_.storage->ListRounds(run_.id));
  if (!rounds.empty()) {
    const RoundRecord& last = rounds.back();
    global_model_sha256_ = last.model_sha256;
    dp_clip_norm_ = last.dp_next_clip_norm;  // 0 (the spec's) unless adaptive
    server_state_sha256_ = last.server_state_sha256;
    ASSIGN_OR_RETURN(model_specs_, LoadModelSpecs(last.model_sha256));
    if (last.round > 0 && last.state != RoundState::kEvaluated) {
      round_ = last.round;
      evaluation_pending_ = true;
    } else {
      round_ = last.round + 1;
    }
    if (round_ > run_.spec.rounds()) {
      Finish(RunState::kDone, "");
      return absl::OkStatus();
    }
  }
  if (run_.state != RunState::kRunning) {
    RETURN_IF_ERROR(deps_.storage->SetRunState(run_.id, RunState::kRunning, "", 0));
    run_.state = RunState::kRunning;
  }
  phase_ = RunPhase::kWaitingForSites;
  OnSitesChanged();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TensorSpec>> RoundManager::LoadModelSpecs(
    const std::string& sha256_hex) {
  ASSIGN_OR_RETURN(std::string path, deps_.models->PathFor(sha256_hex));
  ASSIGN_OR_RETURN(auto reader, BundleFileReader::Open(path));
  return reader->specs();
}

int RoundManager::CountInState(SlotState state) const {
  int count = 0;
  for (const auto& [site, slot] : slots_) count += slot.state == state;
  return count;
}

std::vector<std::string> RoundManager::SitesInState(SlotState state) const {
  std::vector<std::string> sites;
  for (const auto& [site, slot] : slots_) {
    if (slot.state == state) sites.push_back(site);
  }
  return sites;
}

void RoundManager::OnSitesChanged() {
  if (phase_ != RunPhase::kWaitingForSites) return;
  const auto connected = deps_.roster->ConnectedSites();
  if (static_cast<int>(connected.size()) < run_.spec.min_sites()) return;
  if (round_ == 0) {
    StartInitialization();
  } else if (evaluation_pending_) {
    StartEvaluation();
  } else {
    StartRound();
  }
}

void RoundManager::StartInitialization() {
  const auto connected = deps_.roster->ConnectedSites();
  if (connected.empty()) return;
  init_site_ = connected.front();
  v1::CoordinatorMessage message;
  message.mutable_init()->set_run_id(run_.id);
  *message.mutable_init()->mutable_spec() = run_.spec;
  if (!deps_.roster->Send(init_site_, message)) return;
  phase_ = RunPhase::kInitializing;
  round_started_at_ = deps_.clock->NowUnixSeconds();
  phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
}

int RoundManager::RoundQuorum() const {
  // Distributed DP noise: every share it is sized for must be admitted, or
  // the sum would start short of noise (sites refuse such an admission).
  return std::max(run_.spec.min_sites(), DistributedNoiseShares(run_.spec.dp()));
}

void RoundManager::StartRound() {
  if (FinishIfBudgetExhausted()) return;
  std::vector<std::string> sites = SelectRoundSites(
      deps_.roster->ConnectedSites(), run_.spec.max_sites(), run_.spec.seed(), round_);
  if (static_cast<int>(sites.size()) < RoundQuorum()) {
    phase_ = RunPhase::kWaitingForSites;
    return;
  }
  if (absl::Status prepared = PrepareRoundTensors(); !prepared.ok()) {
    return Fail(absl::StrCat("round ", round_, ": ", prepared.message()));
  }
  v1::RoundAdmission admission;
  if (run_.spec.secure_aggregation()) {
    auto begun = BeginSecureRound(sites);
    if (!begun.ok()) {
      return FailRound(absl::StrCat(
          "round ", round_, ": secure aggregation cannot start: ", begun.status().message()));
    }
    admission = *std::move(begun);
  } else {
    // The round's global model: site-level DP and norm_bounded measure each
    // change against it.
    auto global = deps_.models->PathFor(round_global_sha256_);
    if (!global.ok()) return Fail(std::string(global.status().message()));
    if (IsSiteLevelDp(run_.spec)) {
      aggregator_ = MakeSiteDpAggregator(SiteDpSumOfRun(), *std::move(global));
    } else {
      auto aggregator =
          MakeAggregator(run_.spec.strategy(), AggregatorOptionsOf(run_.spec, *std::move(global)));
      if (!aggregator.ok()) return Fail(std::string(aggregator.status().message()));
      aggregator_ = *std::move(aggregator);
    }
    if (absl::Status status = aggregator_->Begin(round_, round_specs_); !status.ok()) {
      return Fail(std::string(status.message()));
    }
  }
  slots_.clear();
  for (const std::string& site : sites) {
    v1::CoordinatorMessage message;
    v1::TrainTask* task = message.mutable_train();
    task->set_run_id(run_.id);
    task->set_round(round_);
    *task->mutable_spec() = run_.spec;
    task->mutable_base()->set_run_id(run_.id);
    task->mutable_base()->set_round(round_ - 1);
    if (run_.spec.secure_aggregation()) {
      *task->mutable_secagg() = admission.params();
      *task->mutable_admission() = admission;
    }
    if (run_.spec.dp().adaptive_clipping()) task->set_dp_clip_norm(RoundClipNorm());
    if (auto head = AuditHead()) *task->mutable_audit_head() = *std::move(head);
    if (!deps_.roster->Send(site, message)) continue;
    SiteSlot& slot = slots_[site];
    slot.record.run_id = run_.id;
    slot.record.round = round_;
    slot.record.site = site;
  }
  phase_ = RunPhase::kTraining;
  round_started_at_ = deps_.clock->NowUnixSeconds();
  phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  nlohmann::json selected = nlohmann::json::array();
  for (const auto& [site, slot] : slots_) selected.push_back(site);
  nlohmann::json opened = {{"sites", selected},
                           {"secure_aggregation", run_.spec.secure_aggregation()}};
  if (run_.spec.secure_aggregation()) {
    const v1::SecAggParams& params = admission.params();
    opened["secagg"] = {{"attempt", admission.attempt()},
                        {"nonce", HexEncode(admission.nonce())},
                        {"threshold", params.threshold()},
                        {"neighbours", params.neighbours()},
                        {"admitted", admission.sites_size()}};
  }
  Audit(audit::Action::kRoundOpened, round_, opened);
  MaybeFinishTraining();
}

void RoundManager::StartEvaluation() {
  evaluation_pending_ = false;
  std::map<std::string, SiteSlot> trained = std::move(slots_);
  slots_.clear();
  for (const std::string& site : deps_.roster->ConnectedSites()) {
    v1::CoordinatorMessage message;
    v1::EvalTask* task = message.mutable_eval();
    task->set_run_id(run_.id);
    task->set_round(round_);
    *task->mutable_spec() = run_.spec;
    task->mutable_model()->set_run_id(run_.id);
    task->mutable_model()->set_round(round_);
    if (auto head = AuditHead()) *task->mutable_audit_head() = *std::move(head);
    if (!deps_.roster->Send(site, message)) continue;
    SiteSlot slot;
    auto it = trained.find(site);
    if (it != trained.end()) slot.record = it->second.record;
    slot.record.run_id = run_.id;
    slot.record.round = round_;
    slot.record.site = site;
    slot.state = SlotState::kAssigned;
    slots_[site] = slot;
  }
  phase_ = RunPhase::kEvaluating;
  phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  MaybeFinishEvaluation();
}

absl::Status RoundManager::CheckQuorum() const {
  const int uploaded = CountInState(SlotState::kUploaded);
  const int pending = CountInState(SlotState::kAssigned);
  const int required = std::max(1, run_.spec.min_sites());
  if (uploaded + pending >= required) return absl::OkStatus();
  // Name every site that dropped out, so the reason (often a site's policy
  // refusal) reaches the administrator with the failure.
  std::string dropped;
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SlotState::kDropped) continue;
    absl::StrAppend(&dropped, dropped.empty() ? "" : "; ", site, " ", StateName(slot.record.state),
                    ": ", slot.record.detail);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("round ", round_, ": at most ", uploaded + pending, " of the ", required,
                   " required sites can return an update",
                   dropped.empty() ? "" : absl::StrCat(" (", dropped, ")")));
}

void RoundManager::MaybeFinishTraining() {
  if (phase_ != RunPhase::kTraining) return;
  if (secure_ != nullptr) return AdvanceSecureRound();
  // Fail as soon as the quorum is out of reach rather than after the
  // remaining sites have trained for nothing.
  if (absl::Status quorum = CheckQuorum(); !quorum.ok()) {
    return FailRound(std::string(quorum.message()));
  }
  if (CountInState(SlotState::kAssigned) > 0) return;
  if (absl::Status status = FinishTraining(); !status.ok()) {
    Fail(absl::StrCat("round ", round_, ": ", status.message()));
  }
}

absl::Status RoundManager::FinishTraining() {
  PhaseTimer timer(deps_.phases, UpdatePhase::kCommit);
  ASSIGN_OR_RETURN(std::string trained_sha, aggregator_->Finish(*deps_.models));
  site_decisions_ = aggregator_->decisions();
  aggregator_.reset();
  ASSIGN_OR_RETURN(std::string model_sha, CompleteRoundModel(trained_sha));
  return CommitTrainedRound(model_sha);
}

absl::Status RoundManager::CommitTrainedRound(const std::string& aggregate_sha) {
  if (FinishIfRoundOverBudget()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ServerStep step, StepServerOptimizer(aggregate_sha));
  const std::string& model_sha = step.model_sha256;
  // The new model file is written; the round is not yet committed.
  deps_.faults->Reached(FaultPoint::kCoordinatorCommit, round_);
  const std::optional<ClipStep> clip_step = NextClipStep();
  RoundCommit commit;
  if (clip_step) commit.round.dp_next_clip_norm = clip_step->next_clip;
  commit.round.run_id = run_.id;
  commit.round.round = round_;
  commit.round.model_sha256 = model_sha;
  commit.round.server_state_sha256 = step.state_sha256;
  commit.round.state = RoundState::kCommitted;
  commit.round.started_at = round_started_at_;
  commit.round.finished_at = deps_.clock->NowUnixSeconds();
  nlohmann::json uploaded = nlohmann::json::array();
  for (auto& [site, slot] : slots_) {
    if (slot.state == SlotState::kUploaded || slot.state == SlotState::kDropped) {
      commit.participations.push_back(slot.record);
    }
    if (slot.state == SlotState::kUploaded) uploaded.push_back(site);
  }
  RETURN_IF_ERROR(deps_.storage->CommitRound(commit));
  nlohmann::json aggregated = {{"model_sha256", model_sha},
                               {"sites", uploaded},
                               {"secure_aggregation", run_.spec.secure_aggregation()}};
  if (!step.state_sha256.empty()) {
    aggregated["aggregate_sha256"] = aggregate_sha;
    aggregated["server_optimizer"] = run_.spec.server_optimizer().kind();
    aggregated["server_state_sha256"] = step.state_sha256;
  }
  AddSiteDecisions(site_decisions_, absl::StrCat("run ", run_.id, " round ", round_), aggregated);
  site_decisions_ = SiteDecisions();
  Audit(audit::Action::kRoundAggregated, round_, aggregated);
  AuditPrivacySpent(clip_step);
  if (clip_step) dp_clip_norm_ = clip_step->next_clip;
  server_state_sha256_ = step.state_sha256;
  global_model_sha256_ = model_sha;
  StartEvaluation();
  return absl::OkStatus();
}

absl::Status RoundManager::OnEvalReport(const std::string& site, const v1::EvalReport& report) {
  if (phase_ != RunPhase::kEvaluating || report.round() != round_) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_.id, " is not evaluating round ", report.round()));
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SlotState::kAssigned) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site '", site, "' has no open evaluation for round ", round_, " of run ", run_.id));
  }
  it->second.state = SlotState::kEvaluated;
  it->second.record.eval_metrics = report.metrics();
  deps_.faults->Reached(FaultPoint::kCoordinatorEvaluation, round_);
  // A site that refused or dropped out of training keeps that state.
  if (it->second.record.state == ParticipationState::kUploaded) {
    it->second.record.state = ParticipationState::kEvaluated;
  }
  MaybeFinishEvaluation();
  return absl::OkStatus();
}

void RoundManager::MaybeFinishEvaluation() {
  if (phase_ != RunPhase::kEvaluating || CountInState(SlotState::kAssigned) > 0) return;
  std::vector<v1::Metrics> reports;
  std::vector<ParticipationRecord> per_site;
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SlotState::kEvaluated) continue;
    reports.push_back(slot.record.eval_metrics);
    per_site.push_back(slot.record);
    // Only the pooled threshold is kept, not what each site's scores were.
    per_site.back().eval_metrics.clear_negative_score_counts();
    per_site.back().eval_metrics.clear_positive_score_counts();
  }
  int ignored_histograms = 0;
  const v1::Metrics mean =
      PooledEvaluation(reports, ThresholdRuleOf(run_.spec), &ignored_histograms);
  if (ignored_histograms > 0) {
    FEDMI_LOG(WARNING) << "run " << run_.id << " round " << round_ << ": " << ignored_histograms
                       << " site(s) sent validation score histograms or segmentation counts "
                          "that do not fit; the pooled metrics were computed without them";
  }
  absl::Status status = deps_.storage->RecordEvaluation(run_.id, round_, mean, per_site,
                                                        deps_.clock->NowUnixSeconds());
  if (!status.ok()) {
    return Fail(absl::StrCat("round ", round_, ": cannot store evaluation: ", status.message()));
  }
  nlohmann::json evaluated = nlohmann::json::array();
  for (const auto& record : per_site) evaluated.push_back(record.site);
  Audit(audit::Action::kRoundEvaluated, round_,
        {{"sites", evaluated}, {"metrics", MetricsJson(mean)}});
  slots_.clear();
  deps_.faults->Reached(FaultPoint::kCoordinatorBetweenRounds, round_);
  if (round_ >= run_.spec.rounds()) return Finish(RunState::kDone, "");
  ++round_;
  round_retries_used_ = 0;
  if (FinishIfBudgetExhausted()) return;
  phase_ = RunPhase::kWaitingForSites;
  OnSitesChanged();
}

void RoundManager::OnSiteDisconnected(const std::string& site, const std::string& reason) {
  if (phase_ == RunPhase::kInitializing && site == init_site_) {
    // Another site can build the same initial model from the same seed.
    phase_ = RunPhase::kWaitingForSites;
    OnSitesChanged();
    return;
  }
  OnSiteGaveUp(site, reason, /*refused=*/false);
}

void RoundManager::OnSiteReport(const std::string& site, int32_t round, const std::string& reason,
                                bool refused) {
  const bool about_init = phase_ == RunPhase::kInitializing && round == 0;
  const bool about_round =
      (phase_ == RunPhase::kTraining || phase_ == RunPhase::kEvaluating) && round == round_;
  if (!about_init && !about_round) return;
  OnSiteGaveUp(site, reason, refused);
}

void RoundManager::OnSiteGaveUp(const std::string& site, const std::string& reason, bool refused) {
  if (phase_ == RunPhase::kInitializing && site == init_site_) {
    return Fail(absl::StrCat("site '", site, "' could not build the initial model (",
                             refused ? "refused" : "failed", "): ", reason));
  }
  if (secure_ != nullptr && secure_->StopAwaiting(site)) {
    // Its masked update is in the sum; the other survivors' shares can
    // still unmask it.
    return AdvanceSecureRound();
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SlotState::kAssigned) return;
  it->second.state = SlotState::kDropped;
  it->second.record.state = refused ? ParticipationState::kRefused : ParticipationState::kDropped;
  it->second.record.detail = reason;
  Audit(refused ? audit::Action::kSiteRefusedTask : audit::Action::kSiteDropped, round_,
        {{"site", site}, {"reason", reason}, {"phase", RunPhaseName(phase_)}});
  if (phase_ == RunPhase::kTraining) {
    MaybeFinishTraining();
  } else if (phase_ == RunPhase::kEvaluating) {
    MaybeFinishEvaluation();
  }
}

void RoundManager::OnTick() {
  const bool secure_training = phase_ == RunPhase::kTraining && secure_ != nullptr;
  if (deps_.clock->Now() < (secure_training ? secure_->deadline() : phase_deadline_)) return;
  switch (phase_) {
    case RunPhase::kInitializing:
      return Fail(absl::StrCat("site '", init_site_, "' did not send the initial model within ",
                               run_.spec.round_timeout_s(), " s"));
    case RunPhase::kTraining:
    case RunPhase::kEvaluating: {
      std::vector<std::string> late = SitesInState(SlotState::kAssigned);
      if (secure_training) {
        if (secure_->step() == SecureRound::Step::kCheckingSurvivors ||
            secure_->step() == SecureRound::Step::kUnmasking) {
          // Go on with the signatures or shares that did arrive, if they
          // are enough.
          secure_->StopAwaitingAll();
          return AdvanceSecureRound();
        }
        late = secure_->Pending(late);
      }
      for (const auto& site : late) {
        OnSiteGaveUp(site, absl::StrCat("timed out after ", run_.spec.round_timeout_s(), " s"),
                     false);
      }
      return;
    }
    default:
      return;
  }
}

absl::Status RoundManager::Abort(const std::string& reason) {
  if (phase_ == RunPhase::kFinished) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_.id, " already finished (", StateName(run_.state), ")"));
  }
  Finish(RunState::kAborted, reason.empty() ? "aborted by an administrator" : reason);
  return absl::OkStatus();
}

void RoundManager::Fail(const std::string& reason) { Finish(RunState::kFailed, reason); }

void RoundManager::FailRound(const std::string& reason) {
  if (round_retries_used_ >= run_.spec.max_round_retries()) return Fail(reason);
  ++round_retries_used_;
  Audit(audit::Action::kRoundFailed, round_, {{"reason", reason}, {"retry", round_retries_used_}});
  FEDMI_LOG(WARNING) << "run " << run_.id << ": " << reason << "; starting round " << round_
                     << " afresh (retry " << round_retries_used_ << " of "
                     << run_.spec.max_round_retries() << ")";
  v1::CoordinatorMessage message;
  message.mutable_cancel()->set_run_id(run_.id);
  message.mutable_cancel()->set_round(round_);
  message.mutable_cancel()->set_reason(reason);
  for (const auto& [site, slot] : slots_) deps_.roster->Send(site, message);
  aggregator_.reset();
  secure_.reset();
  slots_.clear();
  phase_ = RunPhase::kWaitingForSites;
  phase_deadline_ = absl::InfiniteFuture();
  OnSitesChanged();
}

void RoundManager::Finish(RunState state, const std::string& error) {
  if (state != RunState::kDone) {
    v1::CoordinatorMessage message;
    message.mutable_cancel()->set_run_id(run_.id);
    message.mutable_cancel()->set_reason(error);
    for (const auto& site : deps_.roster->ConnectedSites()) deps_.roster->Send(site, message);
  }
  Audit(audit::Action::kRunFinished, phase_ == RunPhase::kFinished ? -1 : round_,
        {{"state", StateName(state)}, {"error", error}});
  const double now = deps_.clock->NowUnixSeconds();
  // The run's state is best effort here: when storage itself is failing, the
  // in-memory state still stops the run, and a restart resumes it.
  (void)deps_.storage->SetRunState(run_.id, state, error, now);
  run_.state = state;
  run_.error = error;
  run_.finished_at = now;
  phase_ = RunPhase::kFinished;
  aggregator_.reset();
  secure_.reset();
  slots_.clear();
  phase_deadline_ = absl::InfiniteFuture();
}

}  // namespace fedmi
