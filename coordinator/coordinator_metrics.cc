#include "coordinator/coordinator_metrics.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/audit/audit_actions.h"
#include "common/base/log.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/runspec/model_task.h"
#include "coordinator/phase_times.h"
#include "coordinator/round_manager.h"

namespace fedmi {
namespace {

using metrics::MetricSnapshot;

constexpr RunState kRunStates[] = {RunState::kPending, RunState::kRunning, RunState::kDone,
                                   RunState::kFailed, RunState::kAborted};
constexpr char kRoundEvaluatedLabel[] = "evaluated";
constexpr char kRoundFailedLabel[] = "failed";
// From seconds (a small model on a few hundred images) to hours.
constexpr double kRoundDurationBounds[] = {1,   2,   5,    10,   30,   60,   120,
                                           300, 600, 1200, 1800, 3600, 7200, 14400};

constexpr RunPhase kRunPhases[] = {RunPhase::kWaitingForSites, RunPhase::kInitializing,
                                   RunPhase::kTraining, RunPhase::kEvaluating, RunPhase::kFinished};

// The statuses of the unfinished runs, read once per change of the
// Federation rather than once per family and render.
class UnfinishedRuns {
 public:
  UnfinishedRuns(Federation* federation, Storage* storage)
      : federation_(federation), storage_(storage) {}

  std::vector<v1::RunStatus> Get() {
    // Read before the runs: a change while they are read leaves the next
    // render with a newer version, so it reads them again.
    const uint64_t version = federation_->version();
    {
      absl::MutexLock lock(&mu_);
      if (valid_ && version == version_) return statuses_;
    }
    absl::StatusOr<std::vector<v1::RunStatus>> statuses = Read();
    if (!statuses.ok()) {
      FEDMI_LOG(WARNING) << "metrics: cannot read the runs: " << statuses.status().message();
      return {};
    }
    absl::MutexLock lock(&mu_);
    statuses_ = *statuses;
    version_ = version;
    valid_ = true;
    return statuses_;
  }

 private:
  absl::StatusOr<std::vector<v1::RunStatus>> Read() {
    ASSIGN_OR_RETURN(std::vector<RunRecord> runs, storage_->ListRuns());
    std::vector<v1::RunStatus> out;
    for (const RunRecord& run : runs) {
      if (IsTerminal(run.state)) continue;
      absl::StatusOr<v1::RunStatus> status = federation_->GetRun(run.id);
      // A run that ended since ListRuns is no longer of interest.
      if (!status.ok()) continue;
      out.push_back(*std::move(status));
    }
    return out;
  }

  Federation* const federation_;
  Storage* const storage_;
  absl::Mutex mu_;
  bool valid_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::RunStatus> statuses_ ABSL_GUARDED_BY(mu_);
};

// Tallies of the audit log's update and round entries, read incrementally:
// each render reads only the entries appended since the last one, in pages,
// so a long log's first read holds neither much memory nor the storage's
// lock for long. The log is append-only, so the tallies only grow, since the
// log began.
class AuditTally {
 public:
  struct Counts {
    int64_t updates_accepted = 0;
    double received_bytes = 0;
    std::map<std::string, int64_t> refused_by_code;  // "invalid_argument", ...
  };

  AuditTally(Storage* storage, metrics::HistogramFamily* round_durations)
      : storage_(storage), round_durations_(round_durations) {}

  // Reads what was appended since the last call.
  void Refresh() {
    absl::MutexLock lock(&mu_);
    v1::AuditQuery query;
    while (true) {
      query.set_after_seq(last_seq_);
      absl::StatusOr<std::vector<v1::AuditEntry>> page =
          storage_->ListAuditPage(query, kAuditPageEntries);
      if (!page.ok()) {
        FEDMI_LOG(WARNING) << "metrics: cannot read the audit log: " << page.status().message();
        return;
      }
      for (const v1::AuditEntry& entry : *page) Tally(entry);
      if (page->size() < static_cast<size_t>(kAuditPageEntries)) return;
    }
  }

