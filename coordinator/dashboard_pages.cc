#include "coordinator/dashboard_pages.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/names.h"
#include "common/plot/svg_chart.h"
#include "coordinator/dashboard_html.h"

namespace fedmi::dashboard {
namespace {

constexpr double kDay = 86400;
// Certificates expiring sooner than this are flagged.
constexpr double kExpiryWarning = 30 * kDay;

bool LeftRound(absl::string_view participation_state) {
  const std::optional<ParticipationState> state = ParseParticipationState(participation_state);
  return state == ParticipationState::kDropped || state == ParticipationState::kRefused;
}

std::string StrategyOf(const v1::RunSpec& spec) {
  std::string strategy = spec.strategy().empty() ? "fedavg" : spec.strategy();
  if (spec.has_server_optimizer() && !spec.server_optimizer().kind().empty() &&
      spec.server_optimizer().kind() != "fedavg") {
    absl::StrAppend(&strategy, " + ", spec.server_optimizer().kind());
  }
  if (spec.scaffold()) absl::StrAppend(&strategy, " + scaffold");
  return strategy;
}

// How many sites took part in the run's latest round, and how many of them
// are still in it.
std::string SitesInLatestRound(const v1::RunStatus& run) {
  if (run.rounds().empty()) return "\xE2\x80\x93";
  const v1::RoundStatus& round = run.rounds(run.rounds_size() - 1);
  int left = 0;
  for (const auto& site : round.sites()) left += LeftRound(site.state()) ? 1 : 0;
  const int total = round.sites_size();
  return left == 0 ? absl::StrCat(total) : absl::StrCat(total - left, " of ", total);
}

// "0.812 ▲ +0.031" against the round before.
std::string AucCell(const v1::RunStatus& run) {
  const std::vector<double> auc = AucPerRound(run);
  if (auc.empty()) return "<span class=\"muted\">not yet evaluated</span>";
  std::string cell = absl::StrCat("<span class=\"auc\">", FormatMetric(auc.back()), "</span>");
  if (auc.size() > 1) {
    const double change = auc.back() - auc[auc.size() - 2];
    if (change > 0.0005) {
      absl::StrAppend(&cell, " <span class=\"trend-up\" title=\"since the round before\">",
                      "\xE2\x96\xB2 +", absl::StrFormat("%.3f", change), "</span>");
    } else if (change < -0.0005) {
      absl::StrAppend(&cell, " <span class=\"trend-down\" title=\"since the round before\">",
                      "\xE2\x96\xBC ", absl::StrFormat("%.3f", change), "</span>");
    } else {
      absl::StrAppend(&cell, " <span class=\"muted\">= steady</span>");
    }
  }
  return cell;
}

std::string RunProgress(const v1::RunStatus& run) {
  const int total = run.spec().rounds();
  const int done = run.completed_rounds();
  std::string label;
  if (run.state() == "running" && run.current_round() > done) {
    label = absl::StrCat("round ", run.current_round(), " of ", total, " (", run.phase(), ")");
  } else if (run.state() == "running" || run.state() == "pending") {
    label = done == 0 ? absl::StrCat("0 of ", total, " rounds (", run.phase(), ")")
                      : absl::StrCat("round ", done, " of ", total, " done");
  } else {
    label = absl::StrCat(done, " of ", total, " rounds");
  }
  return ProgressBar(done, total, label);
}

std::string CountSummary(const std::vector<v1::RunStatus>& runs) {
  std::map<std::string, int> by_state;
  for (const auto& run : runs) ++by_state[run.state()];
  std::string out = absl::StrCat(runs.size(), runs.size() == 1 ? " run" : " runs");
  std::string parts;
  for (const char* state : {"running", "pending", "done", "failed", "aborted"}) {
    auto found = by_state.find(state);
    if (found == by_state.end()) continue;
    absl::StrAppend(&parts, parts.empty() ? "" : ", ", found->second, " ", state);
  }
  return parts.empty() ? out : absl::StrCat(out, ": ", parts);
}

std::string ConnectionCell(const v1::SiteInfo& site) {
  if (site.state() == "revoked") {
    return "<span class=\"dot revoked\"></span><span class=\"revoked-text\">revoked</span>";
  }
  return site.connected()
             ? "<span class=\"dot up\"></span><span class=\"up-text\">connected</span>"
             : "<span class=\"dot down\"></span><span class=\"down-text\">disconnected</span>";
}

std::string ExpiryCell(const v1::SiteInfo& site, double now) {
  if (!(site.certificate_expires() > 0)) {
    return "<span class=\"muted\">unknown (no TLS)</span>";
  }
  const double left = site.certificate_expires() - now;
  const std::string date = Html(FormatTime(site.certificate_expires()).substr(0, 10));
  if (left <= 0) return absl::StrCat("<span class=\"bad\">expired ", date, "</span>");
  const int64_t days = static_cast<int64_t>(left / kDay);
  const std::string in =
      days == 0 ? "today" : absl::StrCat("in ", days, days == 1 ? " day" : " days");
  if (left < kExpiryWarning) {
    return absl::StrCat("<span class=\"warn\">", date, " (", in, ")</span>");
  }
  return absl::StrCat(date, " <span class=\"muted small\">(", in, ")</span>");
}

std::string RevocationCell(const v1::SiteInfo& site) {
  if (site.state() != "revoked") return "<span class=\"muted\">\xE2\x80\x94</span>";
  return absl::StrCat(
      "<span class=\"revoked-text\">by ", Html(site.revoked_by()), "</span>, ",
      Html(FormatTime(site.revoked_at())),
      site.revocation_reason().empty() ? "" : absl::StrCat(": ", Html(site.revocation_reason())));
}

}  // namespace

std::optional<v1::Metrics> LatestEvaluation(const v1::RunStatus& run) {
  for (int i = run.rounds_size() - 1; i >= 0; --i) {
    if (run.rounds(i).eval_metrics().examples() > 0) return run.rounds(i).eval_metrics();
  }
  return std::nullopt;
}

std::vector<double> AucPerRound(const v1::RunStatus& run) {
  std::vector<double> auc;
  for (const auto& round : run.rounds()) {
    if (round.eval_metrics().examples() > 0) auc.push_back(round.eval_metrics().auc());
  }
  return auc;
}

std::string RunsPage(const std::vector<v1::RunStatus>& runs, double now) {
  std::string main =
      absl::StrCat("<h1>Runs</h1><p class=\"muted summary\">", Html(CountSummary(runs)), "</p>");
  if (runs.empty()) {
    absl::StrAppend(&main,
                    "<div class=\"card\">No runs yet. An admin starts one with "
                    "<code>fedmi run start</code>.</div>");
  } else {
    absl::StrAppend(&main,
                    "<table class=\"runs\"><thead><tr><th>Run</th><th>Model</th><th>Strategy</th>"
                    "<th>State</th><th>Progress</th><th>Sites</th><th>Validation AUC</th>"
                    "<th>AUC per round</th><th>Started</th></tr></thead><tbody>");
    // Newest first: the run an operator looks for is usually the latest.
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
      const v1::RunStatus& run = *it;
      std::string state = StateBadge(run.state());
      if (!run.error().empty()) {
        absl::StrAppend(&state, "<div class=\"small bad\">", Html(run.error()), "</div>");
      }
      absl::StrAppend(&main, "<tr data-run=\"", run.run_id(), "\" data-state=\"", Html(run.state()),
                      "\" data-completed-rounds=\"", run.completed_rounds(), "\" data-rounds=\"",
                      run.spec().rounds(), "\"><td><a href=\"/runs/", run.run_id(), "\">Run ",
                      run.run_id(), "</a></td><td>", Html(run.spec().model()), "</td><td>",
                      Html(StrategyOf(run.spec())), "</td><td>", state, "</td><td>",
                      RunProgress(run), "</td><td class=\"num\">", SitesInLatestRound(run),
                      "</td><td>", AucCell(run), "</td><td>",
                      RenderSvgSparkline(AucPerRound(run), 110, 26), "</td><td class=\"small\">",
                      Html(FormatTime(run.created_at())), "</td></tr>");
    }
    absl::StrAppend(&main, "</tbody></table>");
  }
  return RenderPage(PageFrame{"Runs", Section::kRuns, true, now}, main);
}

