// PrivacyLedger: a site's own accountant for sample-level differential
// privacy. Before each DP-SGD round the site charges it with that round's
// mechanism (sample rate, noise multiplier, steps, all from the run spec it
// checked), and refuses the round when the epsilon its patients have spent
// over every run in the ledger would pass the policy's max_epsilon: the
// same patients are in every run, and a coordinator must not get a fresh
// budget by starting another. It does not trust the coordinator's count:
// every training this site did is charged, retries of a round number
// included, and the charge is written before training starts, so a crash
// never forgets one.
//
// One JSON file per run in `dir` (run-<id>.json): the events charged, in
// order. An empty `dir` keeps them in memory only (tests, benchmarks).
//
// Thread-compatible: the site's task thread uses it. Files go through Env.
#ifndef FEDMI_CLIENT_PRIVACY_LEDGER_H_
#define FEDMI_CLIENT_PRIVACY_LEDGER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/privacy/rdp_accountant.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

class PrivacyLedger {
 public:
  PrivacyLedger(std::string dir, Env& env);

  // Charges one training of `round` of `run_id` under `dp` and returns this
  // site's epsilon for that run (at dp.delta) with it. PermissionDenied
  // ("site policy: ...", naming both numbers) when the epsilon of every run
  // in the ledger together would pass `max_epsilon`: nothing is charged
  // then. DataLoss for a ledger file that cannot be read; the Env's error
  // when the ledger cannot be written.
  absl::StatusOr<double> Charge(int64_t run_id, int32_t round, const v1::DpSettings& dp,
                                std::optional<double> max_epsilon);

  // This site's epsilon for `run_id` at `delta` so far (0 before any charge).
  absl::StatusOr<double> Spent(int64_t run_id, double delta);
  // Over every run in the ledger.
  absl::StatusOr<double> SpentOverAllRuns(double delta);

 private:
  struct Event {
    int32_t round = 0;
    privacy::SampledGaussian mechanism;
  };
  // Reads every run-*.json of the ledger once.
  absl::Status LoadAll();
  absl::StatusOr<std::vector<Event>> ReadRunFile(const std::string& path);
  absl::Status Write(int64_t run_id, const std::vector<Event>& events);
  // The charged mechanisms of `run_id`, or of every run.
  std::vector<privacy::SampledGaussian> MechanismsOf(std::optional<int64_t> run_id) const;
  std::string PathOf(int64_t run_id) const;

  const std::string dir_;
  Env& env_;
  bool loaded_ = false;
  std::map<int64_t, std::vector<Event>> runs_;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_PRIVACY_LEDGER_H_