  Counts counts() {
    absl::MutexLock lock(&mu_);
    return counts_;
  }

 private:
  static constexpr int kAuditPageEntries = 1000;

  void Tally(const v1::AuditEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_seq_ = std::max(last_seq_, entry.seq());
    const std::optional<audit::Action> action = audit::ParseAction(entry.action());
    if (!action.has_value()) return;
    switch (*action) {
      case audit::Action::kUpdateReceived:
        ++counts_.updates_accepted;
        counts_.received_bytes += DetailNumber(entry, "bytes");
        break;
      case audit::Action::kUpdateRefused:
        ++counts_.refused_by_code[RefusalCode(entry)];
        break;
      case audit::Action::kRoundOpened:
        if (std::optional<absl::Time> at = TimeOf(entry)) {
          round_opened_at_[{entry.run_id(), entry.round()}] = *at;
        }
        break;
      case audit::Action::kRoundEvaluated:
        ObserveRoundEnd(entry, kRoundEvaluatedLabel);
        break;
      case audit::Action::kRoundFailed:
        ObserveRoundEnd(entry, kRoundFailedLabel);
        break;
      case audit::Action::kRunFinished:
        // A round whose failure fails the run (no retry left) ends here,
        // not in a round.failed.
        if (DetailString(entry, "state") == StateName(RunState::kFailed)) {
          ObserveRoundEnd(entry, kRoundFailedLabel);
        }
        [[fallthrough]];
      case audit::Action::kRunAborted:
        // A round the run's end cut short has no duration.
        for (auto it = round_opened_at_.begin(); it != round_opened_at_.end();) {
          it = it->first.first == entry.run_id() ? round_opened_at_.erase(it) : std::next(it);
        }
        break;
      default:
        break;
    }
  }

  // From the round's round.opened to `entry`; a failed round that is
  // retried is opened again, so each attempt is timed on its own.
  void ObserveRoundEnd(const v1::AuditEntry& entry, const char* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto opened = round_opened_at_.find({entry.run_id(), entry.round()});
    if (opened == round_opened_at_.end()) return;
    if (std::optional<absl::Time> at = TimeOf(entry)) {
      round_durations_->Observe({outcome}, absl::ToDoubleSeconds(*at - opened->second))
          .IgnoreError();
    }
    round_opened_at_.erase(opened);
  }

  static std::optional<absl::Time> TimeOf(const v1::AuditEntry& entry) {
    absl::Time at;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, entry.time(), &at, &error)) return std::nullopt;
    return at;
  }
  static nlohmann::json Detail(const v1::AuditEntry& entry) {
    return nlohmann::json::parse(entry.detail_json(), nullptr, /*allow_exceptions=*/false);
  }
  static double DetailNumber(const v1::AuditEntry& entry, const char* key) {
    const nlohmann::json detail = Detail(entry);
    if (!detail.is_object() || !detail.contains(key) || !detail[key].is_number()) return 0;
    return detail[key].get<double>();
  }
  static std::string DetailString(const v1::AuditEntry& entry, const char* key) {
    const nlohmann::json detail = Detail(entry);
    if (!detail.is_object() || !detail.contains(key) || !detail[key].is_string()) return "";
    return detail[key].get<std::string>();
  }
  // absl's code name in lower case, a label value of few distinct values.
  static std::string RefusalCode(const v1::AuditEntry& entry) {
    const nlohmann::json detail = Detail(entry);
    if (!detail.is_object() || !detail.contains("code") || !detail["code"].is_string()) {
      return "unknown";
    }
    return absl::AsciiStrToLower(detail["code"].get<std::string>());
  }

