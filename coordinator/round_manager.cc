#include "coordinator/round_manager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/base/fault_injection.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "coordinator/update_check.h"

namespace fedmi {
namespace {

// More examples than any site could hold: beyond this an update's weight is
// not believable whatever the site said in its hello.
constexpr int64_t kMaxUpdateExamples = int64_t{1} << 40;

v1::Metrics WeightedMean(const std::vector<v1::Metrics>& parts) {
  // Each field is averaged over the sites that report a finite value, so one
  // site whose validation data has a single class (AUC undefined) does not
  // poison the aggregate.
  struct Field {
    double (v1::Metrics::*get)() const;
    void (v1::Metrics::*set)(double);
  };
  static const Field kFields[] = {
      {&v1::Metrics::loss, &v1::Metrics::set_loss},
      {&v1::Metrics::auc, &v1::Metrics::set_auc},
      {&v1::Metrics::accuracy, &v1::Metrics::set_accuracy},
      {&v1::Metrics::sensitivity, &v1::Metrics::set_sensitivity},
      {&v1::Metrics::specificity, &v1::Metrics::set_specificity},
      {&v1::Metrics::f1, &v1::Metrics::set_f1},
  };
  v1::Metrics mean;
  int64_t examples = 0;
  for (const auto& part : parts) examples += part.examples();
  mean.set_examples(examples);
  for (const Field& field : kFields) {
    double sum = 0, weight = 0;
    for (const auto& part : parts) {
      double value = (part.*field.get)();
      if (part.examples() > 0 && std::isfinite(value)) {
        sum += value * part.examples();
        weight += part.examples();
      }
    }
    (mean.*field.set)(weight > 0 ? sum / weight : std::nan(""));
  }
  return mean;
}

}  // namespace

const char* RunPhaseName(RunPhase phase) {
  switch (phase) {
    case RunPhase::kWaitingForSites:
      return "waiting-for-sites";
    case RunPhase::kInitializing:
      return "initializing";
    case RunPhase::kTraining:
      return "training";
    case RunPhase::kEvaluating:
      return "evaluating";
    case RunPhase::kFinished:
      return "finished";
  }
  return "unknown";
}

RoundManager::RoundManager(RunRecord run, Deps deps) : run_(std::move(run)), deps_(deps) {}

absl::StatusOr<std::unique_ptr<RoundManager>> RoundManager::Load(int64_t run_id, Deps deps) {
  ASSIGN_OR_RETURN(RunRecord run, deps.storage->GetRun(run_id));
  std::unique_ptr<RoundManager> manager(new RoundManager(std::move(run), deps));
  RETURN_IF_ERROR(manager->Resume());
  return manager;
}

absl::Status RoundManager::Resume() {
  if (run_.state == "done" || run_.state == "failed" || run_.state == "aborted") {
    phase_ = RunPhase::kFinished;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, deps_.storage->ListRounds(run_.id));
  if (!rounds.empty()) {
    const RoundRecord& last = rounds.back();
    global_model_sha256_ = last.model_sha256;
    ASSIGN_OR_RETURN(model_specs_, LoadModelSpecs(last.model_sha256));
    if (last.round > 0 && last.state != "evaluated") {
      round_ = last.round;
      evaluation_pending_ = true;
    } else {
      round_ = last.round + 1;
    }
    if (round_ > run_.spec.rounds()) {
      Finish("done", "");
      return absl::OkStatus();
    }
  }
  if (run_.state != "running") {
    RETURN_IF_ERROR(deps_.storage->SetRunState(run_.id, "running", "", 0));
    run_.state = "running";
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

std::vector<std::string> RoundManager::SelectSites() {
  std::vector<std::string> sites = deps_.roster->ConnectedSites();
  const int max_sites = run_.spec.max_sites();
  if (max_sites > 0 && static_cast<int>(sites.size()) > max_sites) {
    // Seeded by run seed and round, so a replayed run selects the same sites.
    std::mt19937_64 random(run_.spec.seed() * 1000003 + round_);
    std::shuffle(sites.begin(), sites.end(), random);
    sites.resize(max_sites);
    std::sort(sites.begin(), sites.end());
  }
  return sites;
}

int RoundManager::CountInState(SiteState state) const {
  int count = 0;
  for (const auto& [site, slot] : slots_) count += slot.state == state;
  return count;
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

void RoundManager::StartRound() {
  std::vector<std::string> sites = SelectSites();
  if (static_cast<int>(sites.size()) < run_.spec.min_sites()) {
    phase_ = RunPhase::kWaitingForSites;
    return;
  }
  v1::SecAggParams secagg;
  if (run_.spec.secure_aggregation()) {
    auto begun = BeginSecureRound(sites);
    if (!begun.ok()) {
      return FailRound(absl::StrCat(
          "round ", round_, ": secure aggregation cannot start: ", begun.status().message()));
    }
    secagg = *std::move(begun);
  } else {
    auto aggregator = MakeAggregator(run_.spec.strategy());
    if (!aggregator.ok()) return Fail(std::string(aggregator.status().message()));
    aggregator_ = *std::move(aggregator);
    if (absl::Status status = aggregator_->Begin(round_, model_specs_); !status.ok()) {
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
    if (run_.spec.secure_aggregation()) *task->mutable_secagg() = secagg;
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
  Audit(audit::Action::kRoundOpened, round_,
        {{"sites", selected}, {"secure_aggregation", run_.spec.secure_aggregation()}});
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
    if (!deps_.roster->Send(site, message)) continue;
    SiteSlot slot;
    auto it = trained.find(site);
    if (it != trained.end()) slot.record = it->second.record;
    slot.record.run_id = run_.id;
    slot.record.round = round_;
    slot.record.site = site;
    slot.state = SiteState::kAssigned;
    slots_[site] = slot;
  }
  phase_ = RunPhase::kEvaluating;
  phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  MaybeFinishEvaluation();
}

absl::StatusOr<std::vector<TensorSpec>> RoundManager::ExpectedUpdate(
    const std::string& site, const v1::UpdateMetadata& metadata) {
  if (metadata.run_id() != run_.id) {
    return absl::InvalidArgumentError(
        absl::StrCat("update is for run ", metadata.run_id(), ", not run ", run_.id));
  }
  if (phase_ == RunPhase::kInitializing) {
    if (metadata.round() != 0 || site != init_site_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", run_.id, " is waiting for its initial model from site '", init_site_, "'"));
    }
    return std::vector<TensorSpec>{};
  }
  if (phase_ != RunPhase::kTraining) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_.id, " is not collecting updates (phase ", RunPhaseName(phase_), ")"));
  }
  if (metadata.round() != round_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "update is for round ", metadata.round(), " but run ", run_.id, " is in round ", round_));
  }
  auto it = slots_.find(site);
  if (it == slots_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' is not selected for round ", round_, " of run ", run_.id));
  }
  if (it->second.state == SiteState::kDropped) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' was dropped from round ",
                                                      round_, " of run ", run_.id, " (",
                                                      it->second.record.detail, ")"));
  }
  if (it->second.state != SiteState::kAssigned) {
    return absl::AlreadyExistsError(absl::StrCat(
        "site '", site, "' already sent its update for round ", round_, " of run ", run_.id));
  }
  if (metadata.examples() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("update example count must be positive, got ", metadata.examples()));
  }
  // The example count weighs the update: an inflated one would let a site
  // outvote the others.
  const int64_t declared = deps_.roster->TrainExamples(site);
  if (metadata.examples() > kMaxUpdateExamples ||
      (declared > 0 && metadata.examples() > declared)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update example count ", metadata.examples(), " is more than site '", site, "' ",
        declared > 0 ? absl::StrCat("declared in its hello (", declared, ")")
                     : absl::StrCat("can have (at most ", kMaxUpdateExamples, ")")));
  }
  if (secagg_step_ != SecAggStep::kOff) {
    RETURN_IF_ERROR(ExpectedMaskedUpdate(site));
    return masked_specs_;
  }
  return model_specs_;
}

