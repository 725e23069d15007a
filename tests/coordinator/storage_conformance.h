// The Storage conformance suite: every backend must pass these tests.
//
// A backend's test file instantiates it with a factory that returns a fresh,
// empty storage on each call:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, StorageConformanceTest,
//       ::testing::Values(StorageFactory{"Sqlite", [] { return ...; }}),
//       StorageFactoryName);
#ifndef FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_H_
#define FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/crypto/sha256.h"
#include "coordinator/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/state_printers.h"
#include "tests/test_util.h"

namespace fedmi {

struct StorageFactory {
  std::string name;  // a valid test-name suffix: letters, digits, '_'
  std::function<std::unique_ptr<Storage>()> make;
};

// A site row as a hospital's hello leaves it (never revoked).
inline SiteRecord SiteRow(const std::string& name, double registered_at, double last_seen,
                          int64_t train_examples, int64_t val_examples) {
  SiteRecord site;
  site.name = name;
  site.registered_at = registered_at;
  site.last_seen = last_seen;
  site.train_examples = train_examples;
  site.val_examples = val_examples;
  return site;
}

inline std::string StorageFactoryName(const ::testing::TestParamInfo<StorageFactory>& info) {
  return info.param.name;
}

class StorageConformanceTest : public ::testing::TestWithParam<StorageFactory> {
 protected:
  void SetUp() override {
    storage_ = GetParam().make();
    ASSERT_NE(storage_, nullptr);
  }

  static std::string Hash(const std::string& seed) { return HexEncode(Sha256::Digest(seed)); }

  static RunRecord MakeRun(const std::string& model) {
    RunRecord run;
    run.spec.set_model(model);
    run.spec.set_strategy("fedavg");
    run.spec.set_rounds(3);
    run.spec.set_min_sites(2);
    run.spec.set_lr(0.01);
    run.spec.set_seed(42);
    run.state = RunState::kPending;
    run.created_at = 1000.5;
    return run;
  }

  static v1::Metrics MakeMetrics(int64_t examples, double loss) {
    v1::Metrics metrics;
    metrics.set_examples(examples);
    metrics.set_loss(loss);
    metrics.set_auc(0.75);
    metrics.set_accuracy(0.5);
    return metrics;
  }

  static ParticipationRecord MakeParticipation(int64_t run_id, int32_t round,
                                               const std::string& site, int64_t examples) {
    ParticipationRecord record;
    record.run_id = run_id;
    record.round = round;
    record.site = site;
    record.examples = examples;
    record.train_metrics = MakeMetrics(examples, 0.25);
    record.update_sha256 = Hash("update " + site + std::to_string(round));
    record.state = ParticipationState::kUploaded;
    return record;
  }

  static RoundCommit MakeCommit(int64_t run_id, int32_t round,
                                const std::vector<std::string>& sites) {
    RoundCommit commit;
    commit.round.run_id = run_id;
    commit.round.round = round;
    commit.round.model_sha256 =
        Hash("model " + std::to_string(run_id) + "/" + std::to_string(round));
    commit.round.started_at = 100.0 * round;
    commit.round.finished_at = 100.0 * round + 50;
    commit.round.dp_next_clip_norm = 0.25 * round;
    int64_t examples = 10;
    for (const std::string& site : sites) {
      commit.participations.push_back(MakeParticipation(run_id, round, site, examples));
      examples += 10;
    }
    return commit;
  }

  int64_t CreateRunOrDie(const std::string& model = "cnn") {
    absl::StatusOr<int64_t> id = storage_->CreateRun(MakeRun(model));
    EXPECT_THAT(id, IsOk());
    return id.value_or(-1);
  }

  std::unique_ptr<Storage> storage_;
};

// --- Sites ------------------------------------------------------------------

TEST_P(StorageConformanceTest, ListSitesIsEmptyAtFirst) {
  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage_->ListSites());
  EXPECT_TRUE(sites.empty());
}

TEST_P(StorageConformanceTest, UpsertSiteInsertsAndListsByName) {
  SiteRecord b = SiteRow("hospital-b", 10, 11, 100, 20);
  SiteRecord a = SiteRow("hospital-a", 12, 13, 300, 40);
  ASSERT_THAT(storage_->UpsertSite(b), IsOk());
  ASSERT_THAT(storage_->UpsertSite(a), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage_->ListSites());
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].name, "hospital-a");
  EXPECT_EQ(sites[0].registered_at, 12);
  EXPECT_EQ(sites[0].last_seen, 13);
  EXPECT_EQ(sites[0].train_examples, 300);
  EXPECT_EQ(sites[0].val_examples, 40);
  EXPECT_EQ(sites[1].name, "hospital-b");
}

