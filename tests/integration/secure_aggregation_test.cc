// Secure aggregation with real processes over mutual TLS: a coordinator and
// five fedmi-client sites serving the synthetic model, whose FedAvg the test
// computes independently. A hand-driven site (RawSite) plays the attacker.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/secagg/secagg.h"
#include "common/secagg/secagg_participant.h"
#include "common/tensor/synthetic_model.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kParams = 40000;

v1::RunSpec SecureSyntheticSpec(int rounds, int min_sites) {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(rounds);
  spec.set_min_sites(min_sites);
  spec.set_round_timeout_s(120);
  spec.set_secure_aggregation(true);
  // Synthetic sites have no data to declare in their hello: give the
  // weights' denominator explicitly (site k trains on 100 k examples).
  spec.mutable_secagg()->set_max_examples(500);
  return spec;
}

// The documented bound of one securely aggregated round over `survivors`
// (codec sized for `max_sites`), plus float32 rounding of the result.
double RoundBound(int max_sites, const std::vector<int64_t>& survivors) {
  secagg::QuantizationOptions quantization;
  quantization.clip = 1.0;
  quantization.max_sites = max_sites;
  auto codec = secagg::FixedPointCodec::Create(quantization);
  EXPECT_TRUE(codec.ok());
  double total_weight = 0;
  for (int64_t k : survivors) total_weight += SyntheticExamples(k) / 500.0;
  return codec->ErrorBound(static_cast<int>(survivors.size())) / total_weight +
         std::ldexp(1.0, -20);
}

double MaxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every regular file the coordinator wrote: its database (with WAL), model
// store, spool and log.
std::vector<std::string> CoordinatorFiles(const std::string& scratch) {
  std::vector<std::string> files = {scratch + "/coordinator.log"};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(scratch + "/state")) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  return files;
}

// Which of `files` hold `needle` anywhere.
std::vector<std::string> FilesContaining(const std::vector<std::string>& files,
                                         const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& file : files) {
    if (ReadAll(file).find(needle) != std::string::npos) found.push_back(file);
  }
  return found;
}

class SecureAggregationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    project_ = std::make_unique<TestProject>(scratch_.path());
    coordinator_ = std::make_unique<CoordinatorProcess>(scratch_.path(), project_.get());
  }

  void StartSites(int first, int last, std::vector<std::string> env = {}) {
    for (int k = first; k <= last; ++k) {
      sites_.push_back(StartSyntheticSite(*project_, coordinator_->address(),
                                          absl::StrCat("site-", k), scratch_.path(), env));
    }
  }

  TensorBundle Export(int64_t run, int32_t round) {
    int32_t exported_round = 0;
    auto model = coordinator_->admin().ExportModel(run, round, &exported_round);
    EXPECT_THAT(model, IsOk());
    return model.ok() ? *model : TensorBundle();
  }

  std::string Kit(const std::string& party, const std::string& file) {
    auto pem = ReadFileToString(project_->KitFile(party, file));
    EXPECT_THAT(pem, IsOk());
    return pem.ok() ? *pem : "";
  }

  // Sites 1-4 as processes and a hand-driven site-5, which follows the
  // protocol up to the point a test wants it to cheat. Starts a one-round
  // secure run; returns its id once site-5 holds its TrainTask and the
  // advertisement it would honestly send.
  int64_t StartRunWithRawSite5(v1::SiteMessage* advertisement) {
    StartSites(1, 4);
    project_->Add("site-5", PartyRole::kSite);
    attacker_ = std::make_unique<RawSite>(
        PartyChannel(coordinator_->address(), project_.get(), "site-5"), "site-5");
    EXPECT_THAT(coordinator_->admin().WaitForSites(5, absl::Seconds(30)), IsOk());
    auto run = coordinator_->admin().StartRun(SecureSyntheticSpec(1, 5));
    EXPECT_THAT(run, IsOk());
    v1::CoordinatorMessage task = attacker_->NextTask();
    EXPECT_EQ(task.kind_case(), v1::CoordinatorMessage::kTrain) << task.ShortDebugString();
    auto participant = secagg::SecAggParticipant::Start(
        task.train().admission(), task.train().spec().secagg(), secagg::SecAggFloor{}, "site-5",
        Kit("site-5", "key.pem"), Kit("site-5", "cert.pem"), Kit("site-5", "ca.pem"));
    EXPECT_THAT(participant, IsOk());
    if (participant.ok()) {
      attacker_participant_ = *std::move(participant);
      auto ad = attacker_participant_->Advertisement();
      EXPECT_THAT(ad, IsOk());
      if (ad.ok()) *advertisement->mutable_key_advertisement() = *std::move(ad);
    }
    return run.ok() ? *run : -1;
  }

  ScratchDir scratch_;
  std::unique_ptr<TestProject> project_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
  std::vector<std::unique_ptr<cli::ChildProcess>> sites_;
  std::unique_ptr<RawSite> attacker_;
  std::unique_ptr<secagg::SecAggParticipant> attacker_participant_;
};

