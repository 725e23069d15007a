#include "client/client_metrics.h"

#include <algorithm>
#include <iterator>

#include "common/base/status.h"

namespace fedmi {
namespace {

constexpr const char* kReasons[] = {"policy", "unsupported", "failed"};
constexpr const char* kPhases[] = {"download", "training", "secagg", "upload"};

}  // namespace

const char* RefusalReason(const absl::Status& outcome) {
  switch (outcome.code()) {
    // SitePolicy, the operator's review and the privacy ledger say no with
    // PermissionDenied ("site policy: ...").
    case absl::StatusCode::kPermissionDenied:
      return "policy";
    // What the site cannot run: an unknown model, no or unusable data,
    // another geometry or class count (SiteWorker::CheckCapability).
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return "unsupported";
    default:
      return "failed";
  }
}

absl::StatusOr<std::unique_ptr<ClientMetrics>> ClientMetrics::Register(
    metrics::MetricRegistry* registry) {
  std::unique_ptr<ClientMetrics> m(new ClientMetrics());
  ASSIGN_OR_RETURN(m->images_, registry->AddCounter("fedmi_client_images_trained_total",
                                                    "Images this site trained on, every local "
                                                    "epoch counted (not DP-SGD's sampled ones)."));
  ASSIGN_OR_RETURN(m->seconds_, registry->AddCounter("fedmi_client_training_seconds_total",
                                                     "Seconds spent in local training."));
  ASSIGN_OR_RETURN(m->images_per_second_,
                   registry->AddGauge("fedmi_client_training_images_per_second",
                                      "Training throughput of the latest local epoch so far, in "
                                      "images per second."));
  ASSIGN_OR_RETURN(m->loss_, registry->AddGauge("fedmi_client_training_loss",
                                                "Running mean training loss of the latest local "
                                                "epoch."));
  ASSIGN_OR_RETURN(m->joined_, registry->AddCounter("fedmi_client_rounds_joined_total",
                                                    "Rounds this site trained and sent its "
                                                    "update for."));
  ASSIGN_OR_RETURN(m->refused_,
                   registry->AddCounter("fedmi_client_rounds_refused_total",
                                        "Train tasks this site did not complete, by reason: "
                                        "policy (its policy, operator or privacy budget), "
                                        "unsupported (it cannot run the spec), failed.",
                                        {"reason"}));
  for (const char* reason : kReasons) m->refused_->Add({reason}, 0).IgnoreError();
  ASSIGN_OR_RETURN(m->phase_seconds_,
                   registry->AddCounter("fedmi_client_round_phase_seconds_total",
                                        "Wall time of completed train tasks by phase: download "
                                        "(the global model), training, secagg (secure "
                                        "aggregation's key exchange and masking), upload.",
                                        {"phase"}));
  for (const char* phase : kPhases) m->phase_seconds_->Add({phase}, 0).IgnoreError();
  ASSIGN_OR_RETURN(m->last_run_,
                   registry->AddGauge("fedmi_client_last_run", "Run id of the latest train task."));
  ASSIGN_OR_RETURN(m->last_round_, registry->AddGauge("fedmi_client_last_round",
                                                      "Round of the latest train task."));
  // Gauges without labels show 0 until the first task, like the counters.
  m->last_run_->Set({}, 0).IgnoreError();
  m->last_round_->Set({}, 0).IgnoreError();
  return m;
}

void ClientMetrics::OnTrainingProgress(const TrainingProgress& progress) {
  int64_t new_images = 0;
  double new_seconds = 0;
  {
    absl::MutexLock lock(&mu_);
    // A new epoch or training starts its counts from zero; so does one whose
    // clock went back (the same epoch number of the next task).
    if (progress.run_id != run_ || progress.round != round_ || progress.epoch != epoch_ ||
        progress.done < counted_done_ || progress.epoch_seconds < counted_seconds_) {
      run_ = progress.run_id;
      round_ = progress.round;
      epoch_ = progress.epoch;
      counted_done_ = 0;
      counted_seconds_ = 0;
    }
    new_images = progress.done - counted_done_;
    new_seconds = progress.epoch_seconds - counted_seconds_;
    counted_done_ = progress.done;
    counted_seconds_ = progress.epoch_seconds;
    // The epoch ended: the next progress of the same numbers is a new one.
    if (progress.EpochDone()) epoch_ = -1;
  }
  if (!progress.dp_steps) {
    images_->Add({}, static_cast<double>(std::max<int64_t>(0, new_images))).IgnoreError();
    if (progress.epoch_seconds > 0) {
      images_per_second_->Set({}, static_cast<double>(progress.done) / progress.epoch_seconds)
          .IgnoreError();
    }
  }
  seconds_->Add({}, std::max(0.0, new_seconds)).IgnoreError();
  loss_->Set({}, progress.loss).IgnoreError();
  last_run_->Set({}, static_cast<double>(progress.run_id)).IgnoreError();
  last_round_->Set({}, progress.round).IgnoreError();
}

void ClientMetrics::OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) {
  last_run_->Set({}, static_cast<double>(run_id)).IgnoreError();
  last_round_->Set({}, round).IgnoreError();
  if (outcome.ok()) {
    joined_->Increment().IgnoreError();
  } else {
    refused_->Increment({RefusalReason(outcome)}).IgnoreError();
  }
}

void ClientMetrics::OnRoundPhases(int64_t /*run_id*/, int32_t /*round*/,
                                  const RoundPhaseTimes& phases) {
  const double seconds[] = {phases.download, phases.training, phases.secagg, phases.upload};
  static_assert(std::size(seconds) == std::size(kPhases), "one value per phase label");
  for (size_t i = 0; i < std::size(kPhases); ++i) {
    phase_seconds_->Add({kPhases[i]}, std::max(0.0, seconds[i])).IgnoreError();
  }
}

}  // namespace fedmi
