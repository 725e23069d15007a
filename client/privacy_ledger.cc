#include "client/privacy_ledger.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/base/status.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "nlohmann/json.hpp"

namespace fedmi {
namespace {

absl::StatusOr<double> EpsilonOf(const std::vector<privacy::SampledGaussian>& events,
                                 double delta) {
  privacy::RdpAccountant accountant;
  for (const auto& event : events) RETURN_IF_ERROR(accountant.Add(event));
  ASSIGN_OR_RETURN(privacy::PrivacySpent spent, accountant.Spent(delta));
  return spent.epsilon;
}

}  // namespace

PrivacyLedger::PrivacyLedger(std::string dir, Env& env) : dir_(std::move(dir)), env_(env) {}

std::string PrivacyLedger::PathOf(int64_t run_id) const {
  return absl::StrCat(dir_, "/run-", run_id, ".json");
}

absl::StatusOr<std::vector<PrivacyLedger::Event>> PrivacyLedger::ReadRunFile(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, env_.ReadFile(path));
  // A ledger that cannot be read must stop training, never reset to zero.
  const absl::Status unreadable = absl::DataLossError(
      absl::StrCat("privacy ledger ", path,
                   " is unreadable; it is this site's record of epsilon spent, so training "
                   "stops until it is restored"));
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("events") || !json["events"].is_array()) {
    return unreadable;
  }
  std::vector<Event> events;
  for (const auto& entry : json["events"]) {
    if (!entry.is_object()) return unreadable;
    for (const char* key : {"round", "sample_rate", "noise_multiplier", "steps"}) {
      if (!entry.contains(key) || !entry[key].is_number()) return unreadable;
    }
    Event event;
    event.round = entry["round"].get<int32_t>();
    event.mechanism.sample_rate = entry["sample_rate"].get<double>();
    event.mechanism.noise_multiplier = entry["noise_multiplier"].get<double>();
    event.mechanism.steps = entry["steps"].get<int64_t>();
    events.push_back(event);
  }
  return events;
}

absl::Status PrivacyLedger::LoadAll() {
  if (loaded_) return absl::OkStatus();
  if (!dir_.empty() && env_.FileExists(dir_)) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(dir_));
    for (const std::string& name : names) {
      absl::string_view id_text = name;
      int64_t run_id = 0;
      if (!absl::ConsumePrefix(&id_text, "run-") || !absl::ConsumeSuffix(&id_text, ".json") ||
          !absl::SimpleAtoi(id_text, &run_id)) {
        continue;  // temporaries of an interrupted write, or other files
      }
      ASSIGN_OR_RETURN(runs_[run_id], ReadRunFile(absl::StrCat(dir_, "/", name)));
    }
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status PrivacyLedger::Write(int64_t run_id, const std::vector<Event>& events) {
  if (dir_.empty()) return absl::OkStatus();
  nlohmann::json json = {{"run_id", run_id}, {"events", nlohmann::json::array()}};
  for (const Event& event : events) {
    json["events"].push_back({{"round", event.round},
                              {"sample_rate", event.mechanism.sample_rate},
                              {"noise_multiplier", event.mechanism.noise_multiplier},
                              {"steps", event.mechanism.steps}});
  }
  RETURN_IF_ERROR(env_.CreateDirs(dir_, 0700));
  ASSIGN_OR_RETURN(auto file, env_.NewAtomicFile(dir_, 0600));
  RETURN_IF_ERROR(file->Append(json.dump(2) + "\n"));
  return file->Commit(PathOf(run_id));
}

absl::StatusOr<double> PrivacyLedger::Charge(int64_t run_id, int32_t round,
                                             const v1::DpSettings& dp,
                                             std::optional<double> max_epsilon) {
  // Per patient: the ledger guards the same patients across runs and levels.
  ASSIGN_OR_RETURN(privacy::SampledGaussian mechanism, privacy::PatientRoundMechanism(dp));
  RETURN_IF_ERROR(LoadAll());
  std::vector<privacy::SampledGaussian> this_run = MechanismsOf(run_id);
  std::vector<privacy::SampledGaussian> all_runs = MechanismsOf(std::nullopt);
  this_run.push_back(mechanism);
  all_runs.push_back(mechanism);
  ASSIGN_OR_RETURN(double epsilon, EpsilonOf(this_run, dp.delta()));
  ASSIGN_OR_RETURN(double total, EpsilonOf(all_runs, dp.delta()));
  if (max_epsilon && total > *max_epsilon) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "site policy: round %d would take this site's epsilon to %s at delta %g over all "
        "%d trainings it has done in %d run(s), past its max_epsilon %g",
        round, FormatEpsilon(total), dp.delta(), all_runs.size(),
        runs_.size() + (runs_.count(run_id) ? 0 : 1), *max_epsilon));
  }
  std::vector<Event> charged = runs_[run_id];
  charged.push_back(Event{round, mechanism});
  RETURN_IF_ERROR(Write(run_id, charged));
  runs_[run_id] = std::move(charged);
  return epsilon;
}

std::vector<privacy::SampledGaussian> PrivacyLedger::MechanismsOf(
    std::optional<int64_t> run_id) const {
  std::vector<privacy::SampledGaussian> mechanisms;
  for (const auto& [id, events] : runs_) {
    if (run_id && id != *run_id) continue;
    for (const Event& event : events) mechanisms.push_back(event.mechanism);
  }
  return mechanisms;
}

absl::StatusOr<double> PrivacyLedger::Spent(int64_t run_id, double delta) {
  RETURN_IF_ERROR(LoadAll());
  return EpsilonOf(MechanismsOf(run_id), delta);
}

absl::StatusOr<double> PrivacyLedger::SpentOverAllRuns(double delta) {
  RETURN_IF_ERROR(LoadAll());
  return EpsilonOf(MechanismsOf(std::nullopt), delta);
}

}  // namespace fedmi
