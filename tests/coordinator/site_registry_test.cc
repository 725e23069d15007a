// SiteRegistry over in-memory storage: registration, session replacement,
// sticky revocation and what round managers see through the roster.
#include "coordinator/site_registry.h"

#include "tests/coordinator/federation_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

v1::Hello HelloWith(int64_t train_examples) {
  v1::Hello hello;
  hello.set_train_examples(train_examples);
  hello.set_val_examples(5);
  return hello;
}

class SiteRegistryTest : public ::testing::Test {
 protected:
  // Registers `site` and opens a session on a fresh channel.
  std::shared_ptr<RecordingChannel> Connect(const std::string& site, uint64_t* session = nullptr) {
    auto channel = std::make_shared<RecordingChannel>();
    absl::StatusOr<SiteRecord> record = registry_.RecordHello(SiteCaller(site), HelloWith(100));
    EXPECT_THAT(record, IsOk());
    if (!record.ok()) return channel;
    registry_.EndSession(site, absl::AlreadyExistsError("replaced"));
    const uint64_t id = registry_.StartSession(*record, channel);
    if (session != nullptr) *session = id;
    return channel;
  }

  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  FakeClock clock_;
  SiteRegistry registry_{storage_.get(), &clock_, /*audit=*/nullptr};
};

TEST_F(SiteRegistryTest, HelloRegistersTheSiteOnceAndStoresIt) {
  const double first = clock_.NowUnixSeconds();
  ASSERT_OK_AND_ASSIGN(SiteRecord record,
                       registry_.RecordHello(SiteCaller("site-a"), HelloWith(100)));
  EXPECT_EQ(record.registered_at, first);
  clock_.Advance(absl::Seconds(30));
  ASSERT_OK_AND_ASSIGN(record, registry_.RecordHello(SiteCaller("site-a"), HelloWith(200)));
  EXPECT_EQ(record.registered_at, first);
  EXPECT_EQ(record.last_seen, first + 30);
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> stored, storage_->ListSites());
  ASSERT_THAT(stored, SizeIs(1));
  EXPECT_EQ(stored[0].train_examples, 200);
}

TEST_F(SiteRegistryTest, NewerSessionReplacesTheOldOneWhichCanNoLongerEndIt) {
  uint64_t old_session = 0;
  auto old_channel = Connect("site-a", &old_session);
  EXPECT_THAT(old_channel->messages(), SizeIs(1)) << "welcome";
  auto new_channel = Connect("site-a");
  EXPECT_TRUE(old_channel->closed());
  EXPECT_EQ(old_channel->close_status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(registry_.SessionEnded("site-a", old_session));
  EXPECT_TRUE(registry_.HasSession("site-a"));
  EXPECT_FALSE(new_channel->closed());
}

TEST_F(SiteRegistryTest, RevocationClosesTheStreamAndSticksAcrossRestarts) {
  auto channel = Connect("site-a");
  ASSERT_OK_AND_ASSIGN(bool was_connected, registry_.Revoke("site-a", "alice", "stolen laptop"));
  EXPECT_TRUE(was_connected);
  EXPECT_TRUE(channel->closed());
  // The site is told who revoked it and why, as docs/security.md promises.
  EXPECT_THAT(channel->close_status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-a' was revoked by alice: stolen laptop")));
  EXPECT_FALSE(registry_.HasSession("site-a"));
  EXPECT_THAT(
      registry_.CheckNotRevoked("site-a"),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked by alice: stolen laptop")));
  EXPECT_THAT(registry_.Revoke("site-a", "alice", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already revoked")));

  SiteRegistry restarted(storage_.get(), &clock_, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> stored, storage_->ListSites());
  restarted.Load(stored);
  EXPECT_THAT(restarted.RecordHello(SiteCaller("site-a"), HelloWith(1)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-a' was revoked by alice: stolen laptop")));
}

TEST_F(SiteRegistryTest, ARevocationWithoutAReasonSaysWhoAlone) {
  auto channel = Connect("site-a");
  ASSERT_THAT(registry_.Revoke("site-a", "alice", ""), IsOk());
  EXPECT_EQ(channel->close_status().message(), "site 'site-a' was revoked by alice");
  EXPECT_EQ(registry_.CheckNotRevoked("site-a").message(), "site 'site-a' was revoked by alice");
}

TEST_F(SiteRegistryTest, ListShowsStateAndConnection) {
  Connect("site-a");
  Connect("site-b");
  ASSERT_THAT(registry_.Revoke("site-b", "alice", ""), IsOk());
  ASSERT_OK_AND_ASSIGN(bool was_connected, registry_.Revoke("site-c", "alice", "never seen"));
  EXPECT_FALSE(was_connected);
  std::vector<v1::SiteInfo> sites = registry_.List();
  ASSERT_THAT(sites, SizeIs(3));
  EXPECT_EQ(sites[0].site(), "site-a");
  EXPECT_EQ(sites[0].state(), "active");
  EXPECT_TRUE(sites[0].connected());
  EXPECT_EQ(sites[1].state(), "revoked");
  EXPECT_FALSE(sites[1].connected());
  EXPECT_EQ(sites[2].revocation_reason(), "never seen");
}

TEST_F(SiteRegistryTest, RosterSeesOpenSessionsOnly) {
  Connect("site-b");
  auto a = Connect("site-a");
  EXPECT_THAT(registry_.ConnectedSites(), ElementsAre("site-a", "site-b"));
  EXPECT_EQ(registry_.TrainExamples("site-a"), 100);
  EXPECT_EQ(registry_.TrainExamples("site-x"), 0);
  EXPECT_TRUE(registry_.Send("site-a", v1::CoordinatorMessage()));
  EXPECT_FALSE(registry_.Send("site-x", v1::CoordinatorMessage()));
  EXPECT_THAT(registry_.Touch("site-x"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("send hello first")));
  a->Close(absl::OkStatus());
  EXPECT_FALSE(registry_.Send("site-a", v1::CoordinatorMessage()));
}

}  // namespace
}  // namespace fedmi