TEST_P(StorageConformanceTest, UpsertSiteKeepsFirstRegisteredAt) {
  ASSERT_THAT(storage_->UpsertSite(SiteRow("hospital-a", 10, 10, 100, 20)), IsOk());
  ASSERT_THAT(storage_->UpsertSite(SiteRow("hospital-a", 99, 50, 150, 30)), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage_->ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].registered_at, 10);
  EXPECT_EQ(sites[0].last_seen, 50);
  EXPECT_EQ(sites[0].train_examples, 150);
  EXPECT_EQ(sites[0].val_examples, 30);
}

TEST_P(StorageConformanceTest, RevocationIsStoredAndNeverUndoneByALaterUpsert) {
  SiteRecord site = SiteRow("hospital-a", 10, 10, 100, 20);
  site.certificate_expires = 2000;
  ASSERT_THAT(storage_->UpsertSite(site), IsOk());
  site.revoked_at = 60;
  site.revoked_by = "admin-1";
  site.revocation_reason = "laptop stolen";
  ASSERT_THAT(storage_->UpsertSite(site), IsOk());
  // A stale writer (e.g. a disconnect recorded late) must not clear it.
  SiteRecord stale = SiteRow("hospital-a", 10, 70, 100, 20);
  ASSERT_THAT(storage_->UpsertSite(stale), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<SiteRecord> sites, storage_->ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_TRUE(sites[0].revoked());
  EXPECT_EQ(sites[0].revoked_at, 60);
  EXPECT_EQ(sites[0].revoked_by, "admin-1");
  EXPECT_EQ(sites[0].revocation_reason, "laptop stolen");
  EXPECT_EQ(sites[0].last_seen, 70);
}

TEST_P(StorageConformanceTest, UpsertSiteRejectsEmptyName) {
  EXPECT_THAT(storage_->UpsertSite(SiteRow("", 1, 1, 1, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("name")));
}

// --- Runs -------------------------------------------------------------------

TEST_P(StorageConformanceTest, CreateRunAssignsIdsFromOne) {
  ASSERT_OK_AND_ASSIGN(int64_t first, storage_->CreateRun(MakeRun("cnn")));
  ASSERT_OK_AND_ASSIGN(int64_t second, storage_->CreateRun(MakeRun("resnet18")));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
}

TEST_P(StorageConformanceTest, GetRunReturnsWhatWasCreated) {
  RunRecord run = MakeRun("resnet18");
  run.error = "";
  run.finished_at = 0;
  ASSERT_OK_AND_ASSIGN(int64_t id, storage_->CreateRun(run));

  ASSERT_OK_AND_ASSIGN(RunRecord got, storage_->GetRun(id));
  EXPECT_EQ(got.id, id);
  EXPECT_THAT(got.spec, EqualsProto(run.spec));
  EXPECT_EQ(got.state, RunState::kPending);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.created_at, 1000.5);
  EXPECT_EQ(got.finished_at, 0);
}

TEST_P(StorageConformanceTest, CreateRunFillsMissingSpecSha256) {
  RunRecord run = MakeRun("cnn");
  ASSERT_OK_AND_ASSIGN(int64_t id, storage_->CreateRun(run));
  ASSERT_OK_AND_ASSIGN(RunRecord got, storage_->GetRun(id));
  EXPECT_EQ(got.spec_sha256, HexEncode(Sha256::Digest(run.spec.SerializeAsString())));
}

TEST_P(StorageConformanceTest, CreateRunKeepsGivenSpecSha256) {
  RunRecord run = MakeRun("cnn");
  run.spec_sha256 = Hash("canonical spec");
  ASSERT_OK_AND_ASSIGN(int64_t id, storage_->CreateRun(run));
  ASSERT_OK_AND_ASSIGN(RunRecord got, storage_->GetRun(id));
  EXPECT_EQ(got.spec_sha256, run.spec_sha256);
}

TEST_P(StorageConformanceTest, GetRunOfUnknownIdIsNotFound) {
  EXPECT_THAT(storage_->GetRun(7), StatusIs(absl::StatusCode::kNotFound, "run 7 does not exist"));
}

TEST_P(StorageConformanceTest, ListRunsInIdOrder) {
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> none, storage_->ListRuns());
  EXPECT_TRUE(none.empty());
  CreateRunOrDie("a");
  CreateRunOrDie("b");
  CreateRunOrDie("c");

  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, storage_->ListRuns());
  ASSERT_EQ(runs.size(), 3u);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].id, static_cast<int64_t>(i + 1));
    EXPECT_EQ(runs[i].spec.model(), std::string(1, static_cast<char>('a' + i)));
  }
}

