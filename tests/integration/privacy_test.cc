// Differential privacy end to end, with the real binaries over loopback:
// three sites train cnn-gn with DP-SGD; the run stops at its privacy budget
// and keeps its last model, a site whose max_epsilon is below the run's
// plan refuses and the coordinator records why, and the exported model,
// the run status and the audit log all state the same epsilon. Then
// site-level DP-FedAvg with noise shares under secure aggregation, also with
// a frozen backbone.
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/local_federation.h"
#include "cli/model_export.h"
#include "common/base/status.h"
#include "common/data/data_split.h"
#include "common/privacy/dp_plan.h"
#include "common/tensor/bundle_transfer.h"
#include "common/tensor/safetensors.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The safetensors metadata of the run's last model, exported into `dir`.
absl::StatusOr<std::map<std::string, std::string>> ExportedMetadata(
    cli::LocalFederation& federation, int64_t run_id, const std::string& dir) {
  const std::string model = dir + "/model.safetensors";
  RETURN_IF_ERROR(cli::ExportModelToFile(federation.admin(), run_id, -1, model, nullptr, nullptr));
  std::map<std::string, std::string> metadata;
  RETURN_IF_ERROR(ReadSafetensors(model, &metadata).status());
  return metadata;
}

// The privacy.spent lines of the audit log, exported into `dir` and verified.
absl::StatusOr<std::vector<std::string>> PrivacySpentEntries(cli::LocalFederation& federation,
                                                             const std::string& dir) {
  RETURN_IF_ERROR(federation.ExportAndVerifyAudit(dir + "/audit.jsonl").status());
  std::ifstream log(dir + "/audit.jsonl");
  std::vector<std::string> spent;
  for (std::string line; std::getline(log, line);) {
    if (line.find("\"privacy.spent\"") != std::string::npos) spent.push_back(line);
  }
  return spent;
}

// Splits PneumoniaMNIST IID over `sites` sites under `dir`, starts a TLS
// federation there and waits until every site is connected. `policies`
// names a site's policy file where it should not use the defaults.
absl::StatusOr<std::unique_ptr<cli::LocalFederation>> StartFederation(
    const std::string& dir, int sites, uint64_t seed,
    const std::map<std::string, std::string>& policies = {}) {
  DataSplitOptions split;
  split.input = DataPath(dir);
  split.sites = sites;
  split.partition.kind = PartitionKind::kIid;
  split.partition.seed = seed;
  split.out_dir = dir + "/shards";
  ASSIGN_OR_RETURN(std::vector<SiteShardReport> shards, SplitDataset(split));
  RETURN_IF_ERROR(Env::Default()->CreateDirs(dir + "/fed/logs"));
  ASSIGN_OR_RETURN(auto federation, cli::LocalFederation::Start(dir + "/fed", /*insecure=*/false));
  for (const SiteShardReport& shard : shards) {
    cli::SiteOptions site;
    site.name = shard.site;
    site.data = shard.path;
    site.threads = 1;
    auto policy = policies.find(shard.site);
    if (policy != policies.end()) site.policy = policy->second;
    RETURN_IF_ERROR(federation->AddSite(site));
  }
  RETURN_IF_ERROR(federation->WaitForSites(absl::Seconds(120)));
  return federation;
}