  Storage* const storage_;
  metrics::HistogramFamily* const round_durations_;
  absl::Mutex mu_;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  Counts counts_ ABSL_GUARDED_BY(mu_);
  // (run, round) of each round whose end the log has not reached yet.
  std::map<std::pair<int64_t, int32_t>, absl::Time> round_opened_at_ ABSL_GUARDED_BY(mu_);
};

std::string RunLabel(const v1::RunStatus& status) { return absl::StrCat(status.run_id()); }

// The pooled validation metrics of the run's last evaluated round; null
// before the first evaluation.
const v1::Metrics* LastEvaluation(const v1::RunStatus& status) {
  for (const v1::RoundStatus& round : status.rounds()) {
    if (round.round() == status.completed_rounds() && round.round() > 0 &&
        round.eval_metrics().examples() > 0) {
      return &round.eval_metrics();
    }
  }
  return nullptr;
}

void CollectSites(Federation* federation, MetricSnapshot& snapshot,
                  bool (*counts)(const v1::SiteInfo&)) {
  absl::StatusOr<std::vector<v1::SiteInfo>> sites = federation->ListSites();
  if (!sites.ok()) return;
  int64_t n = 0;
  for (const v1::SiteInfo& site : *sites) n += counts(site) ? 1 : 0;
  snapshot.Set({}, static_cast<double>(n)).IgnoreError();
}

}  // namespace