TEST_P(StorageConformanceTest, SetRunStateUpdatesStateErrorAndFinishedAt) {
  int64_t id = CreateRunOrDie();
  ASSERT_THAT(storage_->SetRunState(id, RunState::kRunning, "", 0), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord running, storage_->GetRun(id));
  EXPECT_EQ(running.state, RunState::kRunning);

  ASSERT_THAT(storage_->SetRunState(id, RunState::kFailed, "only 1 of 2 sites answered", 2000),
              IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord failed, storage_->GetRun(id));
  EXPECT_EQ(failed.state, RunState::kFailed);
  EXPECT_EQ(failed.error, "only 1 of 2 sites answered");
  EXPECT_EQ(failed.finished_at, 2000);
}

TEST_P(StorageConformanceTest, SetRunStateOfUnknownRunIsNotFound) {
  EXPECT_THAT(storage_->SetRunState(3, RunState::kRunning, "", 0),
              StatusIs(absl::StatusCode::kNotFound, "run 3 does not exist"));
}

// --- Round commits ----------------------------------------------------------

TEST_P(StorageConformanceTest, CommitRoundStoresRoundAndParticipations) {
  int64_t id = CreateRunOrDie();
  RoundCommit commit = MakeCommit(id, 1, {"hospital-b", "hospital-a"});
  ASSERT_THAT(storage_->CommitRound(commit), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(id));
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].run_id, id);
  EXPECT_EQ(rounds[0].round, 1);
  EXPECT_EQ(rounds[0].model_sha256, commit.round.model_sha256);
  EXPECT_EQ(rounds[0].state, RoundState::kCommitted);
  EXPECT_EQ(rounds[0].started_at, 100);
  EXPECT_EQ(rounds[0].finished_at, 150);
  EXPECT_EQ(rounds[0].dp_next_clip_norm, 0.25);

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 2u);
  // Ordered by (round, site).
  EXPECT_EQ(rows[0].site, "hospital-a");
  EXPECT_EQ(rows[0].examples, 20);
  EXPECT_THAT(rows[0].train_metrics, EqualsProto(commit.participations[1].train_metrics));
  EXPECT_EQ(rows[0].update_sha256, commit.participations[1].update_sha256);
  EXPECT_EQ(rows[0].state, ParticipationState::kUploaded);
  EXPECT_EQ(rows[1].site, "hospital-b");
  EXPECT_EQ(rows[1].examples, 10);

  // No run_state: the run is untouched.
  ASSERT_OK_AND_ASSIGN(RunRecord run, storage_->GetRun(id));
  EXPECT_EQ(run.state, RunState::kPending);
}

TEST_P(StorageConformanceTest, CommitRoundMovesRunStateInSameCommit) {
  int64_t id = CreateRunOrDie();
  RoundCommit first = MakeCommit(id, 0, {});
  first.run_state = RunState::kRunning;
  ASSERT_THAT(storage_->CommitRound(first), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord running, storage_->GetRun(id));
  EXPECT_EQ(running.state, RunState::kRunning);
  EXPECT_EQ(running.finished_at, 0);

  RoundCommit last = MakeCommit(id, 1, {"hospital-a"});
  last.run_state = RunState::kDone;
  ASSERT_THAT(storage_->CommitRound(last), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord done, storage_->GetRun(id));
  EXPECT_EQ(done.state, RunState::kDone);
  EXPECT_EQ(done.error, "");
  // A terminal state finishes the run when the round finished.
  EXPECT_EQ(done.finished_at, last.round.finished_at);
}

