#include "cli/run_status_text.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "cli/command_support.h"
#include "cli/secagg_flags.h"
#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_task.h"
#include "common/runspec/run_spec_json.h"

namespace fedmi::cli {

nlohmann::json MetricsJson(const v1::Metrics& metrics) {
  nlohmann::json json = {{"examples", metrics.examples()},
                         {"loss", JsonNumber(metrics.loss())},
                         {"auc", JsonNumber(metrics.auc())},
                         {"accuracy", JsonNumber(metrics.accuracy())},
                         {"sensitivity", JsonNumber(metrics.sensitivity())},
                         {"specificity", JsonNumber(metrics.specificity())},
                         {"f1", JsonNumber(metrics.f1())}};
  if (metrics.has_overlap()) {
    json["dice"] = JsonNumber(metrics.dice());
    json["iou"] = JsonNumber(metrics.iou());
    json["mean_image_dice"] = JsonNumber(metrics.mean_image_dice());
  }
  return json;
}

namespace {

nlohmann::json MeasuredMetricsJson(const v1::Metrics& metrics) {
  if (metrics.examples() == 0) return nullptr;  // not measured
  return MetricsJson(metrics);
}

// Sites report only loss and accuracy for local training.
nlohmann::json TrainMetricsJson(const v1::Metrics& metrics) {
  if (metrics.examples() == 0) return nullptr;
  return {{"examples", metrics.examples()},
          {"loss", JsonNumber(metrics.loss())},
          {"accuracy", JsonNumber(metrics.accuracy())}};
}

nlohmann::json RoundJson(const v1::RoundStatus& round) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& site : round.sites()) {
    sites.push_back({{"site", site.site()},
                     {"state", site.state()},
                     {"examples", site.examples()},
                     {"update_sha256", HexEncode(site.update_sha256())},
                     {"update_bytes", site.train_metrics().update_bytes()},
                     {"train", TrainMetricsJson(site.train_metrics())},
                     {"eval", MeasuredMetricsJson(site.eval_metrics())},
                     {"detail", site.detail()}});
  }
  return {{"round", round.round()},
          {"state", round.state()},
          {"started_at", JsonNumber(round.started_at())},
          {"finished_at", JsonNumber(round.finished_at())},
          {"model_sha256", HexEncode(round.model_sha256())},
          {"eval", MeasuredMetricsJson(round.eval_metrics())},
          {"sites", std::move(sites)}};
}

constexpr char kRoundRowFormat[] = "%5s  %-10s  %5s  %8s  %8s  %8s  %8s  %8s  %8s\n";
// Segmentation runs: pooled Dice and IoU, and the mean of per-image Dice.
constexpr char kSegmentationRowFormat[] = "%5s  %-10s  %5s  %8s  %8s  %8s  %8s  %8s\n";

void PrintRoundRow(std::ostream& out, const v1::RoundStatus& round, bool segmentation) {
  int dropped = 0;
  for (const auto& site : round.sites()) dropped += HasLeftRound(site.state()) ? 1 : 0;
  const int total = round.sites_size();
  std::string sites =
      dropped == 0 ? absl::StrCat(total) : absl::StrCat(total - dropped, "/", total);
  const v1::Metrics& m = round.eval_metrics();
  const bool measured = m.examples() > 0;
  auto metric = [&](double value) { return measured ? FormatMetric(value) : std::string("-"); };
  if (segmentation) {
    auto overlap = [&](double value) {
      return m.has_overlap() ? FormatMetric(value) : std::string("-");
    };
    out << absl::StrFormat(kSegmentationRowFormat, absl::StrCat(round.round()), round.state(),
                           sites, measured ? absl::StrCat(m.examples()) : "-", metric(m.loss()),
                           overlap(m.dice()), overlap(m.iou()), overlap(m.mean_image_dice()));
    return;
  }
  out << absl::StrFormat(kRoundRowFormat, absl::StrCat(round.round()), round.state(), sites,
                         measured ? absl::StrCat(m.examples()) : "-", metric(m.loss()),
                         metric(m.auc()), metric(m.accuracy()), metric(m.sensitivity()),
                         metric(m.specificity()));
}

// "1.6 MB", "512 B": an update's size (frozen tensors are not sent).
std::string FormatUpdateBytes(int64_t bytes) {
  if (bytes <= 0) return "-";
  if (bytes < 1000) return absl::StrCat(bytes, " B");
  if (bytes < 1000 * 1000) return absl::StrFormat("%.1f kB", bytes / 1e3);
  return absl::StrFormat("%.1f MB", bytes / 1e6);
}

