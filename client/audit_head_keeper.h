// AuditHeadKeeper: keeps the audit log's signed heads that reach a site with
// its tasks and receipts, as evidence of the log the coordinator showed it
// (docs/audit.md). Each distinct head becomes one file in a heads/ folder
// next to the receipts (audit::HeldHeadFileName, written once, never
// replaced), which `fedmi audit verify --receipts` checks against an export.
//
// A head is kept only when its signer is an audit signer of the project CA
// and its signature holds; otherwise it proves nothing. Keep reports a
// violation when a head's seq goes backwards (the log shrank: restored from a
// backup, or rewritten) or when two signed heads name one seq with different
// hashes (the coordinator showed two logs). Such heads are kept all the same:
// they are the evidence.
//
// Thread-compatible: the site's task thread calls Keep. Files go through the
// Env; the CA certificate is read at the first Keep.
#ifndef FEDMI_CLIENT_AUDIT_HEAD_KEEPER_H_
#define FEDMI_CLIENT_AUDIT_HEAD_KEEPER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/base/clock.h"
#include "common/base/env.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi {

class AuditHeadKeeper {
 public:
  // What carried a head. Tasks arrive in order on the control stream and
  // receipts in order on their own calls, but the two channels interleave
  // freely, so "backwards" is judged per channel.
  enum class Channel { kTask, kReceipt };

  // `heads_dir` empty: heads are neither checked nor kept (no receipts
  // folder, or a site without TLS, which has no CA to check them with).
  AuditHeadKeeper(std::string heads_dir, std::string ca_file, Env& env, const Clock& clock);

  // Checks and keeps `head`, which came with `via` ("train task run 1 round
  // 4"). OK when it was kept or there is nothing to keep (no head: the
  // coordinator has no audit key); FailedPrecondition naming the violation
  // (a bad signer or signature, a seq that goes backwards, a second hash for
  // one seq); the Env's error if the file cannot be written.
  absl::Status Keep(const v1::SignedAuditHead& head, Channel channel, const std::string& via);

 private:
  absl::Status LoadHeld();

  const std::string heads_dir_;
  const std::string ca_file_;
  Env& env_;
  const Clock& clock_;
  bool loaded_ = false;
  std::string ca_pem_;
  std::map<int64_t, std::set<std::string>> held_;  // seq -> hashes of heads kept
  std::map<Channel, int64_t> newest_;              // newest seq seen on each channel
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_AUDIT_HEAD_KEEPER_H_