TEST_P(StorageConformanceTest, DuplicateCommitRoundIsAlreadyExistsAndChangesNothing) {
  int64_t id = CreateRunOrDie();
  RoundCommit original = MakeCommit(id, 1, {"hospital-a"});
  ASSERT_THAT(storage_->CommitRound(original), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds_before, storage_->ListRounds(id));
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows_before,
                       storage_->ListParticipations(id));

  RoundCommit again = MakeCommit(id, 1, {"hospital-a", "hospital-b"});
  again.round.model_sha256 = Hash("a different model");
  again.participations[0].examples = 999;
  again.run_state = RunState::kFailed;
  again.run_error = "should not be stored";
  EXPECT_THAT(storage_->CommitRound(again),
              StatusIs(absl::StatusCode::kAlreadyExists, ::testing::HasSubstr("round 1 of run 1")));

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds_after, storage_->ListRounds(id));
  ASSERT_EQ(rounds_after.size(), rounds_before.size());
  EXPECT_EQ(rounds_after[0].model_sha256, original.round.model_sha256);
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows_after,
                       storage_->ListParticipations(id));
  ASSERT_EQ(rows_after.size(), rows_before.size());
  EXPECT_EQ(rows_after[0].examples, rows_before[0].examples);
  ASSERT_OK_AND_ASSIGN(RunRecord run, storage_->GetRun(id));
  EXPECT_EQ(run.state, RunState::kPending);
  EXPECT_EQ(run.error, "");
  ASSERT_OK_AND_ASSIGN(std::set<std::string> models, storage_->ReferencedModels());
  EXPECT_EQ(models, std::set<std::string>{original.round.model_sha256});
}

TEST_P(StorageConformanceTest, CommitRoundOfUnknownRunIsNotFound) {
  EXPECT_THAT(storage_->CommitRound(MakeCommit(4, 1, {"hospital-a"})),
              StatusIs(absl::StatusCode::kNotFound, "run 4 does not exist"));
  ASSERT_OK_AND_ASSIGN(std::set<std::string> models, storage_->ReferencedModels());
  EXPECT_TRUE(models.empty());
}

TEST_P(StorageConformanceTest, CommitRoundRejectsMalformedCommitsAndStoresNothing) {
  int64_t id = CreateRunOrDie();

  RoundCommit bad_hash = MakeCommit(id, 1, {"hospital-a"});
  bad_hash.round.model_sha256 = "../../etc/passwd";
  EXPECT_THAT(storage_->CommitRound(bad_hash),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("model_sha256")));

  RoundCommit wrong_round = MakeCommit(id, 1, {"hospital-a", "hospital-b"});
  wrong_round.participations[1].round = 2;
  EXPECT_THAT(
      storage_->CommitRound(wrong_round),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("site 'hospital-b'")));

  RoundCommit twice = MakeCommit(id, 1, {"hospital-a", "hospital-a"});
  EXPECT_THAT(storage_->CommitRound(twice),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("appears twice")));

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(id));
  EXPECT_TRUE(rounds.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  EXPECT_TRUE(rows.empty());
}

TEST_P(StorageConformanceTest, ConcurrentCommitsOfOneRoundApplyExactlyOnce) {
  int64_t id = CreateRunOrDie();
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::atomic<int> already_exists{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      RoundCommit commit = MakeCommit(id, 1, {"site-" + std::to_string(i)});
      absl::Status status = storage_->CommitRound(commit);
      if (status.ok()) ++ok;
      if (status.code() == absl::StatusCode::kAlreadyExists) ++already_exists;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(already_exists.load(), kThreads - 1);
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  EXPECT_EQ(rows.size(), 1u);
}

// --- Evaluation and participation --------------------------------------------

TEST_P(StorageConformanceTest, RecordEvaluationStoresAggregateAndPerSiteRows) {
  int64_t id = CreateRunOrDie();
  RoundCommit commit = MakeCommit(id, 1, {"hospital-a"});
  ASSERT_THAT(storage_->CommitRound(commit), IsOk());

  // hospital-a trained this round; hospital-c only evaluates.
  ParticipationRecord a_eval;
  a_eval.run_id = id;
  a_eval.round = 1;
  a_eval.site = "hospital-a";
  a_eval.eval_metrics = MakeMetrics(40, 0.5);
  ParticipationRecord c_eval = a_eval;
  c_eval.site = "hospital-c";
  c_eval.eval_metrics = MakeMetrics(60, 0.75);
  const v1::Metrics aggregate = MakeMetrics(100, 0.65);
  ASSERT_THAT(storage_->RecordEvaluation(id, 1, aggregate, {a_eval, c_eval}, 175), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(id));
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].state, RoundState::kEvaluated);
  EXPECT_THAT(rounds[0].eval_metrics, EqualsProto(aggregate));
  EXPECT_EQ(rounds[0].finished_at, 175);
  EXPECT_EQ(rounds[0].model_sha256, commit.round.model_sha256);

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].site, "hospital-a");
  EXPECT_EQ(rows[0].state, ParticipationState::kEvaluated);
  EXPECT_THAT(rows[0].eval_metrics, EqualsProto(a_eval.eval_metrics));
  // Training columns survive the evaluation upsert.
  EXPECT_EQ(rows[0].examples, commit.participations[0].examples);
  EXPECT_THAT(rows[0].train_metrics, EqualsProto(commit.participations[0].train_metrics));
  EXPECT_EQ(rows[0].update_sha256, commit.participations[0].update_sha256);
  EXPECT_EQ(rows[1].site, "hospital-c");
  EXPECT_EQ(rows[1].state, ParticipationState::kEvaluated);
  EXPECT_THAT(rows[1].eval_metrics, EqualsProto(c_eval.eval_metrics));
}