absl::Status RoundManager::CheckValues(const std::string& site, BundleFileReader& update) {
  ASSIGN_OR_RETURN(std::string global_path, deps_.models->PathFor(global_model_sha256_));
  ASSIGN_OR_RETURN(auto global, BundleFileReader::Open(global_path));
  return CheckUpdateValues(site, model_specs_, update, *global, run_.spec.max_update_norm())
      .status();
}

void RoundManager::Audit(audit::Action action, int32_t round, const nlohmann::json& detail) {
  if (deps_.audit != nullptr) {
    deps_.audit->Record(AuditLog::kCoordinator, action, run_.id, round, detail);
  }
}

absl::Status RoundManager::AuditUpdate(const std::string& site, const ReceivedUpdate& update,
                                       v1::AuditEntry* received) {
  if (deps_.audit == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      v1::AuditEntry entry,
      deps_.audit->Append(
          site, audit::Action::kUpdateReceived, run_.id, update.metadata.round(),
          nlohmann::json::parse(audit::UpdateReceivedDetail(
              site, update.bytes, HexEncode(update.sha256), update.metadata.examples()))));
  if (received != nullptr) *received = std::move(entry);
  return absl::OkStatus();
}

absl::Status RoundManager::OnUpdate(const std::string& site, ReceivedUpdate update,
                                    v1::AuditEntry* received) {
  auto expected = ExpectedUpdate(site, update.metadata);
  if (!expected.ok()) {
    std::remove(update.path.c_str());
    return expected.status();
  }
  if (phase_ == RunPhase::kInitializing) {
    return AdoptInitialModel(site, std::move(update), received);
  }
  if (secagg_step_ != SecAggStep::kOff) {
    return AcceptMaskedUpdate(site, std::move(update), received);
  }

  auto reader = BundleFileReader::Open(update.path);
  absl::Status checked =
      reader.ok() ? CheckSpecsMatch((*reader)->specs(), model_specs_) : reader.status();
  if (!checked.ok()) {
    // Nothing was folded in yet: refuse this update and keep the round.
    std::remove(update.path.c_str());
    return checked;
  }
  if (absl::Status values = CheckValues(site, **reader); !values.ok()) {
    // The site trained a model that must not be aggregated (diverged, or
    // beyond the run's bound): it leaves this round now, not at the deadline.
    std::remove(update.path.c_str());
    if (values.code() == absl::StatusCode::kInvalidArgument) {
      OnSiteGaveUp(site, absl::StrCat("update refused: ", values.message()), false);
    }
    return values;
  }
  reader = BundleFileReader::Open(update.path);  // back to the start of the body
  if (!reader.ok()) {
    std::remove(update.path.c_str());
    return reader.status();
  }
  absl::Status folded =
      aggregator_->Accept(site, static_cast<double>(update.metadata.examples()), **reader);
  std::remove(update.path.c_str());
  CrashIfTestAsks("coordinator-mid-aggregation", round_);
  if (!folded.ok()) {
    // A failed fold may have left part of the update in the running sum.
    Fail(absl::StrCat("round ", round_, ": aggregating the update of site '", site,
                      "' failed: ", folded.message()));
    return folded;
  }
  if (absl::Status audited = AuditUpdate(site, update, received); !audited.ok()) {
    // Folded but not on record: the round cannot stand on it.
    FailRound(absl::StrCat("round ", round_, ": cannot record the update of site '", site,
                           "' in the audit log: ", audited.message()));
    return audited;
  }
  SiteSlot& slot = slots_[site];
  slot.state = SiteState::kUploaded;
  slot.record.examples = update.metadata.examples();
  slot.record.train_metrics = update.metadata.train_metrics();
  slot.record.update_sha256 = HexEncode(update.sha256);
  slot.record.state = "uploaded";
  MaybeFinishTraining();
  return absl::OkStatus();
}

