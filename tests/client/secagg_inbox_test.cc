#include "client/secagg_inbox.h"

#include <atomic>
#include <thread>

#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using Kind = SecAggInbox::Kind;

constexpr absl::Duration kShort = absl::Milliseconds(50);
// Long enough that a test only finishes in time if the waiter was woken.
constexpr absl::Duration kLong = absl::Seconds(60);

v1::CoordinatorMessage PeerKeys(int64_t run_id, int32_t round) {
  v1::CoordinatorMessage message;
  message.mutable_peer_keys()->set_run_id(run_id);
  message.mutable_peer_keys()->set_round(round);
  return message;
}

v1::CoordinatorMessage RelayedShares(int64_t run_id, int32_t round) {
  v1::CoordinatorMessage message;
  message.mutable_relayed_shares()->set_run_id(run_id);
  message.mutable_relayed_shares()->set_round(round);
  return message;
}

absl::Status NeverAbort() { return absl::OkStatus(); }

TEST(SecAggInboxTest, ReturnsABufferedMessageAndRemovesIt) {
  SecAggInbox inbox;
  v1::CoordinatorMessage sent = PeerKeys(3, 2);
  sent.mutable_peer_keys()->set_graph_seed("seed");
  ASSERT_TRUE(inbox.Put(sent));
  ASSERT_TRUE(inbox.Put(RelayedShares(3, 2)));

  absl::StatusOr<v1::CoordinatorMessage> got = inbox.Wait(Kind::kPeerKeys, 3, 2, kLong, NeverAbort);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->peer_keys().graph_seed(), "seed");
  EXPECT_EQ(inbox.size(), 1u);
  EXPECT_THAT(inbox.Wait(Kind::kRelayedShares, 3, 2, kLong, NeverAbort), IsOk());
  EXPECT_EQ(inbox.size(), 0u);
}

TEST(SecAggInboxTest, DoesNotReturnAMessageForAnotherRoundRunOrKind) {
  SecAggInbox inbox;
  ASSERT_TRUE(inbox.Put(PeerKeys(3, 3)));       // a later round
  ASSERT_TRUE(inbox.Put(PeerKeys(4, 2)));       // another run
  ASSERT_TRUE(inbox.Put(RelayedShares(5, 2)));  // another kind

  EXPECT_THAT(inbox.Wait(Kind::kPeerKeys, 5, 2, kShort, NeverAbort),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("run 5 round 2")));
  EXPECT_THAT(inbox.Wait(Kind::kRelayedShares, 4, 2, kShort, NeverAbort),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("run 4 round 2")));
  EXPECT_EQ(inbox.size(), 3u);
}

TEST(SecAggInboxTest, TimeoutNamesWhatWasAwaited) {
  SecAggInbox inbox;
  EXPECT_THAT(inbox.Wait(Kind::kPeerKeys, 3, 2, absl::Milliseconds(20), NeverAbort),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       HasSubstr("no peer keys for run 3 round 2 within 0.02 s")));
  EXPECT_THAT(inbox.Wait(Kind::kRelayedShares, 3, 2, absl::Milliseconds(20), NeverAbort),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("no relayed shares")));
}

TEST(SecAggInboxTest, MessageFromAnotherThreadWakesTheWaiter) {
  SecAggInbox inbox;
  absl::StatusOr<v1::CoordinatorMessage> got;
  std::thread waiter([&] { got = inbox.Wait(Kind::kRelayedShares, 3, 2, kLong, NeverAbort); });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(inbox.Put(RelayedShares(3, 2)));
  waiter.join();
  EXPECT_THAT(got, IsOk());
  EXPECT_LT(absl::Now() - start, kLong / 2);
}

TEST(SecAggInboxTest, WakeMakesTheWaiterAbortFromAnotherThread) {
  SecAggInbox inbox;
  std::atomic<int> checks{0};
  std::atomic<bool> session_lost{false};
  auto abort = [&]() -> absl::Status {
    ++checks;
    return session_lost ? absl::UnavailableError("session ended") : absl::OkStatus();
  };
  absl::StatusOr<v1::CoordinatorMessage> got;
  const absl::Time start = absl::Now();
  std::thread waiter([&] { got = inbox.Wait(Kind::kPeerKeys, 3, 2, kLong, abort); });
  // The waiter checks once when it starts waiting; abort only after that, so
  // only the Wake() can make it check again.
  while (checks == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  session_lost = true;
  inbox.Wake();
  waiter.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("session ended")));
  EXPECT_EQ(checks, 2);
  EXPECT_LT(absl::Now() - start, kLong / 2);
}

TEST(SecAggInboxTest, AbortBeforeWaitingReturnsAtOnce) {
  SecAggInbox inbox;
  EXPECT_THAT(inbox.Wait(Kind::kPeerKeys, 3, 2, kLong,
                         [] { return absl::CancelledError("run 3 was cancelled"); }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("run 3 was cancelled")));
}

TEST(SecAggInboxTest, NewerRoundDropsOlderMessagesAndEndsTheirWait) {
  SecAggInbox inbox;
  ASSERT_TRUE(inbox.Put(PeerKeys(3, 2)));
  ASSERT_TRUE(inbox.Put(PeerKeys(4, 2)));
  inbox.BeginRound(3, 3);
  EXPECT_EQ(inbox.size(), 1u);  // run 4's is kept
  EXPECT_FALSE(inbox.Put(RelayedShares(3, 2)));
  EXPECT_THAT(inbox.Wait(Kind::kRelayedShares, 3, 2, kLong, NeverAbort),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("moved on to round 3")));

  absl::StatusOr<v1::CoordinatorMessage> got;
  std::thread waiter([&] { got = inbox.Wait(Kind::kRelayedShares, 3, 3, kLong, NeverAbort); });
  ASSERT_TRUE(inbox.Put(PeerKeys(3, 4)));  // the coordinator moved run 3 on
  waiter.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kCancelled, HasSubstr("round 3")));
}

TEST(SecAggInboxTest, RefusesDuplicatesAndOtherMessages) {
  SecAggInbox inbox;
  ASSERT_TRUE(inbox.Put(PeerKeys(3, 2)));
  EXPECT_FALSE(inbox.Put(PeerKeys(3, 2)));
  v1::CoordinatorMessage train;
  train.mutable_train()->set_run_id(3);
  EXPECT_FALSE(inbox.Put(train));
  EXPECT_EQ(inbox.size(), 1u);
}

TEST(SecAggInboxTest, ForgetRunAndClearDropMessages) {
  SecAggInbox inbox;
  ASSERT_TRUE(inbox.Put(PeerKeys(3, 2)));
  ASSERT_TRUE(inbox.Put(PeerKeys(4, 2)));
  inbox.ForgetRun(3);
  EXPECT_EQ(inbox.size(), 1u);
  EXPECT_THAT(inbox.Wait(Kind::kPeerKeys, 3, 2, kShort, NeverAbort),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("run 3")));
  inbox.Clear();
  EXPECT_EQ(inbox.size(), 0u);
}

}  // namespace
}  // namespace fedmi