TEST_P(StorageConformanceTest, RecordEvaluationKeepsAGivenNonDefaultState) {
  int64_t id = CreateRunOrDie();
  ASSERT_THAT(storage_->CommitRound(MakeCommit(id, 0, {})), IsOk());
  ParticipationRecord dropped;
  dropped.run_id = id;
  dropped.round = 0;
  dropped.site = "hospital-a";
  dropped.state = ParticipationState::kDropped;
  dropped.detail = "evaluation timed out";
  ASSERT_THAT(storage_->RecordEvaluation(id, 0, v1::Metrics(), {dropped}, 10), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, ParticipationState::kDropped);
  EXPECT_EQ(rows[0].detail, "evaluation timed out");
}

TEST_P(StorageConformanceTest, RecordEvaluationOfUnknownRoundIsNotFoundAndChangesNothing) {
  int64_t id = CreateRunOrDie();
  ParticipationRecord row = MakeParticipation(id, 2, "hospital-a", 5);
  EXPECT_THAT(storage_->RecordEvaluation(id, 2, v1::Metrics(), {row}, 10),
              StatusIs(absl::StatusCode::kNotFound, "round 2 of run 1 does not exist"));
  EXPECT_THAT(storage_->RecordEvaluation(9, 2, v1::Metrics(), {}, 10),
              StatusIs(absl::StatusCode::kNotFound, "run 9 does not exist"));
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  EXPECT_TRUE(rows.empty());
}

TEST_P(StorageConformanceTest, RecordEvaluationRejectsRowOfAnotherRound) {
  int64_t id = CreateRunOrDie();
  ASSERT_THAT(storage_->CommitRound(MakeCommit(id, 1, {})), IsOk());
  ParticipationRecord row = MakeParticipation(id, 2, "hospital-a", 5);
  EXPECT_THAT(
      storage_->RecordEvaluation(id, 1, v1::Metrics(), {row}, 10),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("expected run 1 round 1")));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(id));
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].state, RoundState::kCommitted);
}

TEST_P(StorageConformanceTest, RecordParticipationStoresAndReplacesRow) {
  int64_t id = CreateRunOrDie();
  ParticipationRecord refused;
  refused.run_id = id;
  refused.round = 1;
  refused.site = "hospital-a";
  refused.state = ParticipationState::kRefused;
  refused.detail = "policy: model resnet18 is not allowed";
  ASSERT_THAT(storage_->RecordParticipation(refused), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, ParticipationState::kRefused);
  EXPECT_EQ(rows[0].detail, refused.detail);
  EXPECT_EQ(rows[0].round, 1);

  ParticipationRecord dropped = refused;
  dropped.state = ParticipationState::kDropped;
  dropped.detail = "disconnected";
  ASSERT_THAT(storage_->RecordParticipation(dropped), IsOk());
  ASSERT_OK_AND_ASSIGN(rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, ParticipationState::kDropped);
  EXPECT_EQ(rows[0].detail, "disconnected");
}