absl::Status RoundManager::AdoptInitialModel(const std::string& site, ReceivedUpdate update,
                                             v1::AuditEntry* received) {
  auto specs = [&]() -> absl::StatusOr<std::vector<TensorSpec>> {
    ASSIGN_OR_RETURN(auto reader, BundleFileReader::Open(update.path));
    return reader->specs();
  }();
  if (specs.ok() && specs->empty()) {
    specs = absl::InvalidArgumentError("initial model has no tensors");
  }
  if (specs.ok()) {
    // Refuse now a layout the run's strategy could never aggregate.
    auto aggregator = MakeAggregator(run_.spec.strategy());
    absl::Status usable = aggregator.ok() ? (*aggregator)->Begin(1, *specs) : aggregator.status();
    if (!usable.ok()) specs = usable;
  }
  if (!specs.ok()) {
    std::remove(update.path.c_str());
    return specs.status();
  }
  if (absl::Status audited = AuditUpdate(site, update, received); !audited.ok()) {
    std::remove(update.path.c_str());
    return audited;
  }
  const std::string sha_hex = HexEncode(update.sha256);
  const std::string target = absl::StrCat(deps_.models->dir(), "/", sha_hex);
  if (std::rename(update.path.c_str(), target.c_str()) != 0) {
    std::remove(update.path.c_str());
    return absl::InternalError(absl::StrCat("cannot move initial model into ", target));
  }
  RoundCommit commit;
  commit.round.run_id = run_.id;
  commit.round.round = 0;
  commit.round.model_sha256 = sha_hex;
  commit.round.state = "evaluated";
  commit.round.started_at = round_started_at_;
  commit.round.finished_at = deps_.clock->NowUnixSeconds();
  if (absl::Status status = deps_.storage->CommitRound(commit); !status.ok()) {
    Fail(absl::StrCat("cannot store the initial model: ", status.message()));
    return status;
  }
  Audit(audit::Action::kRoundAggregated, 0,
        {{"model_sha256", sha_hex}, {"sites", {site}}, {"initial", true}});
  model_specs_ = *std::move(specs);
  global_model_sha256_ = sha_hex;
  round_ = 1;
  StartRound();
  return absl::OkStatus();
}