TEST_F(SecureAggregationTest, FiveSiteProcessesGetFedAvgWithinTheBoundAndNoUpdateIsStored) {
  StartSites(1, 5);
  ASSERT_THAT(coordinator_->admin().WaitForSites(5, absl::Seconds(30)), IsOk());
  constexpr int kRounds = 2;
  ASSERT_OK_AND_ASSIGN(int64_t run,
                       coordinator_->admin().StartRun(SecureSyntheticSpec(kRounds, 5)));
  const v1::RunStatus final_status = WatchToEnd(coordinator_->admin(), run);
  ASSERT_EQ(final_status.state(), "done") << final_status.error();

  const std::vector<int64_t> everyone = {1, 2, 3, 4, 5};
  std::vector<float> expected = FloatsOf(SyntheticInitialModel(kParams));
  for (int r = 0; r < kRounds; ++r) expected = ExpectedSyntheticAggregate(expected, everyone);
  const double error = MaxAbsDifference(FloatsOf(Export(run, kRounds)), expected);
  EXPECT_LE(error, kRounds * RoundBound(5, everyone));
  std::cout << "max |secure - FedAvg| = " << error << ", bound "
            << kRounds * RoundBound(5, everyone) << std::endl;

  // What each site trained and uploaded masked: the round's base model plus
  // its own delta. None of it may appear in anything the coordinator wrote.
  const std::vector<std::string> files = CoordinatorFiles(scratch_.path());
  ASSERT_GT(files.size(), 3u);
  for (int round = 1; round <= kRounds; ++round) {
    const TensorBundle base = round == 1 ? SyntheticInitialModel(kParams) : Export(run, round - 1);
    for (int64_t k : everyone) {
      TensorBundle local = base;
      ApplySyntheticDelta(k, &local);
      for (size_t offset : {size_t{0}, local.body.size() / 2}) {
        const std::string needle(local.body.data() + offset, 64);
        EXPECT_THAT(FilesContaining(files, needle), ::testing::IsEmpty())
            << "site-" << k << "'s round-" << round << " update at byte " << offset;
      }
    }
  }
  // The scan does find what is stored: the aggregate itself.
  const TensorBundle aggregate = Export(run, kRounds);
  EXPECT_THAT(FilesContaining(files, std::string(aggregate.body.data() + 4096, 64)),
              Not(::testing::IsEmpty()));
}

