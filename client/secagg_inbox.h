// SecAggInbox: holds the secure-aggregation messages the coordinator pushes to
// a site in the middle of a train task (PeerKeys, the relayed ShareBundle)
// until that task takes them. They cannot wait in the task queue: the task
// that needs them is the one running.
//
// It keeps at most one message per (kind, run, round) and, per run, only the
// newest round it has seen (in Put or BeginRound): once the coordinator has
// moved a run on, it will not finish an older round with this site, so older
// messages are dropped and a Wait for an older round ends.
//
// Transport-free and thread-safe: the daemon's reader thread Puts, its worker
// thread Waits, and any thread may Wake the waiter so that it re-checks
// whether to give up (the run was cancelled, the session ended).
#ifndef FEDMI_CLIENT_SECAGG_INBOX_H_
#define FEDMI_CLIENT_SECAGG_INBOX_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

class SecAggInbox {
 public:
  enum class Kind { kPeerKeys, kRelayedShares };

  // Buffers a peer_keys or relayed_shares message. Returns false and keeps
  // nothing for any other kind, for a round older than the newest seen of
  // its run, or for a second message of one kind for the same round.
  bool Put(const v1::CoordinatorMessage& message);

  // A train task for `round` of `run_id` started: drops what is held for
  // older rounds of the run and ends their waits.
  void BeginRound(int64_t run_id, int32_t round);

  // Removes and returns the message of `kind` for `run_id`/`round`, waiting
  // up to `timeout` for it. `abort` is called without the inbox's lock when
  // the wait starts and again after every Wake(); a non-OK status from it
  // ends the wait with that status. DeadlineExceeded naming what was awaited
  // ("no peer keys for run 3 round 2 within 3600 s"); Cancelled if the run
  // moves on to a newer round meanwhile.
  absl::StatusOr<v1::CoordinatorMessage> Wait(Kind kind, int64_t run_id, int32_t round,
                                              absl::Duration timeout,
                                              absl::FunctionRef<absl::Status()> abort);

  // Makes every waiter call its `abort` again.
  void Wake();

  // Drops everything held for `run_id` (cancelled or finished).
  void ForgetRun(int64_t run_id);
  // Drops what is buffered for one round (the coordinator abandoned it; a
  // retry of the same round starts from nothing).
  void ForgetRound(int64_t run_id, int32_t round);
  // Drops every message held (the session that carried them ended); the
  // newest round of each run is remembered.
  void Clear();

  // Messages held.
  size_t size() const;

 private:
  using Key = std::tuple<Kind, int64_t, int32_t>;  // kind, run, round

  // Whether `run_id` has moved past `round`.
  bool Superseded(int64_t run_id, int32_t round) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropBefore(int64_t run_id, int32_t round) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<Key, v1::CoordinatorMessage> messages_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int32_t> newest_round_ ABSL_GUARDED_BY(mu_);  // by run
  uint64_t wakes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SECAGG_INBOX_H_