absl::Status RoundManager::CheckQuorum() const {
  const int uploaded = CountInState(SiteState::kUploaded);
  const int pending = CountInState(SiteState::kAssigned);
  const int required = std::max(1, run_.spec.min_sites());
  if (uploaded + pending >= required) return absl::OkStatus();
  // Name every site that dropped out, so the reason (often a site's policy
  // refusal) reaches the administrator with the failure.
  std::string dropped;
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SiteState::kDropped) continue;
    absl::StrAppend(&dropped, dropped.empty() ? "" : "; ", site, " ", slot.record.state, ": ",
                    slot.record.detail);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("round ", round_, ": at most ", uploaded + pending, " of the ", required,
                   " required sites can return an update",
                   dropped.empty() ? "" : absl::StrCat(" (", dropped, ")")));
}

void RoundManager::MaybeFinishTraining() {
  if (phase_ != RunPhase::kTraining) return;
  if (secagg_step_ != SecAggStep::kOff) return AdvanceSecureRound();
  // Fail as soon as the quorum is out of reach rather than after the
  // remaining sites have trained for nothing.
  if (absl::Status quorum = CheckQuorum(); !quorum.ok()) {
    return FailRound(std::string(quorum.message()));
  }
  if (CountInState(SiteState::kAssigned) > 0) return;
  if (absl::Status status = FinishTraining(); !status.ok()) {
    Fail(absl::StrCat("round ", round_, ": ", status.message()));
  }
}

absl::Status RoundManager::FinishTraining() {
  ASSIGN_OR_RETURN(std::string model_sha, aggregator_->Finish(*deps_.models));
  aggregator_.reset();
  return CommitTrainedRound(model_sha);
}

absl::Status RoundManager::CommitTrainedRound(const std::string& model_sha) {
  // The new model file is written; the round is not yet committed.
  CrashIfTestAsks("coordinator-commit", round_);
  RoundCommit commit;
  commit.round.run_id = run_.id;
  commit.round.round = round_;
  commit.round.model_sha256 = model_sha;
  commit.round.state = "committed";
  commit.round.started_at = round_started_at_;
  commit.round.finished_at = deps_.clock->NowUnixSeconds();
  nlohmann::json uploaded = nlohmann::json::array();
  for (auto& [site, slot] : slots_) {
    if (slot.state == SiteState::kUploaded || slot.state == SiteState::kDropped) {
      commit.participations.push_back(slot.record);
    }
    if (slot.state == SiteState::kUploaded) uploaded.push_back(site);
  }
  RETURN_IF_ERROR(deps_.storage->CommitRound(commit));
  Audit(audit::Action::kRoundAggregated, round_,
        {{"model_sha256", model_sha},
         {"sites", uploaded},
         {"secure_aggregation", run_.spec.secure_aggregation()}});
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
  if (it == slots_.end() || it->second.state != SiteState::kAssigned) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site '", site, "' has no open evaluation for round ", round_, " of run ", run_.id));
  }
  it->second.state = SiteState::kEvaluated;
  it->second.record.eval_metrics = report.metrics();
  CrashIfTestAsks("coordinator-evaluation", round_);
  // A site that refused or dropped out of training keeps that state.
  if (it->second.record.state == "uploaded") it->second.record.state = "evaluated";
  MaybeFinishEvaluation();
  return absl::OkStatus();
}