void PrintSiteRows(std::ostream& out, const v1::RoundStatus& round) {
  for (const auto& site : round.sites()) {
    const v1::Metrics& e = site.eval_metrics();
    if (e.has_overlap()) {
      out << absl::StrFormat(
          "       %-20s %-10s examples %-7d train loss %-8s update %-9s eval dice %-8s iou %s\n",
          site.site(), site.state(), site.examples(),
          site.train_metrics().examples() > 0 ? FormatMetric(site.train_metrics().loss()) : "-",
          FormatUpdateBytes(site.train_metrics().update_bytes()), FormatMetric(e.dice()),
          FormatMetric(e.iou()));
      continue;
    }
    out << absl::StrFormat(
        "       %-20s %-10s examples %-7d train loss %-8s update %-9s eval auc %-8s acc %s\n",
        site.site(), site.state(), site.examples(),
        site.train_metrics().examples() > 0 ? FormatMetric(site.train_metrics().loss()) : "-",
        FormatUpdateBytes(site.train_metrics().update_bytes()),
        e.examples() > 0 ? FormatMetric(e.auc()) : "-",
        e.examples() > 0 ? FormatMetric(e.accuracy()) : "-");
  }
}

// Why sites left the round, e.g. "site-2 refused: site policy: ...". Shown
// without --sites too: a refusal by a site's policy is the operator's to see.
void PrintDroppedSites(std::ostream& out, const v1::RoundStatus& round) {
  for (const auto& site : round.sites()) {
    if (!HasLeftRound(site.state())) continue;
    // The coordinator's detail may already start with the state ("refused: ...").
    absl::string_view detail = site.detail();
    absl::ConsumePrefix(&detail, absl::StrCat(site.state(), ": "));
    out << "       " << site.site() << " " << site.state();
    if (!detail.empty()) out << ": " << detail;
    out << "\n";
  }
}

}  // namespace

nlohmann::json PrivacyJson(const v1::PrivacyBudget& budget) {
  nlohmann::json sites = nlohmann::json::array();
  for (const v1::SitePrivacy& site : budget.sites()) {
    sites.push_back({{"site", site.site()},
                     {"rounds", site.rounds()},
                     {"epsilon", JsonNumber(site.epsilon())}});
  }
  return {{"target_epsilon", JsonNumber(budget.target_epsilon())},
          {"delta", JsonNumber(budget.delta())},
          {"epsilon_spent", JsonNumber(budget.epsilon_spent())},
          {"rounds_accounted", budget.rounds_accounted()},
          {"exhausted", budget.exhausted()},
          {"sites", std::move(sites)}};
}

nlohmann::json RunJson(const v1::RunStatus& run) {
  nlohmann::json rounds = nlohmann::json::array();
  for (const auto& round : run.rounds()) rounds.push_back(RoundJson(round));
  return {{"run_id", run.run_id()},
          {"state", run.state()},
          {"phase", run.phase()},
          {"current_round", run.current_round()},
          {"completed_rounds", run.completed_rounds()},
          {"error", run.error()},
          {"created_at", JsonNumber(run.created_at())},
          {"spec_sha256", HexEncode(run.spec_sha256())},
          {"spec", RunSpecToJson(run.spec())},
          {"privacy", run.has_privacy() ? PrivacyJson(run.privacy()) : nlohmann::json(nullptr)},
          {"rounds", std::move(rounds)}};
}

bool IsRoundLive(absl::string_view round_state) {
  return !ParseRoundState(round_state).has_value();
}