TEST_F(SecureAggregationTest, SiteKilledAfterSharingLeavesTheExactSumOfTheOtherFour) {
  StartSites(1, 2);
  StartSites(3, 3, {"FEDMI_TEST_CRASH_AT=secagg-before-masked-upload"});
  StartSites(4, 5);
  ASSERT_THAT(coordinator_->admin().WaitForSites(5, absl::Seconds(30)), IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator_->admin().StartRun(SecureSyntheticSpec(1, 4)));
  const v1::RunStatus final_status = WatchToEnd(coordinator_->admin(), run);
  ASSERT_EQ(final_status.state(), "done") << final_status.error();
  EXPECT_FALSE(sites_[2]->Running()) << "site-3 was killed";

  ASSERT_EQ(final_status.rounds_size(), 1);
  std::map<std::string, std::string> states;
  for (const auto& part : final_status.rounds(0).sites()) states[part.site()] = part.state();
  EXPECT_EQ(states["site-3"], "dropped");
  EXPECT_EQ(states["site-1"], "evaluated");

  const std::vector<int64_t> survivors = {1, 2, 4, 5};
  const std::vector<float> expected =
      ExpectedSyntheticAggregate(FloatsOf(SyntheticInitialModel(kParams)), survivors);
  const double error = MaxAbsDifference(FloatsOf(Export(run, 1)), expected);
  EXPECT_LE(error, RoundBound(5, survivors));
  // Its shares had gone out: its masks were removed from the reconstructed
  // mask key, not simply never added.
  EXPECT_THAT(ReadAll(scratch_.path() + "/coordinator.log"),
              HasSubstr("unmasked the sum of 4 sites (1 dropped after sharing)"));
}

TEST_F(SecureAggregationTest, ForgedKeyAdvertisementFailsTheRoundNamingTheSite) {
  v1::SiteMessage message;
  const int64_t run = StartRunWithRawSite5(&message);
  ASSERT_NE(attacker_participant_, nullptr);
  // A key swapped after signing, as a man in the middle would.
  message.mutable_key_advertisement()->set_mask_public_key(std::string(32, '\x42'));
  ASSERT_TRUE(attacker_->Send(message));

  const v1::RunStatus final_status = WatchToEnd(coordinator_->admin(), run);
  EXPECT_EQ(final_status.state(), "failed");
  EXPECT_THAT(final_status.error(), HasSubstr("key advertisement of site 'site-5'"));
  EXPECT_TRUE(coordinator_->process().Running());
  ASSERT_OK_AND_ASSIGN(auto sites, coordinator_->admin().ListSites());
  EXPECT_EQ(sites.size(), 5u) << "the coordinator keeps serving";
}

TEST_F(SecureAggregationTest, CorruptedShareIsCaughtByItsRecipientAndNamed) {
  v1::SiteMessage advertise;
  const int64_t run = StartRunWithRawSite5(&advertise);
  ASSERT_NE(attacker_participant_, nullptr);
  ASSERT_TRUE(attacker_->Send(advertise));
  v1::CoordinatorMessage peers = attacker_->NextTask();
  ASSERT_EQ(peers.kind_case(), v1::CoordinatorMessage::kPeerKeys) << peers.ShortDebugString();
  v1::SiteMessage share;
  ASSERT_OK_AND_ASSIGN(*share.mutable_shares(),
                       attacker_participant_->OnPeerKeys(peers.peer_keys()));
  bool corrupted = false;
  for (auto& sealed : *share.mutable_shares()->mutable_shares()) {
    if (sealed.recipient() != "site-1") continue;
    sealed.mutable_ciphertext()->back() ^= 0x01;
    corrupted = true;
  }
  ASSERT_TRUE(corrupted);
  ASSERT_TRUE(attacker_->Send(share));

  const v1::RunStatus final_status = WatchToEnd(coordinator_->admin(), run);
  EXPECT_EQ(final_status.state(), "failed");
  EXPECT_THAT(final_status.error(), HasSubstr("site 'site-1' reports"));
  EXPECT_THAT(final_status.error(), HasSubstr("share from site 'site-5' failed authentication"));
  EXPECT_TRUE(coordinator_->process().Running());
  for (int k = 0; k < 4; ++k) EXPECT_TRUE(sites_[k]->Running()) << "site-" << k + 1;
}

}  // namespace
}  // namespace fedmi
