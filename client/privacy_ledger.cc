#include "client/privacy_ledger.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"
#include "common/privacy/dp_plan.h"
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

absl::StatusOr<std::vector<PrivacyLedger::Event>*> PrivacyLedger::EventsOf(int64_t run_id) {
  auto it = runs_.find(run_id);
  if (it != runs_.end()) return &it->second;
  std::vector<Event> events;
  if (!dir_.empty() && env_.FileExists(PathOf(run_id))) {
    ASSIGN_OR_RETURN(std::string text, env_.ReadFile(PathOf(run_id)));
    const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    // A ledger that cannot be read must stop training, never reset to zero.
    if (!json.is_object() || !json.contains("events") || !json["events"].is_array()) {
      return absl::DataLossError(
          absl::StrCat("privacy ledger ", PathOf(run_id),
                       " is unreadable; it is this site's record of "
                       "epsilon spent, so training stops until it is fixed"));
    }
    for (const auto& entry : json["events"]) {
      Event event;
      event.round = entry.value("round", 0);
      event.mechanism.sample_rate = entry.value("sample_rate", 0.0);
      event.mechanism.noise_multiplier = entry.value("noise_multiplier", 0.0);
      event.mechanism.steps = entry.value("steps", int64_t{0});
      events.push_back(event);
    }
  }
  return &(runs_[run_id] = std::move(events));
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
  ASSIGN_OR_RETURN(privacy::SampledGaussian mechanism, privacy::RoundMechanism(dp));
  ASSIGN_OR_RETURN(std::vector<Event> * events, EventsOf(run_id));
  std::vector<privacy::SampledGaussian> mechanisms;
  for (const Event& event : *events) mechanisms.push_back(event.mechanism);
  mechanisms.push_back(mechanism);
  ASSIGN_OR_RETURN(double epsilon, EpsilonOf(mechanisms, dp.delta()));
  if (max_epsilon && epsilon > *max_epsilon) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "site policy: round %d would take this site's epsilon to %.4g at delta %g (%d "
        "trainings of this run so far), past its max_epsilon %g",
        round, epsilon, dp.delta(), events->size(), *max_epsilon));
  }
  std::vector<Event> charged = *events;
  charged.push_back(Event{round, mechanism});
  RETURN_IF_ERROR(Write(run_id, charged));
  *events = std::move(charged);
  return epsilon;
}

absl::StatusOr<double> PrivacyLedger::Spent(int64_t run_id, double delta) {
  ASSIGN_OR_RETURN(std::vector<Event> * events, EventsOf(run_id));
  std::vector<privacy::SampledGaussian> mechanisms;
  for (const Event& event : *events) mechanisms.push_back(event.mechanism);
  return EpsilonOf(mechanisms, delta);
}

}  // namespace fedmi
