#include "coordinator/storage_validation.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/crypto/sha256.h"

namespace fedmi {
namespace storage_internal {
namespace {

absl::Status CheckRowNamesRound(const ParticipationRecord& record, int64_t run_id, int32_t round,
                                absl::string_view operation) {
  if (record.site.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(operation, ": participation row has an empty site name"));
  }
  if (record.run_id != run_id || record.round != round) {
    return absl::InvalidArgumentError(absl::StrCat(
        operation, ": participation of site '", record.site, "' names run ", record.run_id,
        " round ", record.round, ", expected run ", run_id, " round ", round));
  }
  return absl::OkStatus();
}

absl::Status CheckRows(int64_t run_id, int32_t round, const std::vector<ParticipationRecord>& rows,
                       absl::string_view operation) {
  std::set<std::string> sites;
  for (const ParticipationRecord& row : rows) {
    absl::Status status = CheckRowNamesRound(row, run_id, round, operation);
    if (!status.ok()) return status;
    if (!sites.insert(row.site).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          operation, ": site '", row.site, "' appears twice in round ", round, " of run ", run_id));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SpecSha256Hex(const v1::RunSpec& spec) {
  return HexEncode(Sha256::Digest(spec.SerializeAsString()));
}

bool IsSha256Hex(absl::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status RunNotFound(int64_t run_id) {
  return absl::NotFoundError(absl::StrCat("run ", run_id, " does not exist"));
}

absl::Status RoundNotFound(int64_t run_id, int32_t round) {
  return absl::NotFoundError(absl::StrCat("round ", round, " of run ", run_id, " does not exist"));
}

absl::Status RoundAlreadyCommitted(int64_t run_id, int32_t round) {
  return absl::AlreadyExistsError(
      absl::StrCat("round ", round, " of run ", run_id, " is already committed"));
}

absl::Status ValidateRoundCommit(const RoundCommit& commit) {
  const RoundRecord& round = commit.round;
  if (round.round < 0) {
    return absl::InvalidArgumentError(absl::StrCat("commit round: round number ", round.round,
                                                   " of run ", round.run_id, " is negative"));
  }
  if (!IsSha256Hex(round.model_sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("commit round: model_sha256 of round ", round.round, " of run ", round.run_id,
                     " is '", round.model_sha256, "', expected 64 lower-case hex digits"));
  }
  if (!round.server_state_sha256.empty() && !IsSha256Hex(round.server_state_sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "commit round: server_state_sha256 of round ", round.round, " of run ", round.run_id,
        " is '", round.server_state_sha256, "', expected empty or 64 lower-case hex digits"));
  }
  if (!(round.dp_next_clip_norm >= 0) || !std::isfinite(round.dp_next_clip_norm)) {
    return absl::InvalidArgumentError(absl::StrCat("commit round: the next clip of round ",
                                                   round.round, " of run ", round.run_id, " is ",
                                                   round.dp_next_clip_norm));
  }
  return CheckRows(round.run_id, round.round, commit.participations, "commit round");
}

absl::Status ValidateEvaluation(int64_t run_id, int32_t round,
                                const std::vector<ParticipationRecord>& per_site) {
  return CheckRows(run_id, round, per_site, "record evaluation");
}

absl::Status ValidateParticipation(const ParticipationRecord& record) {
  return CheckRowNamesRound(record, record.run_id, record.round, "record participation");
}

ParticipationState EvaluatedState(const ParticipationRecord& record) {
  return record.state == ParticipationState::kUploaded ? ParticipationState::kEvaluated
                                                       : record.state;
}

absl::Status ValidateAuditAppend(const v1::AuditEntry& entry, const StoredAuditHead& head) {
  if (entry.seq() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit entry seq must be at least 1, got ", entry.seq()));
  }
  if (!IsSha256Hex(entry.hash()) || !IsSha256Hex(entry.prev_hash())) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit entry ", entry.seq(), ": hash and prev_hash must be SHA-256 hex"));
  }
  if (head.head.seq() != entry.seq() || head.head.hash() != entry.hash()) {
    return absl::InvalidArgumentError(absl::StrCat("audit head names entry ", head.head.seq(),
                                                   ", not the appended entry ", entry.seq()));
  }
  return absl::OkStatus();
}

absl::Status ValidateRevocation(const RevocationRecord& revocation) {
  if (revocation.name.empty()) return absl::InvalidArgumentError("revocation names no party");
  if (revocation.revoked_at <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("revocation of '", revocation.name, "' has no time"));
  }
  return absl::OkStatus();
}

absl::Status RevocationExists(const std::string& name) {
  return absl::AlreadyExistsError(absl::StrCat("'", name, "' is already revoked"));
}

absl::Status AuditEntryExists(int64_t seq) {
  return absl::AlreadyExistsError(absl::StrCat("audit entry ", seq, " is already stored"));
}

std::string AuditTimeLowerBound(double since) {
  if (since <= 0) return "";
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ",
                          absl::FromUnixMicros(static_cast<int64_t>(std::ceil(since * 1e6))),
                          absl::UTCTimeZone());
}

absl::Status CheckAuditPageLimit(int limit) {
  if (limit > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("an audit page holds at least one entry; asked for ", limit));
}

bool AuditEntryMatches(const v1::AuditEntry& entry, const v1::AuditQuery& query) {
  if (query.run_id() != 0 && entry.run_id() != query.run_id()) return false;
  if (entry.seq() <= query.after_seq()) return false;
  return entry.time() >= AuditTimeLowerBound(query.since());
}

}  // namespace storage_internal
}  // namespace fedmi