TEST(PrivacyTest, RunStopsAtItsBudgetAndASiteBelowThePlanRefuses) {
  ScratchDir scratch;
  // Plan 4 rounds of 10 steps at q = 0.1, sigma 1; the target lets 2 fit.
  v1::RunSpec spec;
  spec.set_model("cnn-gn");
  spec.set_rounds(4);
  spec.set_min_sites(2);
  spec.set_batch_size(32);
  spec.set_seed(3);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp = CompletedSampleDp(/*noise_multiplier=*/1.0, /*sample_rate=*/0.1, /*steps_per_round=*/10);
  const double after_two = privacy::EpsilonAfterRounds(dp, 2)->epsilon;
  const double after_three = privacy::EpsilonAfterRounds(dp, 3)->epsilon;
  const double planned = privacy::EpsilonAfterRounds(dp, 4)->epsilon;
  dp.set_target_epsilon((after_two + after_three) / 2);
  dp.set_steps_per_round(0);  // the coordinator derives it

  // site-3's policy allows less than the run plans over its 4 rounds.
  const std::string strict_policy = scratch.path() + "/strict.toml";
  std::ofstream(strict_policy) << "max_epsilon = " << planned / 2 << "\n";

  ASSERT_OK_AND_ASSIGN(auto federation, StartFederation(scratch.path(), /*sites=*/3, /*seed=*/1,
                                                        {{"site-3", strict_policy}}));
  ASSERT_OK_AND_ASSIGN(int64_t run_id, federation->admin().StartRun(spec));
  ASSERT_OK_AND_ASSIGN(v1::RunStatus status, cli::WatchRunToEnd(federation->admin(), run_id));

  EXPECT_EQ(status.state(), "done");
  EXPECT_THAT(status.error(),
              AllOf(HasSubstr("privacy budget exhausted"), HasSubstr("round 3 would take epsilon"),
                    HasSubstr("the model of round 2 is the run's last")));
  EXPECT_EQ(status.completed_rounds(), 2);
  EXPECT_EQ(status.spec().dp().steps_per_round(), 10);
  const v1::PrivacyBudget& budget = status.privacy();
  EXPECT_EQ(budget.rounds_accounted(), 2);
  EXPECT_TRUE(budget.exhausted());
  EXPECT_NEAR(budget.epsilon_spent(), after_two, 1e-9);
  EXPECT_LE(budget.epsilon_spent(), dp.target_epsilon());

  // site-3 refused every round, and the coordinator kept its reason.
  for (const v1::RoundStatus& round : status.rounds()) {
    bool refused = false;
    for (const v1::SiteParticipation& site : round.sites()) {
      if (site.site() != "site-3") continue;
      refused = site.state() == "refused";
      EXPECT_THAT(site.detail(), AllOf(HasSubstr("site policy: the run plans epsilon"),
                                       HasSubstr("past this site's max_epsilon")));
    }
    EXPECT_TRUE(refused) << "round " << round.round();
  }
  EXPECT_EQ(budget.sites_size(), 2) << "site-1 and site-2 trained";
  for (const v1::SitePrivacy& site : budget.sites()) {
    EXPECT_NE(site.site(), "site-3") << "a site that never trained spent nothing";
    EXPECT_EQ(site.rounds(), 2);
  }

  // The exported model states the epsilon of its round.
  ASSERT_OK_AND_ASSIGN(auto metadata, ExportedMetadata(*federation, run_id, scratch.path()));
  EXPECT_EQ(metadata["dp_level"], "sample");
  EXPECT_EQ(metadata["dp_rounds"], "2");
  EXPECT_NEAR(std::stod(metadata["dp_epsilon"]), after_two, 1e-9);

  // One privacy.spent entry per committed round, in the verified log.
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> spent,
                       PrivacySpentEntries(*federation, scratch.path()));
  EXPECT_EQ(spent.size(), 2u);
}

// Site-level DP-FedAvg with distributed noise under secure aggregation:
// four sites clip their changes, add their noise shares and mask; the run
// completes, and the status, the audit log and the exported model state the
// epsilon of four contributing sites per round.
TEST(PrivacyTest, SiteLevelDpWithDistributedNoiseUnderSecureAggregation) {
  ScratchDir scratch;
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(2);
  spec.set_min_sites(4);
  spec.set_batch_size(64);
  spec.set_seed(5);
  spec.set_secure_aggregation(true);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp.set_level(v1::DP_LEVEL_SITE);
  dp.set_target_epsilon(20);
  dp.set_clip_norm(2.0);
  dp.set_noise_placement(v1::DP_NOISE_DISTRIBUTED);

  // Four sites: a site's policy wants at least 3 secure-aggregation peers.
  ASSERT_OK_AND_ASSIGN(auto federation, StartFederation(scratch.path(), /*sites=*/4, /*seed=*/2));
  ASSERT_OK_AND_ASSIGN(int64_t run_id, federation->admin().StartRun(spec));
  ASSERT_OK_AND_ASSIGN(v1::RunStatus status, cli::WatchRunToEnd(federation->admin(), run_id));

  EXPECT_EQ(status.state(), "done") << status.error();
  EXPECT_EQ(status.completed_rounds(), 2);
  const v1::DpSettings& completed = status.spec().dp();
  EXPECT_EQ(completed.expected_sites(), 4);
  EXPECT_EQ(completed.sample_rate(), 1);
  EXPECT_GT(completed.noise_multiplier(), 0);
  EXPECT_GE(status.spec().secagg().clip(), privacy::MinSecAggClipForSiteNoise(completed));
  const double expected = privacy::EpsilonOfRounds(completed, {4, 4})->epsilon;
  EXPECT_NEAR(status.privacy().epsilon_spent(), expected, 1e-9);
  EXPECT_LE(status.privacy().epsilon_spent(), 20);
  EXPECT_EQ(status.privacy().sites_size(), 0) << "site level: one epsilon for the run";

  ASSERT_OK_AND_ASSIGN(auto metadata, ExportedMetadata(*federation, run_id, scratch.path()));
  EXPECT_EQ(metadata["dp_level"], "site");
  EXPECT_EQ(metadata["dp_noise_placement"], "distributed");
  EXPECT_NEAR(std::stod(metadata["dp_epsilon"]), expected, 1e-9);

  ASSERT_OK_AND_ASSIGN(std::vector<std::string> spent,
                       PrivacySpentEntries(*federation, scratch.path()));
  EXPECT_EQ(spent.size(), 2u);
  for (const std::string& line : spent) {
    // The detail is JSON inside the entry: its quotes may be escaped.
    EXPECT_THAT(line, AllOf(::testing::ContainsRegex("contributing_sites.{1,4}:4"),
                            HasSubstr("distributed")));
  }
}

