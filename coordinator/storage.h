// Durable coordinator state: sites, runs, rounds, per-site participation
// and the revocations of admins and auditors.
//
// Two implementations share one conformance suite
// (tests/coordinator/storage_conformance.h): SqliteStorage for real use and
// MemoryStorage as a fake for tests. Model tensors are not stored here but in
// a ModelStore; rounds refer to them by SHA-256.
//
// Implementations are thread-safe. Every method is atomic: it either applies
// completely or returns an error and changes nothing.
#ifndef FEDMI_COORDINATOR_STORAGE_H_
#define FEDMI_COORDINATOR_STORAGE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/names.h"
#include "common/crypto/identity.h"
#include "fedmi/v1/audit.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

struct SiteRecord {
  std::string name;
  double registered_at = 0;  // unix seconds
  double last_seen = 0;
  int64_t train_examples = 0;
  int64_t val_examples = 0;
  double certificate_expires = 0;  // unix seconds; 0 when unknown (insecure transport)
  // Revocation is sticky: once revoked_at is set, later upserts keep all three.
  double revoked_at = 0;
  std::string revoked_by;
  std::string revocation_reason;

  bool revoked() const { return revoked_at > 0; }
};

// A party revoked by name: every later call with a certificate whose CN is
// `name` is refused. Sites keep theirs in SiteRecord (`fedmi site list`
// shows it there); this holds admins and auditors.
struct RevocationRecord {
  std::string name;
  PartyRole role = PartyRole::kAdmin;  // what the revoking admin said it holds
  double revoked_at = 0;               // unix seconds
  std::string revoked_by;
  std::string reason;
};

struct RunRecord {
  int64_t id = 0;  // assigned by CreateRun
  v1::RunSpec spec;
  std::string spec_sha256;  // hex
  RunState state = RunState::kPending;
  std::string error;
  double created_at = 0;
  double finished_at = 0;
};

// Round 0 is the initial model. A round is stored once its aggregate is
// committed (kCommitted); RecordEvaluation moves it to kEvaluated.
struct RoundRecord {
  int64_t run_id = 0;
  int32_t round = 0;
  std::string model_sha256;  // hex; names the model in the ModelStore
  RoundState state = RoundState::kCommitted;
  v1::Metrics eval_metrics;  // example-weighted over sites
  double started_at = 0;
  double finished_at = 0;
  // Site-level DP with adaptive clipping: the clip S of the next round,
  // fixed (from a noised count) when this round committed. 0: none.
  double dp_next_clip_norm = 0;
  // The server optimizer's state after this round (RunSpec.server_optimizer;
  // a bundle in the ModelStore, hex SHA-256). Empty: none (fedavg).
  std::string server_state_sha256;
};

// A stored participation is kUploaded (update aggregated), kEvaluated,
// kDropped or kRefused.
struct ParticipationRecord {
  int64_t run_id = 0;
  int32_t round = 0;
  std::string site;
  int64_t examples = 0;
  v1::Metrics train_metrics;
  v1::Metrics eval_metrics;
  std::string update_sha256;  // hex, of the update as received
  ParticipationState state = ParticipationState::kUploaded;
  std::string detail;  // reason for dropped/refused
};

// The audit log's signed head and the certificate of the key that signs it.
struct StoredAuditHead {
  v1::AuditHead head;
  std::string signer_certificate_pem;  // empty for an unsigned log (--insecure)
};

// Everything one round commit changes, applied in one transaction.
struct RoundCommit {
  RoundRecord round;
  std::vector<ParticipationRecord> participations;
  // When set, the run's state moves to this value in the same transaction.
  std::optional<RunState> run_state;
  std::string run_error;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Inserts or updates by name; registered_at is kept from the first insert,
  // and a revocation, once stored, is never undone.
  virtual absl::Status UpsertSite(const SiteRecord& site) = 0;
  virtual absl::StatusOr<std::vector<SiteRecord>> ListSites() = 0;

  // Stores a revocation for good: there is no way to undo one. AlreadyExists
  // "'bob' is already revoked" when `name` is; InvalidArgument for an empty
  // name or revoked_at <= 0.
  virtual absl::Status AddRevocation(const RevocationRecord& revocation) = 0;
  // Every stored revocation, by name.
  virtual absl::StatusOr<std::vector<RevocationRecord>> ListRevocations() = 0;

