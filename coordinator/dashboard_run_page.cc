// One run's page: progress, the latest numbers, per-round charts pooled
// and per site (small multiples on shared axes, so sites compare at a
// glance), the latest round's sites, privacy settings and the spec.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "common/plot/svg_chart.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_task.h"
#include "common/runspec/run_spec_json.h"
#include "coordinator/dashboard_html.h"
#include "coordinator/dashboard_pages.h"

namespace fedmi::dashboard {
namespace {

struct MetricDef {
  const char* title;
  double (*get)(const v1::Metrics&);
};

std::vector<MetricDef> MetricsOf(const v1::RunSpec& spec) {
  if (IsSegmentationRun(spec)) {
    return {{"Loss", [](const v1::Metrics& m) { return m.loss(); }},
            {"Dice", [](const v1::Metrics& m) { return m.dice(); }},
            {"IoU", [](const v1::Metrics& m) { return m.iou(); }},
            {"Mean image Dice", [](const v1::Metrics& m) { return m.mean_image_dice(); }}};
  }
  return {{"Loss", [](const v1::Metrics& m) { return m.loss(); }},
          {"AUC", [](const v1::Metrics& m) { return m.auc(); }},
          {"Sensitivity", [](const v1::Metrics& m) { return m.sensitivity(); }},
          {"Specificity", [](const v1::Metrics& m) { return m.specificity(); }}};
}

bool Measured(const v1::Metrics& metrics) { return metrics.examples() > 0; }

LineSeries PooledSeries(const v1::RunStatus& run, const MetricDef& metric) {
  LineSeries series{"pooled", {}, {}, {}, {}, {}};
  for (const auto& round : run.rounds()) {
    if (!Measured(round.eval_metrics())) continue;
    series.x.push_back(round.round());
    series.y.push_back(metric.get(round.eval_metrics()));
  }
  return series;
}

// Each site's own validation metric per round, by site name.
std::map<std::string, LineSeries> SiteSeries(const v1::RunStatus& run, const MetricDef& metric) {
  std::map<std::string, LineSeries> by_site;
  for (const auto& round : run.rounds()) {
    for (const auto& site : round.sites()) {
      LineSeries& series = by_site[site.site()];
      series.label = site.site();
      if (!Measured(site.eval_metrics())) continue;
      series.x.push_back(round.round());
      series.y.push_back(metric.get(site.eval_metrics()));
    }
  }
  return by_site;
}

std::string Card(const std::string& value_html, const std::string& label_html,
                 const std::string& id = "") {
  return absl::StrCat("<div class=\"card\"", id.empty() ? "" : absl::StrCat(" id=\"", id, "\""),
                      "><div class=\"big\">", value_html, "</div><div class=\"muted\">", label_html,
                      "</div></div>");
}

std::string SummaryCards(const v1::RunStatus& run, const std::vector<MetricDef>& metrics) {
  const int total = run.spec().rounds();
  std::string cards =
      Card(absl::StrCat(run.completed_rounds(), " of ", total),
           absl::StrCat("rounds done", run.state() == "running"
                                           ? absl::StrCat(" \xC2\xB7 now: ", Html(run.phase()))
                                           : ""),
           "rounds-done");
  const std::optional<v1::Metrics> latest = LatestEvaluation(run);
  const LineSeries headline = PooledSeries(run, metrics[1]);
  if (latest.has_value() && !headline.y.empty()) {
    std::string trend;
    if (headline.y.size() > 1) {
      const double change = headline.y.back() - headline.y[headline.y.size() - 2];
      trend = std::fabs(change) < 0.0005
                  ? " <span class=\"muted small\">= steady</span>"
                  : absl::StrFormat(" <span class=\"%s small\">%s %+.3f</span>",
                                    change > 0 ? "trend-up" : "trend-down",
                                    change > 0 ? "\xE2\x96\xB2" : "\xE2\x96\xBC", change);
    }
    const auto best = std::max_element(headline.y.begin(), headline.y.end());
    cards += Card(
        absl::StrCat(FormatMetric(headline.y.back()), trend),
        absl::StrCat("validation ", metrics[1].title, ", round ",
                     static_cast<int>(headline.x.back()), " (best ", FormatMetric(*best),
                     " in round ", static_cast<int>(headline.x[best - headline.y.begin()]), ")"),
        "latest-metric");
    cards += Card(absl::StrCat(FormatMetric(metrics[2].get(*latest)), " / ",
                               FormatMetric(metrics[3].get(*latest))),
                  absl::StrCat(Html(absl::AsciiStrToLower(metrics[2].title)), " / ",
                               Html(absl::AsciiStrToLower(metrics[3].title)), " (pooled)"));
  } else {
    cards += Card("\xE2\x80\x93", "no round evaluated yet");
  }
  return absl::StrCat("<div class=\"cards\">", cards, "</div>");
}

std::string PooledCharts(const v1::RunStatus& run, const std::vector<MetricDef>& metrics) {
  std::string out =
      "<h2>Validation metrics per round (pooled over sites)</h2><div class=\"charts\">";
  for (const MetricDef& metric : metrics) {
    SvgChartOptions options;
    // Four in a row on a 1280-pixel screen.
    options.width = 296;
    options.height = 210;
    options.title = metric.title;
    options.x_label = "round";
    out += RenderSvgLineChart({PooledSeries(run, metric)}, options);
  }
  return out + "</div>";
}

// One row per site, one small chart per metric; each metric's y axis is
// the same for every site.
std::string SiteMultiples(const v1::RunStatus& run, const std::vector<MetricDef>& metrics) {
  std::vector<std::map<std::string, LineSeries>> per_metric;
  for (const MetricDef& metric : metrics) per_metric.push_back(SiteSeries(run, metric));
  if (per_metric.empty() || per_metric[0].empty()) return "";
  std::string out =
      "<h2>Each site's own validation data</h2><table class=\"multiples\"><thead><tr><th>Site</th>";
  for (const MetricDef& metric : metrics) absl::StrAppend(&out, "<th>", metric.title, "</th>");
  out += "</tr></thead><tbody>";
  std::vector<std::pair<double, double>> ranges;
  for (const auto& by_site : per_metric) {
    double low = INFINITY, high = -INFINITY;
    for (const auto& [site, series] : by_site) {
      for (double y : series.y) {
        if (!std::isfinite(y)) continue;
        low = std::min(low, y);
        high = std::max(high, y);
      }
    }
    const std::vector<double> ticks = NiceTicks(low, high, 4);
    ranges.emplace_back(ticks.empty() ? 0 : ticks.front(), ticks.empty() ? 1 : ticks.back());
  }
  int index = 0;
  for (const auto& [site, unused] : per_metric[0]) {
    absl::StrAppend(&out, "<tr data-site=\"", Html(site), "\"><td><strong>", Html(site),
                    "</strong></td>");
    for (size_t m = 0; m < metrics.size(); ++m) {
      LineSeries series = per_metric[m].at(site);
      series.color = kLineChartPalette[index % std::size(kLineChartPalette)];
      SvgChartOptions options;
      options.width = 250;
      options.height = 130;
      options.y_min = ranges[m].first;
      options.y_max = ranges[m].second;
      options.legend = false;
      options.empty_text = "not evaluated";
      out += absl::StrCat("<td>", RenderSvgLineChart({series}, options), "</td>");
    }
    out += "</tr>";
    ++index;
  }
  return out + "</tbody></table>";
}

std::string LatestRoundTable(const v1::RunStatus& run, const std::vector<MetricDef>& metrics) {
  if (run.rounds().empty()) return "";
  const v1::RoundStatus& round = run.rounds(run.rounds_size() - 1);
  std::string out = absl::StrCat("<h2>Round ", round.round(), ": ", Html(round.state()),
                                 "</h2><table class=\"round\"><thead><tr><th>Site</th>"
                                 "<th>State</th><th>Images</th>");
  for (const MetricDef& metric : metrics) absl::StrAppend(&out, "<th>", metric.title, "</th>");
  out += "<th>Note</th></tr></thead><tbody>";
  for (const auto& site : round.sites()) {
    absl::StrAppend(&out, "<tr><td>", Html(site.site()), "</td><td>", Html(site.state()),
                    "</td><td class=\"num\">", site.examples(), "</td>");
    for (const MetricDef& metric : metrics) {
      absl::StrAppend(&out, "<td class=\"num\">",
                      Measured(site.eval_metrics()) ? FormatMetric(metric.get(site.eval_metrics()))
                                                    : "\xE2\x80\x93",
                      "</td>");
    }
    absl::StrAppend(&out, "<td class=\"small\">", Html(site.detail()), "</td></tr>");
  }
  return out + "</tbody></table>";
}

std::string Row(absl::string_view key, const std::string& value_html) {
  return absl::StrCat("<dt>", Html(key), "</dt><dd>", value_html, "</dd>");
}

std::string PrivacyCard(const v1::RunStatus& run) {
  const v1::RunSpec& spec = run.spec();
  std::string rows;
  rows += Row("Differential privacy", HasDifferentialPrivacy(spec)
                                          ? Html(DescribeDp(spec.dp()))
                                          : "<span class=\"muted\">off</span>");
  if (run.has_privacy()) {
    const v1::PrivacyBudget& budget = run.privacy();
    rows += Row(
        "Epsilon spent",
        absl::StrCat("<span class=\"", budget.exhausted() ? "bad" : "good", "\">",
                     Html(FormatEpsilon(budget.epsilon_spent())), "</span> of ",
                     Html(FormatEpsilon(budget.target_epsilon())), " at delta ",
                     absl::StrFormat("%g", budget.delta()), " after ", budget.rounds_accounted(),
                     " rounds", budget.exhausted() ? " (budget exhausted)" : ""));
  }
  std::string secagg = "<span class=\"muted\">off</span>";
  if (spec.secure_aggregation()) {
    secagg = "on: the coordinator sees only the sum of the sites' updates";
    if (spec.secagg().threshold() > 0) {
      absl::StrAppend(&secagg, " (threshold ", spec.secagg().threshold(), ")");
    }
  }
  rows += Row("Secure aggregation", secagg);
  rows += Row("Update norm bound", spec.max_update_norm() > 0
                                       ? absl::StrFormat("%g (L2)", spec.max_update_norm())
                                       : "<span class=\"muted\">none</span>");
  return absl::StrCat("<div class=\"card privacy\"><h2>Privacy</h2><dl class=\"kv\">", rows,
                      "</dl></div>");
}

std::string SpecCard(const v1::RunStatus& run) {
  const v1::RunSpec& spec = run.spec();
  std::string rows;
  rows += Row("Model", Html(spec.model()));
  rows += Row("Strategy", Html(spec.strategy().empty() ? "fedavg" : spec.strategy()));
  rows += Row("Rounds", absl::StrCat(spec.rounds()));
  rows += Row("Sites", absl::StrCat("at least ", spec.min_sites(),
                                    spec.max_sites() > 0
                                        ? absl::StrCat(", at most ", spec.max_sites(), " a round")
                                        : ", every connected site"));
  rows += Row("Local training",
              absl::StrCat(spec.local_epochs(), " epoch(s), batch ", spec.batch_size(), ", ",
                           Html(spec.optimizer()), " lr ", absl::StrFormat("%g", spec.lr())));
  rows += Row("Seed", absl::StrCat(spec.seed()));
  rows += Row("Round timeout", absl::StrFormat("%g s", spec.round_timeout_s()));
  rows += Row("Spec SHA-256", absl::StrCat("<code>", HexEncode(run.spec_sha256()), "</code>"));
  rows += Row("Created", Html(FormatTime(run.created_at())));
  return absl::StrCat("<div class=\"card spec\"><h2>Spec</h2><dl class=\"kv\">", rows,
                      "</dl><details><summary>Full spec (JSON)</summary><pre>",
                      Html(RunSpecToJson(spec).dump(2)), "</pre></details></div>");
}

}  // namespace

std::string RunPage(const v1::RunStatus& run, double now) {
  const std::vector<MetricDef> metrics = MetricsOf(run.spec());
  std::string main = absl::StrCat(
      "<p class=\"small\"><a href=\"/runs\">\xE2\x86\x90 All runs</a></p><h1 id=\"run-title\" "
      "data-state=\"",
      Html(run.state()), "\" data-completed-rounds=\"", run.completed_rounds(), "\">Run ",
      run.run_id(), " ", StateBadge(run.state()), " <span class=\"muted small\">",
      Html(run.spec().model()), ", ",
      Html(run.spec().strategy().empty() ? "fedavg" : run.spec().strategy()), "</span></h1>");
  if (!run.error().empty()) {
    absl::StrAppend(&main, "<div class=\"banner fail\">", Html(run.error()), "</div>");
  }
  absl::StrAppend(&main, "<div class=\"card\">",
                  ProgressBar(run.completed_rounds(), run.spec().rounds(),
                              absl::StrCat(run.completed_rounds(), " of ", run.spec().rounds(),
                                           " rounds evaluated")),
                  "</div>", SummaryCards(run, metrics), PooledCharts(run, metrics),
                  SiteMultiples(run, metrics), LatestRoundTable(run, metrics),
                  "<div class=\"cards\">", PrivacyCard(run), SpecCard(run), "</div>");
  const bool live = !IsTerminalRunState(run.state());
  return RenderPage(PageFrame{absl::StrCat("Run ", run.run_id()), Section::kRuns, live, now}, main);
}

}  // namespace fedmi::dashboard