void RoundManager::MaybeFinishEvaluation() {
  if (phase_ != RunPhase::kEvaluating || CountInState(SiteState::kAssigned) > 0) return;
  std::vector<v1::Metrics> reports;
  std::vector<ParticipationRecord> per_site;
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SiteState::kEvaluated) continue;
    reports.push_back(slot.record.eval_metrics);
    per_site.push_back(slot.record);
  }
  const v1::Metrics mean = WeightedMean(reports);
  absl::Status status = deps_.storage->RecordEvaluation(run_.id, round_, mean, per_site,
                                                        deps_.clock->NowUnixSeconds());
  if (!status.ok()) {
    return Fail(absl::StrCat("round ", round_, ": cannot store evaluation: ", status.message()));
  }
  nlohmann::json evaluated = nlohmann::json::array();
  for (const auto& record : per_site) evaluated.push_back(record.site);
  auto finite = [](double value) -> nlohmann::json {
    return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  Audit(audit::Action::kRoundEvaluated, round_,
        {{"sites", evaluated},
         {"metrics",
          {{"examples", mean.examples()},
           {"loss", finite(mean.loss())},
           {"auc", finite(mean.auc())},
           {"accuracy", finite(mean.accuracy())},
           {"sensitivity", finite(mean.sensitivity())},
           {"specificity", finite(mean.specificity())},
           {"f1", finite(mean.f1())}}}});
  slots_.clear();
  CrashIfTestAsks("coordinator-between-rounds", round_);
  if (round_ >= run_.spec.rounds()) return Finish("done", "");
  ++round_;
  round_retries_used_ = 0;
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
  if (secagg_step_ == SecAggStep::kUnmasking && unmask_pending_.erase(site) > 0) {
    // Its masked update is in the sum; the other survivors' shares can
    // still unmask it.
    return AdvanceSecureRound();
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SiteState::kAssigned) return;
  it->second.state = SiteState::kDropped;
  it->second.record.state = refused ? "refused" : "dropped";
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
  if (deps_.clock->Now() < phase_deadline_) return;
  switch (phase_) {
    case RunPhase::kInitializing:
      return Fail(absl::StrCat("site '", init_site_, "' did not send the initial model within ",
                               run_.spec.round_timeout_s(), " s"));
    case RunPhase::kTraining:
    case RunPhase::kEvaluating: {
      std::vector<std::string> late;
      if (phase_ == RunPhase::kTraining && secagg_step_ != SecAggStep::kOff) {
        late = PendingInSecAggStep();
        if (secagg_step_ == SecAggStep::kUnmasking) {
          // Unmask with the shares that did arrive, if they are enough.
          unmask_pending_.clear();
          return AdvanceSecureRound();
        }
      } else {
        for (const auto& [site, slot] : slots_) {
          if (slot.state == SiteState::kAssigned) late.push_back(site);
        }
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
        absl::StrCat("run ", run_.id, " already finished (", run_.state, ")"));
  }
  Finish("aborted", reason.empty() ? "aborted by an administrator" : reason);
  return absl::OkStatus();
}

void RoundManager::Fail(const std::string& reason) { Finish("failed", reason); }

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
  EndSecureRound();
  slots_.clear();
  phase_ = RunPhase::kWaitingForSites;
  phase_deadline_ = absl::InfiniteFuture();
  OnSitesChanged();
}

void RoundManager::Finish(const std::string& state, const std::string& error) {
  if (state != "done") {
    v1::CoordinatorMessage message;
    message.mutable_cancel()->set_run_id(run_.id);
    message.mutable_cancel()->set_reason(error);
    for (const auto& site : deps_.roster->ConnectedSites()) deps_.roster->Send(site, message);
  }
  Audit(audit::Action::kRunFinished, phase_ == RunPhase::kFinished ? -1 : round_,
        {{"state", state}, {"error", error}});
  const double now = deps_.clock->NowUnixSeconds();
  // The run's state is best effort here: when storage itself is failing, the
  // in-memory state still stops the run, and a restart resumes it.
  (void)deps_.storage->SetRunState(run_.id, state, error, now);
  run_.state = state;
  run_.error = error;
  run_.finished_at = now;
  phase_ = RunPhase::kFinished;
  aggregator_.reset();
  EndSecureRound();
  slots_.clear();
  phase_deadline_ = absl::InfiniteFuture();
}

void RoundManager::FillLiveStatus(v1::RunStatus* status) const {
  status->set_state(run_.state);
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
  live->set_state(secagg_step_ == SecAggStep::kOff
                      ? RunPhaseName(phase_)
                      : absl::StrCat(RunPhaseName(phase_),
                                     " (secure aggregation: ", SecAggStepName(secagg_step_), ")"));
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
    std::string raw;
    if (HexDecode(slot.record.update_sha256, &raw)) part->set_update_sha256(raw);
    const char* state = phase_ == RunPhase::kEvaluating ? "evaluating" : "training";
    if (slot.state == SiteState::kUploaded) state = "uploaded";
    if (slot.state == SiteState::kEvaluated) state = "evaluated";
    if (slot.state == SiteState::kDropped) state = slot.record.state.c_str();
    part->set_state(state);
    part->set_detail(slot.record.detail);
  }
}

}  // namespace fedmi
