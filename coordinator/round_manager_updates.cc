// RoundManager's intake of updates (round_manager.h): whether a site may
// upload now, and what happens to a complete update: the initial model is
// adopted into the model store, a plaintext update is checked and folded
// into the aggregator, a masked one goes to the SecureRound.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/transfer.h"
#include "coordinator/round_manager.h"
#include "coordinator/strategy_settings.h"
#include "coordinator/update_check.h"

namespace fedmi {
namespace {

// More examples than any site could hold: beyond this an update's weight is
// not believable whatever the site said in its hello.
constexpr int64_t kMaxUpdateExamples = int64_t{1} << 40;

}  // namespace

absl::StatusOr<ExpectedUpload> RoundManager::ExpectedUpdate(const std::string& site,
                                                            const v1::UpdateMetadata& metadata) {
  if (metadata.run_id() != run_.id) {
    return absl::InvalidArgumentError(
        absl::StrCat("update is for run ", metadata.run_id(), ", not run ", run_.id));
  }
  if (phase_ == RunPhase::kInitializing) {
    if (metadata.round() != 0 || site != init_site_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", run_.id, " is waiting for its initial model from site '", init_site_, "'"));
    }
    ExpectedUpload initial;
    initial.adopted = true;
    return initial;
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
  if (it->second.state == SlotState::kDropped) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' was dropped from round ",
                                                      round_, " of run ", run_.id, " (",
                                                      it->second.record.detail, ")"));
  }
  if (it->second.state != SlotState::kAssigned) {
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
  ExpectedUpload expected;
  if (secure_ != nullptr) {
    RETURN_IF_ERROR(secure_->ExpectMaskedUpdate(site));
    expected.specs = secure_->masked_specs();
    return expected;
  }
  expected.specs = round_specs_;
  ASSIGN_OR_RETURN(expected.global_model_path, deps_.models->PathFor(round_global_sha256_));
  expected.global_model_sha256 = round_global_sha256_;
  return expected;
}

absl::Status RoundManager::CheckValues(const std::string& site, const ReceivedUpdate& update) {
  std::optional<UpdateValues> values = update.values;
  if (!values.has_value() || values->global_model_sha256 != round_global_sha256_) {
    ASSIGN_OR_RETURN(std::string global_path, deps_.models->PathFor(round_global_sha256_));
    ASSIGN_OR_RETURN(values, ScanUpdateFile(site, round_specs_, update.path, global_path));
  }
  double bound = run_.spec.max_update_norm();
  // Site-level DP: a change beyond S would spend the other sites' privacy.
  if (IsSiteLevelDp(run_.spec)) {
    const double clip = SiteDpUpdateNormBound(RoundClipNorm());
    bound = bound > 0 ? std::min(bound, clip) : clip;
  }
  return CheckUpdateValues(site, *values, bound).status();
}

void RoundManager::Audit(audit::Action action, int32_t round, const nlohmann::json& detail) {
  if (deps_.audit != nullptr) {
    deps_.audit->Record(AuditLog::kCoordinator, action, run_.id, round, detail);
  }
}

std::optional<v1::SignedAuditHead> RoundManager::AuditHead() {
  if (deps_.audit == nullptr) return std::nullopt;
  return deps_.audit->SignedHead();
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
    RemoveSpooled(update);
    return expected.status();
  }
  if (phase_ == RunPhase::kInitializing) {
    return AdoptInitialModel(site, std::move(update), received);
  }
  if (HasDifferentialPrivacy(run_.spec)) {
    // A site that accounts for nothing did not apply the run's DP (a build
    // from before it, which ignores the spec's dp settings): its update is
    // neither noised nor clipped and must not reach the model.
    if (!(update.metadata.dp_epsilon_spent() > 0)) {
      RemoveSpooled(update);
      return absl::FailedPreconditionError(absl::StrCat(
          "site '", site, "' reports no differential-privacy accounting for run ", run_.id,
          " round ", update.metadata.round(),
          ": it did not apply the run's differential privacy (upgrade its fedmi-client); "
          "update refused"));
    }
    // The site's own ledger counts every training it did (retries too), so
    // it may exceed the run's count; it is the site's number, for the log.
    FEDMI_LOG(INFO) << "run " << run_.id << " round " << update.metadata.round() << ": site '"
                    << site << "' reports epsilon " << update.metadata.dp_epsilon_spent()
                    << " spent by its own accountant";
  }
  if (secure_ != nullptr) return AcceptMaskedUpdate(site, std::move(update), received);
  return AcceptUpdate(site, std::move(update), received);
}