std::string SitesPage(const std::vector<v1::SiteInfo>& sites, double now) {
  int connected = 0, revoked = 0, expiring = 0;
  for (const auto& site : sites) {
    if (site.state() == "revoked") {
      ++revoked;
      continue;
    }
    connected += site.connected() ? 1 : 0;
    if (site.certificate_expires() > 0 && site.certificate_expires() - now < kExpiryWarning) {
      ++expiring;
    }
  }
  const int active = static_cast<int>(sites.size()) - revoked;
  std::string main = absl::StrCat(
      "<h1>Sites</h1><div class=\"cards\"><div class=\"card\"><div class=\"big ",
      connected == active && active > 0 ? "good" : (connected == 0 ? "bad" : "warn"),
      "\" id=\"connected-count\">", connected, " of ", active,
      "</div><div class=\"muted\">sites connected</div></div>"
      "<div class=\"card\"><div class=\"big",
      revoked > 0 ? " bad" : "", "\">", revoked,
      "</div><div class=\"muted\">revoked</div></div>"
      "<div class=\"card\"><div class=\"big",
      expiring > 0 ? " warn" : "", "\">", expiring,
      "</div><div class=\"muted\">certificates expiring within 30 days</div></div></div><h2>All "
      "sites</h2>");
  if (sites.empty()) {
    absl::StrAppend(&main,
                    "<div class=\"card\">No site has connected yet. A hospital joins by starting "
                    "<code>fedmi-client</code> with its kit.</div>");
  } else {
    absl::StrAppend(&main,
                    "<table class=\"sites\"><thead><tr><th>Site</th><th>Connection</th>"
                    "<th>Last seen</th><th>Training / validation images</th>"
                    "<th>Certificate expires</th><th>Revocation</th></tr></thead><tbody>");
    for (const auto& site : sites) {
      const std::string last_seen =
          site.last_seen() > 0
              ? absl::StrCat(FormatAgo(now - site.last_seen()), "<div class=\"small muted\">",
                             Html(FormatTime(site.last_seen())), "</div>")
              : "never";
      absl::StrAppend(&main, "<tr data-site=\"", Html(site.site()), "\" data-connected=\"",
                      site.connected() ? "1" : "0", "\"><td><strong>", Html(site.site()),
                      "</strong></td><td>", ConnectionCell(site), "</td><td>", last_seen,
                      "</td><td class=\"num\">", site.train_examples(), " / ", site.val_examples(),
                      "</td><td>", ExpiryCell(site, now), "</td><td>", RevocationCell(site),
                      "</td></tr>");
    }
    absl::StrAppend(&main, "</tbody></table>");
  }
  return RenderPage(PageFrame{"Sites", Section::kSites, true, now}, main);
}

std::string NotFoundPage(const std::string& message, double now) {
  return RenderPage(PageFrame{"Not found", Section::kRuns, false, now},
                    absl::StrCat("<h1>Not found</h1><div class=\"banner fail\">", Html(message),
                                 "</div><p><a href=\"/runs\">All runs</a></p>"));
}

}  // namespace fedmi::dashboard