// The same with the cnn's backbone frozen (transfer learning): each site
// clips, noises and masks fc2 alone, so its masked update is fc2's 258
// int32 words; the coordinator unmasks fc2 and puts every frozen tensor back
// bit for bit; the epsilon is that of any site-level round of 4 sites.
TEST(PrivacyTest, SiteLevelDpUnderSecureAggregationWithAFrozenBackbone) {
  ScratchDir scratch;
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(1);
  spec.set_min_sites(4);
  spec.set_batch_size(64);
  spec.set_seed(6);
  spec.set_secure_aggregation(true);
  for (const char* prefix : {"conv", "bn", "fc1."}) {
    spec.mutable_transfer()->add_freeze_prefixes(prefix);
  }
  v1::DpSettings& dp = *spec.mutable_dp();
  dp.set_level(v1::DP_LEVEL_SITE);
  dp.set_target_epsilon(20);
  dp.set_clip_norm(2.0);
  dp.set_noise_placement(v1::DP_NOISE_DISTRIBUTED);

  ASSERT_OK_AND_ASSIGN(auto federation, StartFederation(scratch.path(), /*sites=*/4, /*seed=*/3));
  ASSERT_OK_AND_ASSIGN(int64_t run_id, federation->admin().StartRun(spec));
  ASSERT_OK_AND_ASSIGN(v1::RunStatus status, cli::WatchRunToEnd(federation->admin(), run_id));
  ASSERT_EQ(status.state(), "done") << status.error();
  ASSERT_EQ(status.rounds_size(), 1);
  ASSERT_EQ(status.rounds(0).sites_size(), 4);
  for (const v1::SiteParticipation& site : status.rounds(0).sites()) {
    EXPECT_EQ(site.train_metrics().update_bytes(), (2 * 128 + 2) * 4) << site.site();
  }
  const double expected = privacy::EpsilonOfRounds(status.spec().dp(), {4})->epsilon;
  EXPECT_NEAR(status.privacy().epsilon_spent(), expected, 1e-9);

  int32_t exported = -1;
  ASSERT_OK_AND_ASSIGN(TensorBundle before, federation->admin().ExportModel(run_id, 0, &exported));
  ASSERT_OK_AND_ASSIGN(TensorBundle after, federation->admin().ExportModel(run_id, 1, &exported));
  ASSERT_EQ(before.specs, after.specs);
  int frozen = 0;
  for (const TensorSpec& tensor : before.specs) {
    ASSERT_OK_AND_ASSIGN(TensorBundle old_values, SelectTensors(before, {tensor.name}));
    ASSERT_OK_AND_ASSIGN(TensorBundle new_values, SelectTensors(after, {tensor.name}));
    if (tensor.name.rfind("fc2.", 0) == 0) {
      EXPECT_NE(old_values.body, new_values.body) << tensor.name << " trained";
    } else {
      EXPECT_EQ(old_values.body, new_values.body) << tensor.name << " is frozen";
      ++frozen;
    }
  }
  std::cout << frozen << " of " << before.specs.size()
            << " tensors frozen and unchanged; masked update "
            << status.rounds(0).sites(0).train_metrics().update_bytes() << " bytes; epsilon "
            << status.privacy().epsilon_spent() << std::endl;
}

}  // namespace
}  // namespace fedmi
