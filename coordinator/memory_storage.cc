// MemoryStorage: the in-memory fake of Storage, for tests. It follows the
// same contract as SqliteStorage (the conformance suite checks both) but
// forgets everything when destroyed.
//
// Thread-safe: one mutex guards all state. Each method validates everything
// it needs before it changes anything, which makes it atomic.
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status.h"
#include "coordinator/storage.h"
#include "coordinator/storage_validation.h"

namespace fedmi {
namespace {

using storage_internal::EvaluatedState;
using storage_internal::RoundAlreadyCommitted;
using storage_internal::RoundNotFound;
using storage_internal::RunNotFound;

using RoundKey = std::pair<int64_t, int32_t>;
using ParticipationKey = std::tuple<int64_t, int32_t, std::string>;

ParticipationKey KeyOf(const ParticipationRecord& record) {
  return {record.run_id, record.round, record.site};
}

class MemoryStorage : public Storage {
 public:
  absl::Status UpsertSite(const SiteRecord& site) override {
    if (site.name.empty()) {
      return absl::InvalidArgumentError("upsert site: site name is empty");
    }
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = sites_.emplace(site.name, site);
    if (!inserted) {
      const SiteRecord previous = it->second;
      it->second = site;
      it->second.registered_at = previous.registered_at;
      if (previous.revoked()) {
        it->second.revoked_at = previous.revoked_at;
        it->second.revoked_by = previous.revoked_by;
        it->second.revocation_reason = previous.revocation_reason;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SiteRecord>> ListSites() override {
    absl::MutexLock lock(&mu_);
    std::vector<SiteRecord> sites;
    for (const auto& [name, site] : sites_) sites.push_back(site);
    return sites;
  }

  absl::Status AddRevocation(const RevocationRecord& revocation) override {
    RETURN_IF_ERROR(storage_internal::ValidateRevocation(revocation));
    absl::MutexLock lock(&mu_);
    if (!revocations_.emplace(revocation.name, revocation).second) {
      return storage_internal::RevocationExists(revocation.name);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RevocationRecord>> ListRevocations() override {
    absl::MutexLock lock(&mu_);
    std::vector<RevocationRecord> revocations;
    for (const auto& [name, revocation] : revocations_) revocations.push_back(revocation);
    return revocations;
  }

  absl::StatusOr<int64_t> CreateRun(const RunRecord& run) override {
    absl::MutexLock lock(&mu_);
    RunRecord stored = run;
    stored.id = next_run_id_++;
    if (stored.spec_sha256.empty()) {
      stored.spec_sha256 = storage_internal::SpecSha256Hex(stored.spec);
    }
    runs_.emplace(stored.id, stored);
    return stored.id;
  }

  absl::StatusOr<RunRecord> GetRun(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return RunNotFound(run_id);
    return it->second;
  }

  absl::StatusOr<std::vector<RunRecord>> ListRuns() override {
    absl::MutexLock lock(&mu_);
    std::vector<RunRecord> runs;
    for (const auto& [id, run] : runs_) runs.push_back(run);
    return runs;
  }

  absl::Status SetRunState(int64_t run_id, RunState state, const std::string& error,
                           double finished_at) override {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return RunNotFound(run_id);
    it->second.state = state;
    it->second.error = error;
    it->second.finished_at = finished_at;
    return absl::OkStatus();
  }

  absl::Status CommitRound(const RoundCommit& commit) override {
    RETURN_IF_ERROR(storage_internal::ValidateRoundCommit(commit));
    const RoundRecord& round = commit.round;
    absl::MutexLock lock(&mu_);
    auto run = runs_.find(round.run_id);
    if (run == runs_.end()) return RunNotFound(round.run_id);
    const RoundKey key{round.run_id, round.round};
    if (rounds_.count(key) > 0) return RoundAlreadyCommitted(round.run_id, round.round);

    rounds_.emplace(key, round);
    for (const ParticipationRecord& participation : commit.participations) {
      participations_[KeyOf(participation)] = participation;
    }
    if (commit.run_state.has_value()) {
      run->second.state = *commit.run_state;
      run->second.error = commit.run_error;
      if (IsTerminal(*commit.run_state)) {
        run->second.finished_at = round.finished_at;
      }
    }
    return absl::OkStatus();
  }

  absl::Status RecordEvaluation(int64_t run_id, int32_t round, const v1::Metrics& aggregate,
                                const std::vector<ParticipationRecord>& per_site,
                                double finished_at) override {
    RETURN_IF_ERROR(storage_internal::ValidateEvaluation(run_id, round, per_site));
    absl::MutexLock lock(&mu_);
    if (runs_.count(run_id) == 0) return RunNotFound(run_id);
    auto stored = rounds_.find({run_id, round});
    if (stored == rounds_.end()) return RoundNotFound(run_id, round);

    stored->second.eval_metrics = aggregate;
    stored->second.state = RoundState::kEvaluated;
    stored->second.finished_at = finished_at;
    for (const ParticipationRecord& site : per_site) {
      auto [it, inserted] = participations_.emplace(KeyOf(site), site);
      ParticipationRecord& row = it->second;
      if (!inserted) {
        // A site that trained this round keeps its training columns.
        row.eval_metrics = site.eval_metrics;
        if (!site.detail.empty()) row.detail = site.detail;
      }
      row.state = EvaluatedState(site);
    }
    return absl::OkStatus();
  }

  absl::Status RecordParticipation(const ParticipationRecord& record) override {
    RETURN_IF_ERROR(storage_internal::ValidateParticipation(record));
    absl::MutexLock lock(&mu_);
    if (runs_.count(record.run_id) == 0) return RunNotFound(record.run_id);
    participations_[KeyOf(record)] = record;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RoundRecord>> ListRounds(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    if (runs_.count(run_id) == 0) return RunNotFound(run_id);
    std::vector<RoundRecord> rounds;
    for (auto it = rounds_.lower_bound({run_id, std::numeric_limits<int32_t>::min()});
         it != rounds_.end() && it->first.first == run_id; ++it) {
      rounds.push_back(it->second);
    }
    return rounds;
  }

  absl::StatusOr<std::vector<ParticipationRecord>> ListParticipations(int64_t run_id) override {
    absl::MutexLock lock(&mu_);
    if (runs_.count(run_id) == 0) return RunNotFound(run_id);
    std::vector<ParticipationRecord> rows;
    for (auto it = participations_.lower_bound(
             {run_id, std::numeric_limits<int32_t>::min(), std::string()});
         it != participations_.end() && std::get<0>(it->first) == run_id; ++it) {
      rows.push_back(it->second);
    }
    return rows;
  }

  absl::StatusOr<std::set<std::string>> ReferencedModels() override {
    absl::MutexLock lock(&mu_);
    std::set<std::string> models;
    for (const auto& [key, round] : rounds_) {
      models.insert(round.model_sha256);
      if (!round.server_state_sha256.empty()) models.insert(round.server_state_sha256);
    }
    return models;
  }

  absl::Status AppendAudit(const v1::AuditEntry& entry, const StoredAuditHead& head) override {
    RETURN_IF_ERROR(storage_internal::ValidateAuditAppend(entry, head));
    absl::MutexLock lock(&mu_);
    if (audit_.count(entry.seq()) > 0) return storage_internal::AuditEntryExists(entry.seq());
    audit_[entry.seq()] = entry;
    audit_head_ = head;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(const v1::AuditQuery& query) override {
    return ListAuditUpTo(query, audit_.size());
  }
  absl::StatusOr<std::vector<v1::AuditEntry>> ListAuditPage(const v1::AuditQuery& query,
                                                            int limit) override {
    RETURN_IF_ERROR(storage_internal::CheckAuditPageLimit(limit));
    return ListAuditUpTo(query, static_cast<size_t>(limit));
  }
  std::vector<v1::AuditEntry> ListAuditUpTo(const v1::AuditQuery& query, size_t limit) {
    absl::MutexLock lock(&mu_);
    std::vector<v1::AuditEntry> entries;
    for (auto it = audit_.upper_bound(query.after_seq());
         it != audit_.end() && entries.size() < limit; ++it) {
      if (storage_internal::AuditEntryMatches(it->second, query)) entries.push_back(it->second);
    }
    return entries;
  }

  absl::StatusOr<v1::AuditEntry> LastAuditEntry() override {
    absl::MutexLock lock(&mu_);
    if (audit_.empty()) return absl::NotFoundError("the audit log is empty");
    return audit_.rbegin()->second;
  }

  absl::StatusOr<StoredAuditHead> GetAuditHead() override {
    absl::MutexLock lock(&mu_);
    if (!audit_head_.has_value()) return absl::NotFoundError("the audit log has no head");
    return *audit_head_;
  }

  absl::StatusOr<int64_t> CountAudit() override {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(audit_.size());
  }

 private:
  absl::Mutex mu_;
  // Ordered maps give the orders the contract promises: sites and
  // revocations by name, runs by id, rounds ascending, participations by
  // (round, site).
  std::map<std::string, SiteRecord> sites_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RevocationRecord> revocations_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, RunRecord> runs_ ABSL_GUARDED_BY(mu_);
  std::map<RoundKey, RoundRecord> rounds_ ABSL_GUARDED_BY(mu_);
  std::map<ParticipationKey, ParticipationRecord> participations_ ABSL_GUARDED_BY(mu_);
  int64_t next_run_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, v1::AuditEntry> audit_ ABSL_GUARDED_BY(mu_);
  std::optional<StoredAuditHead> audit_head_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Storage> NewMemoryStorage() { return std::make_unique<MemoryStorage>(); }

}  // namespace fedmi
