// Faults with real processes: a straggler that sleeps past the deadline, a
// site killed in the middle of a round and started again. Every round must
// still complete, and the final model must be FedAvg of exactly the updates
// the audit log says were aggregated.
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/tensor/synthetic_model.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kParams = 20000;
constexpr int kRounds = 4;

// A synthetic site that sends a heartbeat every second.
std::unique_ptr<cli::ChildProcess> SpawnSite(TestProject& project, const std::string& address,
                                             const std::string& name, const std::string& log) {
  cli::SiteOptions options;
  options.name = name;
  options.log_path = log;
  options.heartbeat_s = 1;
  return StartSite(project, address, options);
}

// Polls the run until `done` holds for its status (or 60 s pass).
bool WaitFor(cli::AdminClient& admin, int64_t run,
             const std::function<bool(const v1::RunStatus&)>& done) {
  for (int i = 0; i < 1200; ++i) {
    auto status = admin.GetRun(run);
    if (status.ok() && done(*status)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Round `round` is aggregated (stored, whether or not evaluated yet).
bool RoundAggregated(const v1::RunStatus& status, int32_t round) {
  for (const auto& r : status.rounds()) {
    if (r.round() == round) {
      return r.state() == "committed" || r.state() == "evaluating" || r.state() == "evaluated";
    }
  }
  return false;
}

bool RoundTraining(const v1::RunStatus& status, int32_t round) {
  return status.current_round() == round && status.phase() == "training";
}

bool UploadedInLiveRound(const v1::RunStatus& status, const std::vector<std::string>& sites) {
  for (const auto& round : status.rounds()) {
    if (round.round() != status.current_round()) continue;
    int uploaded = 0;
    for (const auto& part : round.sites()) {
      for (const auto& site : sites) uploaded += part.site() == site && part.state() == "uploaded";
    }
    return uploaded == static_cast<int>(sites.size());
  }
  return false;
}

TEST(FaultTest, StragglerAndSitesKilledMidRoundMissOneRoundEachAndRejoin) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  CoordinatorProcess coordinator(scratch.path(), &project);
  std::map<int, std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= 5; ++k) {
    const std::string name = absl::StrCat("site-", k);
    project.Add(name, PartyRole::kSite);
    sites[k] = SpawnSite(project, coordinator.address(), name,
                         absl::StrCat(scratch.path(), "/", name, ".log"));
  }
  ASSERT_THAT(coordinator.admin().WaitForSites(5, absl::Seconds(30)), IsOk());

  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(kRounds);
  spec.set_min_sites(3);
  spec.set_round_timeout_s(6);
  // site-5 is frozen before round 1: a straggler that sleeps past the deadline.
  ASSERT_EQ(kill(sites[5]->pid(), SIGSTOP), 0);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator.admin().StartRun(spec));

  // Once round 1 is aggregated the straggler wakes up. Then in each of
  // rounds 2-4 one site is frozen before the round opens (so it holds a task
  // it will never finish) and killed mid-round, once the others' updates
  // are in; the coordinator drops it at once, not at the deadline. Holding
  // site-1 (its update is in) keeps the round's evaluation open until the
  // killed site has been started again and reconnected, so it is back for
  // the next round.
  ASSERT_TRUE(WaitFor(coordinator.admin(), run,
                      [](const v1::RunStatus& s) { return RoundAggregated(s, 1); }));
  ASSERT_EQ(kill(sites[5]->pid(), SIGCONT), 0);
  const std::map<int, int> victim = {{2, 4}, {3, 2}, {4, 3}};
  ASSERT_EQ(kill(sites[victim.at(2)]->pid(), SIGSTOP), 0);
  for (int round = 2; round <= kRounds; ++round) {
    const int k = victim.at(round);
    std::vector<std::string> others;
    for (int other = 1; other <= 5; ++other) {
      if (other != k) others.push_back(absl::StrCat("site-", other));
    }
    ASSERT_TRUE(WaitFor(coordinator.admin(), run,
                        [&](const v1::RunStatus& s) {
                          return RoundTraining(s, round) && UploadedInLiveRound(s, others);
                        }))
        << "round " << round;
    ASSERT_EQ(kill(sites[1]->pid(), SIGSTOP), 0);
    sites[k]->Kill();
    ASSERT_TRUE(WaitFor(coordinator.admin(), run,
                        [&](const v1::RunStatus& s) { return RoundAggregated(s, round); }));
    sites[k] = SpawnSite(project, coordinator.address(), absl::StrCat("site-", k),
                         absl::StrCat(scratch.path(), "/site-", k, "-round-", round, ".log"));
    ASSERT_THAT(coordinator.admin().WaitForSites(5, absl::Seconds(20)), IsOk());
    if (round < kRounds) {
      ASSERT_EQ(kill(sites[victim.at(round + 1)]->pid(), SIGSTOP), 0);
    }
    ASSERT_EQ(kill(sites[1]->pid(), SIGCONT), 0);
  }

  const v1::RunStatus final_status = WatchToEnd(coordinator.admin(), run);
  ASSERT_EQ(final_status.state(), "done") << final_status.error();
  ASSERT_EQ(final_status.rounds_size(), kRounds);

  // Which updates went into each round, by the audit log.
  ASSERT_OK_AND_ASSIGN(audit::ExportedLog log, coordinator.admin().FetchAuditLog());
  std::map<int, std::vector<int64_t>> aggregated;
  std::map<int, std::vector<std::string>> dropped;
  std::string late_refused;
  for (const auto& entry : log.entries) {
    const nlohmann::json detail = nlohmann::json::parse(entry.detail_json());
    if (entry.action() == "round.aggregated" && entry.round() > 0) {
      for (const auto& site : detail["sites"]) {
        aggregated[entry.round()].push_back(SyntheticSiteIndex(site.get<std::string>()));
      }
    }
    if (entry.action() == "update.refused" && entry.actor() == "site-5" && entry.round() == 1) {
      late_refused = detail["reason"].get<std::string>();
    }
    if (entry.action() == "site.dropped" && detail["phase"] == "training") {
      dropped[entry.round()].push_back(detail["site"].get<std::string>() + ": " +
                                       detail["reason"].get<std::string>());
    }
  }
  EXPECT_THAT(aggregated[1], ElementsAre(1, 2, 3, 4)) << "the straggler missed round 1";
  EXPECT_THAT(aggregated[2], ElementsAre(1, 2, 3, 5)) << "the straggler is back; site-4 killed";
  EXPECT_THAT(aggregated[3], ElementsAre(1, 3, 4, 5)) << "site-4 rejoined; site-2 killed";
  EXPECT_THAT(aggregated[4], ElementsAre(1, 2, 4, 5)) << "site-2 rejoined; site-3 killed";
  // The straggler's late round-1 update was refused cleanly.
  EXPECT_THAT(late_refused, ::testing::HasSubstr("not collecting updates"));
  ASSERT_EQ(dropped[1].size(), 1u);
  EXPECT_THAT(dropped[1][0], ::testing::HasSubstr("site-5: timed out after 6 s"));
  for (int round = 2; round <= kRounds; ++round) {
    ASSERT_EQ(dropped[round].size(), 1u) << "round " << round;
    EXPECT_THAT(dropped[round][0],
                ::testing::StartsWith(absl::StrCat("site-", victim.at(round), ": disconnected")));
  }

  // The final model is FedAvg of exactly those updates, bit for bit.
  std::vector<float> expected = FloatsOf(SyntheticInitialModel(kParams));
  for (int round = 1; round <= kRounds; ++round) {
    expected = ExpectedSyntheticAggregate(expected, aggregated[round]);
  }
  int32_t exported_round = 0;
  ASSERT_OK_AND_ASSIGN(TensorBundle model,
                       coordinator.admin().ExportModel(run, -1, &exported_round));
  EXPECT_EQ(exported_round, kRounds);
  EXPECT_EQ(FloatsOf(model), expected);
  // Heartbeats (every second here) keep every site's last_seen fresh.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> listed, coordinator.admin().ListSites());
  ASSERT_EQ(listed.size(), 5u);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  for (const auto& info : listed) {
    EXPECT_TRUE(info.connected()) << info.site();
    EXPECT_GT(info.last_seen(), now - 1.5) << info.site() << " has not been seen lately";
  }
  EXPECT_THAT(audit::VerifyLog(log.entries, log.head, log.signer_certificate_pem,
                               ReadFileToString(project.KitFile("admin-1", "ca.pem")).value()),
              IsOk());
}

}  // namespace
}  // namespace fedmi