absl::StatusOr<CoordinatorTransferMetrics> RegisterCoordinatorMetrics(
    Federation* federation, Storage* storage, metrics::MetricRegistry* registry) {
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_sites_known", "Sites ever registered, revoked ones included.", {},
      [federation](MetricSnapshot& snapshot) {
        CollectSites(federation, snapshot, [](const v1::SiteInfo&) { return true; });
      }));
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_sites_connected", "Sites with an open control stream.", {},
      [federation](MetricSnapshot& snapshot) {
        CollectSites(federation, snapshot,
                     [](const v1::SiteInfo& site) { return site.connected(); });
      }));
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_sites_revoked", "Sites revoked by an admin.", {},
      [federation](MetricSnapshot& snapshot) {
        CollectSites(federation, snapshot, [](const v1::SiteInfo& site) {
          return site.state() == StateName(SiteState::kRevoked);
        });
      }));

  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_runs", "Runs by state; every state is listed.", {"state"},
      [storage](MetricSnapshot& snapshot) {
        absl::StatusOr<std::vector<RunRecord>> runs = storage->ListRuns();
        if (!runs.ok()) return;
        for (RunState state : kRunStates) {
          int64_t n = 0;
          for (const RunRecord& run : *runs) n += run.state == state ? 1 : 0;
          snapshot.Set({StateName(state)}, static_cast<double>(n)).IgnoreError();
        }
      }));

  auto runs = std::make_shared<UnfinishedRuns>(federation, storage);
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_run_current_round",
      "The round an unfinished run is in; 0 before round 1 starts.", {"run"},
      [runs](MetricSnapshot& snapshot) {
        for (const v1::RunStatus& status : runs->Get()) {
          snapshot.Set({RunLabel(status)}, status.current_round()).IgnoreError();
        }
      }));
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_run_completed_rounds",
      "The last round of an unfinished run whose evaluation is stored.", {"run"},
      [runs](MetricSnapshot& snapshot) {
        for (const v1::RunStatus& status : runs->Get()) {
          snapshot.Set({RunLabel(status)}, status.completed_rounds()).IgnoreError();
        }
      }));
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_run_phase",
      "1 for the phase an unfinished run is in, 0 for the other phases.", {"run", "phase"},
      [runs](MetricSnapshot& snapshot) {
        for (const v1::RunStatus& status : runs->Get()) {
          for (RunPhase phase : kRunPhases) {
            const std::string name = RunPhaseName(phase);
            snapshot.Set({RunLabel(status), name}, status.phase() == name ? 1 : 0).IgnoreError();
          }
        }
      }));
  RETURN_IF_ERROR(registry->AddGaugeCollector(
      "fedmi_coordinator_run_validation_auc",
      "Pooled validation AUC of an unfinished run's last evaluated round (classification runs).",
      {"run"}, [runs](MetricSnapshot& snapshot) {
        for (const v1::RunStatus& status : runs->Get()) {
          const v1::Metrics* metrics = LastEvaluation(status);
          if (metrics == nullptr || IsSegmentationRun(status.spec())) continue;
          snapshot.Set({RunLabel(status)}, metrics->auc()).IgnoreError();
        }
      }));

  ASSIGN_OR_RETURN(
      metrics::HistogramFamily * round_durations,
      registry->AddHistogram(
          "fedmi_coordinator_round_duration_seconds",
          "Rounds from opening to their evaluation (outcome evaluated) or failure (failed), "
          "since the audit log began.",
          std::vector<double>(std::begin(kRoundDurationBounds), std::end(kRoundDurationBounds)),
          {"outcome"}));
  auto tally = std::make_shared<AuditTally>(storage, round_durations);
  registry->AddRefresh([tally] { tally->Refresh(); });
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_updates_accepted_total",
      "Site updates the coordinator took, initial models included (audit update.received).", {},
      [tally](MetricSnapshot& snapshot) {
        snapshot.Set({}, static_cast<double>(tally->counts().updates_accepted)).IgnoreError();
      }));
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_updates_received_bytes_total",
      "Bytes of the site updates the coordinator took.", {}, [tally](MetricSnapshot& snapshot) {
        snapshot.Set({}, tally->counts().received_bytes).IgnoreError();
      }));
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_updates_refused_total",
      "Site updates refused, by status code (audit update.refused).", {"code"},
      [tally](MetricSnapshot& snapshot) {
        for (const auto& [code, n] : tally->counts().refused_by_code) {
          snapshot.Set({code}, static_cast<double>(n)).IgnoreError();
        }
      }));

  CoordinatorTransferMetrics transfer;
  ASSIGN_OR_RETURN(transfer.sent_bytes,
                   registry->AddCounter("fedmi_coordinator_sent_bytes_total",
                                        "Bytes of models the coordinator streamed since it "
                                        "started: global models to sites (model_download), "
                                        "exports to admins (model_export).",
                                        {"stream"}));
  for (SentStream stream : {SentStream::kModelDownload, SentStream::kModelExport}) {
    RETURN_IF_ERROR(transfer.sent_bytes->Add({SentStreamName(stream)}, 0));
  }

  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_phase_seconds_total",
      "Thread-seconds the update path spent per phase since the coordinator started "
      "(uploads overlap, so phases may sum to more than wall time).",
      {"phase"}, [federation](MetricSnapshot& snapshot) {
        for (int i = 0; i < kUpdatePhaseCount; ++i) {
          const auto phase = static_cast<UpdatePhase>(i);
          snapshot.Set({UpdatePhaseName(phase)}, federation->phase_times().Seconds(phase))
              .IgnoreError();
        }
      }));
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_audit_entries_total", "Entries in the audit log.", {},
      [storage](MetricSnapshot& snapshot) {
        absl::StatusOr<int64_t> count = storage->CountAudit();
        if (count.ok()) snapshot.Set({}, static_cast<double>(*count)).IgnoreError();
      }));
  return transfer;
}

const char* SentStreamName(SentStream stream) {
  switch (stream) {
    case SentStream::kModelDownload:
      return "model_download";
    case SentStream::kModelExport:
      return "model_export";
  }
  return "unknown";
}

void CountSentBytes(const CoordinatorTransferMetrics* transfer, SentStream stream, size_t bytes) {
  if (transfer == nullptr || transfer->sent_bytes == nullptr) return;
  transfer->sent_bytes->Add({SentStreamName(stream)}, static_cast<double>(bytes)).IgnoreError();
}

}  // namespace fedmi
