#include "coordinator/coordinator_metrics.h"

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/audit/audit_actions.h"
#include "common/base/log.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/runspec/model_task.h"
#include "coordinator/round_manager.h"

namespace fedmi {
namespace {

using metrics::MetricSnapshot;

constexpr RunState kRunStates[] = {RunState::kPending, RunState::kRunning, RunState::kDone,
                                   RunState::kFailed, RunState::kAborted};
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

// Tallies of the audit log's update entries, read incrementally: each render
// reads only the entries appended since the last one. The log is
// append-only, so the tallies only grow, since the log began.
class AuditTally {
 public:
  struct Counts {
    int64_t updates_accepted = 0;
    double received_bytes = 0;
    std::map<std::string, int64_t> refused_by_code;  // "invalid_argument", ...
  };

  explicit AuditTally(Storage* storage) : storage_(storage) {}

  Counts Get() {
    absl::MutexLock lock(&mu_);
    v1::AuditQuery query;
    query.set_after_seq(last_seq_);
    absl::StatusOr<std::vector<v1::AuditEntry>> entries = storage_->ListAudit(query);
    if (!entries.ok()) {
      FEDMI_LOG(WARNING) << "metrics: cannot read the audit log: " << entries.status().message();
      return counts_;
    }
    for (const v1::AuditEntry& entry : *entries) {
      last_seq_ = std::max(last_seq_, entry.seq());
      if (entry.action() == audit::ActionName(audit::Action::kUpdateReceived)) {
        ++counts_.updates_accepted;
        counts_.received_bytes += DetailNumber(entry, "bytes");
      } else if (entry.action() == audit::ActionName(audit::Action::kUpdateRefused)) {
        ++counts_.refused_by_code[RefusalCode(entry)];
      }
    }
    return counts_;
  }

 private:
  static nlohmann::json Detail(const v1::AuditEntry& entry) {
    return nlohmann::json::parse(entry.detail_json(), nullptr, /*allow_exceptions=*/false);
  }
  static double DetailNumber(const v1::AuditEntry& entry, const char* key) {
    const nlohmann::json detail = Detail(entry);
    if (!detail.is_object() || !detail.contains(key) || !detail[key].is_number()) return 0;
    return detail[key].get<double>();
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
  absl::Mutex mu_;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  Counts counts_ ABSL_GUARDED_BY(mu_);
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

absl::Status RegisterCoordinatorMetrics(Federation* federation, Storage* storage,
                                        metrics::MetricRegistry* registry) {
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

  auto tally = std::make_shared<AuditTally>(storage);
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_updates_accepted_total",
      "Site updates the coordinator took, initial models included (audit update.received).", {},
      [tally](MetricSnapshot& snapshot) {
        snapshot.Set({}, static_cast<double>(tally->Get().updates_accepted)).IgnoreError();
      }));
  RETURN_IF_ERROR(registry->AddCounterCollector(
      "fedmi_coordinator_updates_received_bytes_total",
      "Bytes of the site updates the coordinator took.", {}, [tally](MetricSnapshot& snapshot) {
        snapshot.Set({}, tally->Get().received_bytes).IgnoreError();
      }));
  RETURN_IF_ERROR(
      registry->AddCounterCollector("fedmi_coordinator_updates_refused_total",
                                    "Site updates refused, by status code (audit update.refused).",
                                    {"code"}, [tally](MetricSnapshot& snapshot) {
                                      for (const auto& [code, n] : tally->Get().refused_by_code) {
                                        snapshot.Set({code}, static_cast<double>(n)).IgnoreError();
                                      }
                                    }));

  return registry->AddCounterCollector(
      "fedmi_coordinator_audit_entries_total", "Entries in the audit log.", {},
      [storage](MetricSnapshot& snapshot) {
        absl::StatusOr<int64_t> count = storage->CountAudit();
        if (count.ok()) snapshot.Set({}, static_cast<double>(*count)).IgnoreError();
      });
}

}  // namespace fedmi