void PrintRunHeader(std::ostream& out, const v1::RunStatus& run) {
  const v1::RunSpec& spec = run.spec();
  out << absl::StrFormat("run %d: %s", run.run_id(), run.state());
  if (!IsTerminalRunState(run.state())) {
    out << absl::StrFormat(", %s, round %d of %d", run.phase(), run.current_round(), spec.rounds());
  }
  out << absl::StrFormat(" (%d of %d rounds completed)\n", run.completed_rounds(), spec.rounds());
  out << absl::StrFormat(
      "  %s, %s, min %d sites%s, %d local epochs, batch %d, lr %g, %s, seed %d\n", spec.model(),
      spec.strategy(), spec.min_sites(),
      spec.max_sites() > 0 ? absl::StrCat(", max ", spec.max_sites()) : "", spec.local_epochs(),
      spec.batch_size(), spec.lr(), spec.optimizer(), spec.seed());
  out << "  secure aggregation " << DescribeSecAgg(spec) << "\n";
  if (HasDifferentialPrivacy(spec)) {
    out << "  differential privacy " << DescribeDp(spec.dp()) << "\n";
    const v1::PrivacyBudget& budget = run.privacy();
    out << absl::StrFormat("  epsilon spent %s of %g at delta %g after %d round(s)%s\n",
                           FormatEpsilon(budget.epsilon_spent()), budget.target_epsilon(),
                           budget.delta(), budget.rounds_accounted(),
                           budget.exhausted() ? " (budget exhausted)" : "");
    for (const v1::SitePrivacy& site : budget.sites()) {
      out << absl::StrFormat("    %-20s epsilon %s over %d round(s)\n", site.site(),
                             FormatEpsilon(site.epsilon()), site.rounds());
    }
  }
  out << "  created " << FormatUnixTime(run.created_at()) << "\n";
  // A run that stopped at its privacy budget is done, not failed: say why.
  if (!run.error().empty()) {
    out << (run.state() == "done" ? "  ended: " : "  error: ") << run.error() << "\n";
  }
}

void PrintRoundTableHeader(std::ostream& out, bool segmentation) {
  // Sites evaluate each round's model on their own validation splits; a
  // reader must not take these numbers for test results.
  out << "metrics: each round's global model on the sites' validation data, pooled\n";
  if (segmentation) {
    out << absl::StrFormat(kSegmentationRowFormat, "ROUND", "STATE", "SITES", "EXAMPLES", "LOSS",
                           "DICE", "IOU", "IMG-DICE");
    return;
  }
  out << absl::StrFormat(kRoundRowFormat, "ROUND", "STATE", "SITES", "EXAMPLES", "LOSS", "AUC",
                         "ACC", "SENS", "SPEC");
}

void PrintRoundRows(std::ostream& out, const v1::RoundStatus& round, bool with_sites,
                    bool segmentation) {
  PrintRoundRow(out, round, segmentation);
  if (with_sites) PrintSiteRows(out, round);
  PrintDroppedSites(out, round);
}

void PrintRunStatus(std::ostream& out, const v1::RunStatus& run, bool with_sites) {
  PrintRunHeader(out, run);
  if (run.rounds_size() == 0) {
    out << "  no rounds yet\n";
    return;
  }
  out << "\n";
  const bool segmentation = IsSegmentationRun(run.spec());
  PrintRoundTableHeader(out, segmentation);
  for (const auto& round : run.rounds()) PrintRoundRows(out, round, with_sites, segmentation);
}

std::string ProgressLine(const v1::RunStatus& run) {
  if (IsTerminalRunState(run.state())) {
    std::string line = absl::StrFormat("run %d %s after %d of %d rounds", run.run_id(), run.state(),
                                       run.completed_rounds(), run.spec().rounds());
    if (!run.error().empty()) absl::StrAppend(&line, ": ", run.error());
    return line;
  }
  std::string line = absl::StrFormat("run %d %s: %s, round %d of %d", run.run_id(), run.state(),
                                     run.phase(), run.current_round(), run.spec().rounds());
  for (const auto& round : run.rounds()) {
    if (round.round() != run.current_round() || !IsRoundLive(round.state())) continue;
    int uploaded = 0, evaluated = 0, dropped = 0;
    for (const auto& site : round.sites()) {
      const std::optional<ParticipationState> state = ParseParticipationState(site.state());
      uploaded += state == ParticipationState::kUploaded ? 1 : 0;
      evaluated += state == ParticipationState::kEvaluated ? 1 : 0;
      dropped += state.has_value() && HasLeftRound(*state) ? 1 : 0;
    }
    absl::StrAppend(&line, " (", round.sites_size(), " sites");
    if (uploaded > 0) absl::StrAppend(&line, ", ", uploaded, " uploaded");
    if (evaluated > 0) absl::StrAppend(&line, ", ", evaluated, " evaluated");
    if (dropped > 0) absl::StrAppend(&line, ", ", dropped, " dropped");
    absl::StrAppend(&line, ")");
  }
  return line;
}

}  // namespace fedmi::cli