TEST_P(StorageConformanceTest, RecordParticipationBeforeCommitIsReplacedByCommit) {
  int64_t id = CreateRunOrDie();
  ParticipationRecord early = MakeParticipation(id, 1, "hospital-a", 1);
  early.state = ParticipationState::kDropped;
  ASSERT_THAT(storage_->RecordParticipation(early), IsOk());
  RoundCommit commit = MakeCommit(id, 1, {"hospital-a"});
  ASSERT_THAT(storage_->CommitRound(commit), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, ParticipationState::kUploaded);
  EXPECT_EQ(rows[0].examples, commit.participations[0].examples);
}

TEST_P(StorageConformanceTest, RecordParticipationOfUnknownRunIsNotFound) {
  EXPECT_THAT(storage_->RecordParticipation(MakeParticipation(5, 1, "hospital-a", 1)),
              StatusIs(absl::StatusCode::kNotFound, "run 5 does not exist"));
}

TEST_P(StorageConformanceTest, RecordParticipationRejectsEmptySite) {
  int64_t id = CreateRunOrDie();
  EXPECT_THAT(
      storage_->RecordParticipation(MakeParticipation(id, 1, "", 1)),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("empty site name")));
}

// --- Listing ------------------------------------------------------------------

TEST_P(StorageConformanceTest, ListRoundsAscendingAndPerRun) {
  int64_t first = CreateRunOrDie();
  int64_t second = CreateRunOrDie();
  for (int32_t round : {2, 0, 1}) {
    ASSERT_THAT(storage_->CommitRound(MakeCommit(first, round, {})), IsOk());
  }
  ASSERT_THAT(storage_->CommitRound(MakeCommit(second, 0, {})), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(first));
  ASSERT_EQ(rounds.size(), 3u);
  for (int32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rounds[i].round, i);
    EXPECT_EQ(rounds[i].run_id, first);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> other, storage_->ListRounds(second));
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].run_id, second);
}

TEST_P(StorageConformanceTest, ListRoundsAndParticipationsOfUnknownRunAreNotFound) {
  EXPECT_THAT(storage_->ListRounds(6),
              StatusIs(absl::StatusCode::kNotFound, "run 6 does not exist"));
  EXPECT_THAT(storage_->ListParticipations(6),
              StatusIs(absl::StatusCode::kNotFound, "run 6 does not exist"));
}

TEST_P(StorageConformanceTest, ListParticipationsOrderedByRoundThenSite) {
  int64_t id = CreateRunOrDie();
  ASSERT_THAT(storage_->CommitRound(MakeCommit(id, 2, {"b", "a"})), IsOk());
  ASSERT_THAT(storage_->CommitRound(MakeCommit(id, 1, {"c", "a"})), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(id));
  std::vector<std::pair<int32_t, std::string>> keys;
  for (const ParticipationRecord& row : rows) keys.emplace_back(row.round, row.site);
  EXPECT_THAT(keys, ::testing::ElementsAre(::testing::Pair(1, "a"), ::testing::Pair(1, "c"),
                                           ::testing::Pair(2, "a"), ::testing::Pair(2, "b")));
}

TEST_P(StorageConformanceTest, ReferencedModelsCoversEveryRoundOfEveryRun) {
  ASSERT_OK_AND_ASSIGN(std::set<std::string> none, storage_->ReferencedModels());
  EXPECT_TRUE(none.empty());

  int64_t first = CreateRunOrDie();
  int64_t second = CreateRunOrDie();
  RoundCommit a = MakeCommit(first, 0, {});
  RoundCommit b = MakeCommit(first, 1, {"hospital-a"});
  RoundCommit c = MakeCommit(second, 0, {});
  c.round.model_sha256 = a.round.model_sha256;  // same initial model
  RoundCommit d = MakeCommit(second, 1, {});
  for (const RoundCommit* commit : {&a, &b, &c, &d}) {
    ASSERT_THAT(storage_->CommitRound(*commit), IsOk());
  }

  ASSERT_OK_AND_ASSIGN(std::set<std::string> models, storage_->ReferencedModels());
  EXPECT_EQ(models, (std::set<std::string>{a.round.model_sha256, b.round.model_sha256,
                                           d.round.model_sha256}));
  // Update hashes are not models.
  EXPECT_EQ(models.count(b.participations[0].update_sha256), 0u);
}

}  // namespace fedmi

// The suite continues by topic in files of their own.
#include "tests/coordinator/storage_conformance_audit.h"        // IWYU pragma: export
#include "tests/coordinator/storage_conformance_revocations.h"  // IWYU pragma: export

#endif  // FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_H_