absl::Status RoundManager::AcceptUpdate(const std::string& site, ReceivedUpdate update,
                                        v1::AuditEntry* received) {
  auto reader = BundleFileReader::Open(update.path);
  absl::Status checked =
      reader.ok() ? CheckSpecsMatch((*reader)->specs(), round_specs_) : reader.status();
  if (!checked.ok()) {
    // Nothing was folded in yet: refuse this update and keep the round.
    RemoveSpooled(update);
    return checked;
  }
  if (absl::Status values = CheckValues(site, update); !values.ok()) {
    // The site trained a model that must not be aggregated (diverged, or
    // beyond the run's bound): it leaves this round now, not at the deadline.
    RemoveSpooled(update);
    if (values.code() == absl::StatusCode::kInvalidArgument) {
      OnSiteGaveUp(site, absl::StrCat("update refused: ", values.message()), false);
    }
    return values;
  }
  absl::Status folded = [&] {
    PhaseTimer timer(deps_.phases, UpdatePhase::kFold);
    return aggregator_->Accept(site, static_cast<double>(update.metadata.examples()), **reader);
  }();
  RemoveSpooled(update);
  deps_.faults->Reached(FaultPoint::kCoordinatorMidAggregation, round_);
  if (!folded.ok()) {
    // A failed fold may have left part of the update in the running sum.
    Fail(absl::StrCat("round ", round_, ": aggregating the update of site '", site,
                      "' failed: ", folded.message()));
    return folded;
  }
  RETURN_IF_ERROR(RecordFoldedUpdate(site, update, received, "update"));
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
    std::vector<std::string> names;
    for (const TensorSpec& spec : *specs) names.push_back(spec.name);
    if (absl::Status frozen = CheckFreezePrefixes(run_.spec, names); !frozen.ok()) specs = frozen;
  }
  if (specs.ok()) {
    // Refuse now a layout the run's strategy could never aggregate (with
    // the candidate as the global model that norm_bounded measures against).
    auto aggregator =
        MakeAggregator(run_.spec.strategy(), AggregatorOptionsOf(run_.spec, update.path));
    absl::Status usable = aggregator.ok() ? (*aggregator)->Begin(1, *specs) : aggregator.status();
    if (!usable.ok()) specs = usable;
  }
  if (!specs.ok()) {
    RemoveSpooled(update);
    return specs.status();
  }
  if (absl::Status audited = AuditUpdate(site, update, received); !audited.ok()) {
    RemoveSpooled(update);
    return audited;
  }
  const std::string sha_hex = HexEncode(update.sha256);
  if (absl::Status adopted = deps_.models->Adopt(update.path, sha_hex).status(); !adopted.ok()) {
    RemoveSpooled(update);
    return absl::InternalError(absl::StrCat("initial model: ", adopted.message()));
  }
  RoundCommit commit;
  commit.round.run_id = run_.id;
  commit.round.round = 0;
  commit.round.model_sha256 = sha_hex;
  commit.round.state = RoundState::kEvaluated;
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

absl::Status RoundManager::RecordFoldedUpdate(const std::string& site, const ReceivedUpdate& update,
                                              v1::AuditEntry* received, absl::string_view kind) {
  if (absl::Status audited = AuditUpdate(site, update, received); !audited.ok()) {
    // Folded but not on record: the round cannot stand on it.
    FailRound(absl::StrCat("round ", round_, ": cannot record the ", kind, " of site '", site,
                           "' in the audit log: ", audited.message()));
    return audited;
  }
  SiteSlot& slot = slots_[site];
  slot.state = SlotState::kUploaded;
  slot.record.examples = update.metadata.examples();
  slot.record.train_metrics = update.metadata.train_metrics();
  slot.record.train_metrics.set_update_bytes(static_cast<int64_t>(update.bytes));
  slot.record.update_sha256 = HexEncode(update.sha256);  // masked words in a secure round
  slot.record.state = ParticipationState::kUploaded;
  slot.dp_within_clip = update.metadata.dp_within_clip();
  return absl::OkStatus();
}

void RoundManager::RemoveSpooled(const ReceivedUpdate& update) {
  // Best effort: a leftover spool file wastes space but changes no result.
  (void)deps_.env->RemoveFile(update.path);
}

}  // namespace fedmi
