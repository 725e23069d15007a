// A finished run as the coordinator reports it, for tests of the model card
// (tests/cli/model_card_test.cc, tests/cli/exported_model_test.cc).
#ifndef FEDMI_TESTS_CLI_MODEL_CARD_FIXTURE_H_
#define FEDMI_TESTS_CLI_MODEL_CARD_FIXTURE_H_

#include <string>

#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

inline constexpr double kRunCreatedAt = 1796601600;  // 2026-12-07T00:00:00Z

// Run 4 of a cnn, fedavg with secure aggregation, two rounds: round 1 took
// updates from site-1..3, round 2 from site-1 and site-2 while site-4 only
// evaluated (it sent no update, so it is no contributor). Round 2 finished
// at kRunCreatedAt + 120 with pooled validation metrics and an operating
// threshold.
inline v1::RunStatus FinishedRun() {
  v1::RunStatus run;
  run.set_run_id(4);
  run.set_state("done");
  run.set_created_at(kRunCreatedAt);
  run.set_spec_sha256(Sha256::Digest("the run's spec"));
  v1::RunSpec& spec = *run.mutable_spec();
  spec.set_model("cnn");
  spec.set_strategy("fedavg");
  spec.set_num_classes(2);
  spec.set_rounds(2);
  spec.set_seed(5);
  spec.set_secure_aggregation(true);
  for (int round = 1; round <= 2; ++round) {
    v1::RoundStatus& stored = *run.add_rounds();
    stored.set_round(round);
    stored.set_state("done");
    stored.set_finished_at(kRunCreatedAt + 60 * round);
    const char* sites[] = {"site-1", "site-2", "site-3"};
    for (int i = 0; i < (round == 1 ? 3 : 2); ++i) {
      v1::SiteParticipation& site = *stored.add_sites();
      site.set_site(sites[i]);
      site.set_state(StateName(ParticipationState::kUploaded));
      site.set_update_sha256(Sha256::Digest(sites[i]));
    }
    if (round == 2) {
      v1::SiteParticipation& evaluator = *stored.add_sites();
      evaluator.set_site("site-4");
      evaluator.set_state(StateName(ParticipationState::kEvaluated));
      v1::Metrics& metrics = *stored.mutable_eval_metrics();
      metrics.set_examples(524);
      metrics.set_loss(0.3125);
      metrics.set_auc(0.9612);
      metrics.set_accuracy(0.9);
      metrics.set_sensitivity(0.93);
      metrics.set_specificity(0.85);
      metrics.set_f1(0.91);
      metrics.set_operating_threshold(0.62);
      metrics.set_operating_sensitivity(0.95);
      metrics.set_operating_specificity(0.8);
    }
  }
  return run;
}

}  // namespace fedmi::cli

#endif  // FEDMI_TESTS_CLI_MODEL_CARD_FIXTURE_H_
