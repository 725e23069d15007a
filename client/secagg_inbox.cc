#include "client/secagg_inbox.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

const char* KindName(SecAggInbox::Kind kind) {
  return kind == SecAggInbox::Kind::kPeerKeys ? "peer keys" : "relayed shares";
}

}  // namespace

bool SecAggInbox::Put(const v1::CoordinatorMessage& message) {
  Kind kind;
  int64_t run_id;
  int32_t round;
  if (message.has_peer_keys()) {
    kind = Kind::kPeerKeys;
    run_id = message.peer_keys().run_id();
    round = message.peer_keys().round();
  } else if (message.has_relayed_shares()) {
    kind = Kind::kRelayedShares;
    run_id = message.relayed_shares().run_id();
    round = message.relayed_shares().round();
  } else {
    return false;
  }
  absl::MutexLock lock(&mu_);
  if (Superseded(run_id, round)) return false;
  DropBefore(run_id, round);
  return messages_.emplace(Key{kind, run_id, round}, message).second;
}

void SecAggInbox::BeginRound(int64_t run_id, int32_t round) {
  absl::MutexLock lock(&mu_);
  DropBefore(run_id, round);
}

absl::StatusOr<v1::CoordinatorMessage> SecAggInbox::Wait(Kind kind, int64_t run_id, int32_t round,
                                                         absl::Duration timeout,
                                                         absl::FunctionRef<absl::Status()> abort) {
  const absl::Time deadline = absl::Now() + timeout;
  const Key key{kind, run_id, round};
  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = messages_.find(key);
    if (it != messages_.end()) {
      v1::CoordinatorMessage message = std::move(it->second);
      messages_.erase(it);
      return message;
    }
    if (Superseded(run_id, round)) {
      return absl::CancelledError(absl::StrCat("run ", run_id, " moved on to round ",
                                               newest_round_[run_id], " while this site awaited ",
                                               KindName(kind), " for round ", round));
    }
    // `abort` may take the caller's own locks, so it runs without ours. A
    // Wake() while it runs bumps wakes_ past `seen`, so it is not lost.
    const uint64_t seen = wakes_;
    mu_.Unlock();
    absl::Status aborted = abort();
    mu_.Lock();
    if (!aborted.ok()) return aborted;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return messages_.count(key) > 0 || wakes_ != seen || Superseded(run_id, round);
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
      return absl::DeadlineExceededError(absl::StrCat("no ", KindName(kind), " for run ", run_id,
                                                      " round ", round, " within ",
                                                      absl::ToDoubleSeconds(timeout), " s"));
    }
  }
}

void SecAggInbox::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakes_;
}

void SecAggInbox::ForgetRun(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  for (auto it = messages_.begin(); it != messages_.end();) {
    it = std::get<1>(it->first) == run_id ? messages_.erase(it) : std::next(it);
  }
  newest_round_.erase(run_id);
}

void SecAggInbox::ForgetRound(int64_t run_id, int32_t round) {
  absl::MutexLock lock(&mu_);
  for (auto it = messages_.begin(); it != messages_.end();) {
    const bool match = std::get<1>(it->first) == run_id && std::get<2>(it->first) == round;
    it = match ? messages_.erase(it) : std::next(it);
  }
}

void SecAggInbox::Clear() {
  absl::MutexLock lock(&mu_);
  messages_.clear();
}

size_t SecAggInbox::size() const {
  absl::MutexLock lock(&mu_);
  return messages_.size();
}

bool SecAggInbox::Superseded(int64_t run_id, int32_t round) const {
  auto it = newest_round_.find(run_id);
  return it != newest_round_.end() && it->second > round;
}

void SecAggInbox::DropBefore(int64_t run_id, int32_t round) {
  int32_t& newest = newest_round_.try_emplace(run_id, round).first->second;
  if (round <= newest) return;
  newest = round;
  for (auto it = messages_.begin(); it != messages_.end();) {
    const bool older = std::get<1>(it->first) == run_id && std::get<2>(it->first) < round;
    it = older ? messages_.erase(it) : std::next(it);
  }
}

}  // namespace fedmi