  // Stores a new run and returns its id (1, 2, ...). An empty spec_sha256 is
  // filled with the SHA-256 (hex) of the serialized spec.
  virtual absl::StatusOr<int64_t> CreateRun(const RunRecord& run) = 0;
  // NotFound "run 7 does not exist" for an unknown id.
  virtual absl::StatusOr<RunRecord> GetRun(int64_t run_id) = 0;
  // Runs in id order.
  virtual absl::StatusOr<std::vector<RunRecord>> ListRuns() = 0;
  // NotFound for an unknown run.
  virtual absl::Status SetRunState(int64_t run_id, RunState state, const std::string& error,
                                   double finished_at) = 0;

  // Fails with AlreadyExists if the round is already stored, so a round can
  // never be applied twice. NotFound for an unknown run; InvalidArgument when
  // model_sha256 is not 64 lower-case hex digits, or a participation names
  // another run or round, an empty site, or a site twice. Participation rows
  // replace earlier rows of the same (run, round, site). A terminal run_state
  // (IsTerminal) also sets the run's finished_at to the
  // round's finished_at.
  virtual absl::Status CommitRound(const RoundCommit& commit) = 0;
  // Stores evaluation results of a committed round: the aggregate, and per
  // site an upsert of its participation row (kEvaluated or as given). An
  // existing row keeps its training columns (examples, train_metrics,
  // update_sha256); a given state of kUploaded (the default) is stored as
  // kEvaluated. Each row must name (run_id, round). NotFound for an unknown
  // run or round.
  virtual absl::Status RecordEvaluation(int64_t run_id, int32_t round, const v1::Metrics& aggregate,
                                        const std::vector<ParticipationRecord>& per_site,
                                        double finished_at) = 0;
  // Records one participation row outside a commit (refusals, drops),
  // replacing any row of the same (run, round, site). NotFound for an unknown
  // run; the round need not be committed yet.
  virtual absl::Status RecordParticipation(const ParticipationRecord& record) = 0;

  // Rounds of a run in ascending order (including round 0); NotFound for an
  // unknown run.
  virtual absl::StatusOr<std::vector<RoundRecord>> ListRounds(int64_t run_id) = 0;
  // Ordered by (round, site); NotFound for an unknown run.
  virtual absl::StatusOr<std::vector<ParticipationRecord>> ListParticipations(int64_t run_id) = 0;

  // SHA-256 (hex) of every model some round refers to (not update hashes).
  virtual absl::StatusOr<std::set<std::string>> ReferencedModels() = 0;

  // --- Audit log (coordinator/audit_log.h) ---------------------------------
  // Appends `entry` and replaces the head, in one transaction. AlreadyExists
  // if an entry with the same seq is stored. Entries are never updated or
  // deleted through this interface. Unlike the other writes, an append may
  // reach the disk only with the next of them (SQLite: no fsync of its own),
  // so it survives a process crash at once and a power loss with the next
  // round commit.
  virtual absl::Status AppendAudit(const v1::AuditEntry& entry, const StoredAuditHead& head) = 0;
  // Entries in seq order: all of them, or those of query.run_id (when not 0)
  // with seq > query.after_seq and time >= query.since (unix seconds).
  virtual absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(const v1::AuditQuery& query) = 0;
  // The first `limit` (> 0) of the entries ListAudit(query) lists: a long
  // log read in steps of bounded memory, each holding the storage's lock
  // only briefly (the next step's query.after_seq is the last seq read).
  virtual absl::StatusOr<std::vector<v1::AuditEntry>> ListAuditPage(const v1::AuditQuery& query,
                                                                    int limit) = 0;
  // The entry with the highest seq; NotFound when the log is empty.
  virtual absl::StatusOr<v1::AuditEntry> LastAuditEntry() = 0;
  // NotFound when no head was ever stored.
  virtual absl::StatusOr<StoredAuditHead> GetAuditHead() = 0;
  virtual absl::StatusOr<int64_t> CountAudit() = 0;
};

// SQLite in WAL mode at `path` (created with its schema when missing).
absl::StatusOr<std::unique_ptr<Storage>> OpenSqliteStorage(const std::string& path);
std::unique_ptr<Storage> NewMemoryStorage();

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_STORAGE_H_
