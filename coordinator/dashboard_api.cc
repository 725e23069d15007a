#include "coordinator/dashboard_api.h"

#include <cmath>

#include "coordinator/dashboard_pages.h"

namespace fedmi::dashboard {
namespace {

nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json EvalJson(const v1::Metrics& metrics) {
  if (metrics.examples() <= 0) return nullptr;
  return {{"examples", metrics.examples()},
          {"loss", Number(metrics.loss())},
          {"auc", Number(metrics.auc())},
          {"sensitivity", Number(metrics.sensitivity())},
          {"specificity", Number(metrics.specificity())},
          {"accuracy", Number(metrics.accuracy())},
          {"dice", Number(metrics.dice())},
          {"iou", Number(metrics.iou())}};
}

nlohmann::json Summary(const v1::RunStatus& run) {
  const std::optional<v1::Metrics> latest = LatestEvaluation(run);
  return {{"run_id", run.run_id()},
          {"state", run.state()},
          {"phase", run.phase()},
          {"current_round", run.current_round()},
          {"completed_rounds", run.completed_rounds()},
          {"rounds", run.spec().rounds()},
          {"model", run.spec().model()},
          {"strategy", run.spec().strategy().empty() ? "fedavg" : run.spec().strategy()},
          {"error", run.error()},
          {"latest_auc", latest.has_value() ? Number(latest->auc()) : nlohmann::json(nullptr)}};
}

}  // namespace

nlohmann::json RunsJson(const std::vector<v1::RunStatus>& runs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& run : runs) list.push_back(Summary(run));
  return {{"runs", std::move(list)}};
}

nlohmann::json RunJson(const v1::RunStatus& run) {
  nlohmann::json json = Summary(run);
  nlohmann::json rounds = nlohmann::json::array();
  for (const auto& round : run.rounds()) {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& site : round.sites()) {
      sites.push_back({{"site", site.site()},
                       {"state", site.state()},
                       {"examples", site.examples()},
                       {"eval", EvalJson(site.eval_metrics())}});
    }
    rounds.push_back({{"round", round.round()},
                      {"state", round.state()},
                      {"eval", EvalJson(round.eval_metrics())},
                      {"sites", std::move(sites)}});
  }
  json["rounds"] = std::move(rounds);
  json["secure_aggregation"] = run.spec().secure_aggregation();
  return json;
}

nlohmann::json SitesJson(const std::vector<v1::SiteInfo>& sites) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& site : sites) {
    list.push_back({{"site", site.site()},
                    {"connected", site.connected()},
                    {"state", site.state()},
                    {"last_seen", Number(site.last_seen())},
                    {"certificate_expires", Number(site.certificate_expires())},
                    {"train_examples", site.train_examples()},
                    {"val_examples", site.val_examples()},
                    {"revoked_by", site.revoked_by()},
                    {"revoked_at", Number(site.revoked_at())},
                    {"revocation_reason", site.revocation_reason()}});
  }
  return {{"sites", std::move(list)}};
}

}  // namespace fedmi::dashboard
