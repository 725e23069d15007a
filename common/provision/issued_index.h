// The records a project directory keeps about what it issued: issued.json,
// every party in order of issue, and project.json, where parties reach the
// coordinator once one is provisioned. Both are JSON, read and replaced
// whole through an Env (the write is atomic and durable). Callers hold the
// directory's ProvisionLock while they read, change and write them.
// Thread-compatible free functions; DataLoss for a file that does not parse.
#ifndef FEDMI_COMMON_PROVISION_ISSUED_INDEX_H_
#define FEDMI_COMMON_PROVISION_ISSUED_INDEX_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/env.h"
#include "common/crypto/identity.h"

namespace fedmi {

// One entry of <dir>/issued.json: one certificate. A renewed party has one
// entry per certificate, the newest last.
struct IssuedRecord {
  std::string name;
  PartyRole role;
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
  std::string sha256_fingerprint;
  std::string kit;  // the kit folder, relative to the project directory: "kits/<name>"
  // Set by `fedmi provision revoke` and `renew`: every later CRL lists the
  // serial. Files written before revocation existed have neither key.
  absl::Time revoked_at = absl::InfinitePast();
  std::string revocation_reason;

  bool revoked() const { return revoked_at != absl::InfinitePast(); }
};

// The records in <dir>/issued.json; empty if there is no such file yet.
absl::StatusOr<std::vector<IssuedRecord>> ReadIssuedIndex(Env& env, const std::string& dir);
// Replaces <dir>/issued.json with `records`.
absl::Status WriteIssuedIndex(Env& env, const std::string& dir,
                              const std::vector<IssuedRecord>& records);

// Where parties reach the coordinator, as recorded by add-coordinator.
struct CoordinatorRecord {
  std::string name;
  std::string address;  // host:port
  std::string fingerprint;
  std::string host;  // the parts of `address`, kept for tools
  int port = 0;
};

// The coordinator recorded in <dir>/project.json; nullopt if none yet.
absl::StatusOr<std::optional<CoordinatorRecord>> ReadCoordinatorRecord(Env& env,
                                                                       const std::string& dir);
// Replaces <dir>/project.json.
absl::Status WriteCoordinatorRecord(Env& env, const std::string& dir, const std::string& project,
                                    const CoordinatorRecord& record);

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_ISSUED_INDEX_H_
