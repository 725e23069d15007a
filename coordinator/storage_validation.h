// Checks and error messages shared by every Storage backend, so that SQLite
// and the in-memory fake refuse the same inputs with the same words (the
// conformance suite in tests/coordinator/storage_conformance.h holds them to
// it). Internal to coordinator/; not part of the Storage contract.
//
// Stateless functions; thread-safe.
#ifndef FEDMI_COORDINATOR_STORAGE_VALIDATION_H_
#define FEDMI_COORDINATOR_STORAGE_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/storage.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {
namespace storage_internal {

// Lower-case hex SHA-256 of the spec's serialization (RunSpec has no map
// fields, so the serialization is deterministic).
std::string SpecSha256Hex(const v1::RunSpec& spec);

// True for exactly 64 lower-case hex digits, the form HexEncode produces.
bool IsSha256Hex(absl::string_view hex);

// NotFound "run 7 does not exist".
absl::Status RunNotFound(int64_t run_id);
// NotFound "round 3 of run 7 does not exist".
absl::Status RoundNotFound(int64_t run_id, int32_t round);
// AlreadyExists "round 3 of run 7 is already committed".
absl::Status RoundAlreadyCommitted(int64_t run_id, int32_t round);

// Checks what can be checked without the stored state: the model reference
// is a SHA-256, each participation names the committed round and a site, and
// no site appears twice.
absl::Status ValidateRoundCommit(const RoundCommit& commit);

// Checks that each per-site row names (run_id, round) and a site, and that no
// site appears twice.
absl::Status ValidateEvaluation(int64_t run_id, int32_t round,
                                const std::vector<ParticipationRecord>& per_site);

// Checks that a standalone participation row names a site.
absl::Status ValidateParticipation(const ParticipationRecord& record);

// The state RecordEvaluation stores for a per-site row: kEvaluated unless the
// caller gave something other than the default kUploaded (e.g. kDropped for
// a site whose evaluation failed).
ParticipationState EvaluatedState(const ParticipationRecord& record);

// Checks an audit entry before it is stored: seq >= 1, hashes are SHA-256
// hex, and the head names this entry.
absl::Status ValidateAuditAppend(const v1::AuditEntry& entry, const StoredAuditHead& head);

// InvalidArgument for a revocation without a name or a time.
absl::Status ValidateRevocation(const RevocationRecord& revocation);
// AlreadyExists "'bob' is already revoked".
absl::Status RevocationExists(const std::string& name);

// AlreadyExists "audit entry 7 is already stored".
absl::Status AuditEntryExists(int64_t seq);

// The smallest entry time (RFC 3339 text, which sorts as time does) that
// AuditQuery.since admits; "" for since <= 0.
std::string AuditTimeLowerBound(double since);

// InvalidArgument unless `limit` (of Storage::ListAuditPage) is positive.
absl::Status CheckAuditPageLimit(int limit);

// Whether a stored entry passes `query` (run, after_seq, since).
bool AuditEntryMatches(const v1::AuditEntry& entry, const v1::AuditQuery& query);

}  // namespace storage_internal
}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_STORAGE_VALIDATION_H_
