#include "cli/watch_table.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command_support.h"
#include "cli/run_status_text.h"
#include "common/base/names.h"
#include "common/runspec/model_task.h"

namespace fedmi::cli {
namespace {

// More sites than this get counts instead of one mark each.
constexpr int kMaxSiteMarks = 40;
constexpr char kLegend[] =
    "# evaluated  + trained  . training  e evaluating  x dropped  r refused  - not in the round";

// The round's pooled metric the sparkline follows: validation AUC, or Dice
// for segmentation; nullopt while the round is not measured.
std::optional<double> RoundMetric(const v1::RoundStatus& round, bool segmentation) {
  const v1::Metrics& m = round.eval_metrics();
  if (m.examples() <= 0) return std::nullopt;
  if (segmentation) return m.has_overlap() ? std::optional<double>(m.dice()) : std::nullopt;
  return m.auc();
}

// Marks of each site, in `sites` order; counts per mark beyond kMaxSiteMarks.
std::string SiteMarks(const v1::RoundStatus& round, const std::vector<std::string>& sites) {
  std::map<std::string, char> marks;
  for (const auto& site : round.sites()) marks[site.site()] = SiteMark(site.state());
  if (static_cast<int>(sites.size()) > kMaxSiteMarks) {
    std::map<char, int> counts;
    for (const auto& [site, mark] : marks) ++counts[mark];
    std::string text;
    for (const auto& [mark, count] : counts)
      absl::StrAppend(&text, text.empty() ? "" : " ", count, std::string(1, mark));
    return text;
  }
  std::string text;
  for (const std::string& site : sites) {
    auto found = marks.find(site);
    text += found == marks.end() ? '-' : found->second;
  }
  return text;
}

}  // namespace

char SiteMark(absl::string_view participation_state) {
  const std::optional<ParticipationState> state = ParseParticipationState(participation_state);
  if (!state) return '?';
  switch (*state) {
    case ParticipationState::kTraining:
      return '.';
    case ParticipationState::kEvaluating:
      return 'e';
    case ParticipationState::kUploaded:
      return '+';
    case ParticipationState::kEvaluated:
      return '#';
    case ParticipationState::kDropped:
      return 'x';
    case ParticipationState::kRefused:
      return 'r';
  }
  return '?';
}

std::vector<std::string> RunSites(const v1::RunStatus& run) {
  std::set<std::string> sites;
  for (const auto& round : run.rounds()) {
    for (const auto& site : round.sites()) sites.insert(site.site());
  }
  return std::vector<std::string>(sites.begin(), sites.end());
}

std::string Sparkline(const std::vector<double>& values) {
  static constexpr const char* kBlocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                            "\u2585", "\u2586", "\u2587", "\u2588"};
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  std::string line;
  for (double v : values) {
    if (!std::isfinite(v)) {
      line += " ";
    } else if (hi - lo <= 0) {
      line += kBlocks[3];
    } else {
      line += kBlocks[static_cast<int>(std::lround((v - lo) / (hi - lo) * 7))];
    }
  }
  return line;
}

std::vector<std::string> WatchTableLines(const v1::RunStatus& run, int max_rounds) {
  const bool segmentation = IsSegmentationRun(run.spec());
  const std::vector<std::string> sites = RunSites(run);
  const int first = std::max(0, run.rounds_size() - std::max(1, max_rounds));
  size_t state_width = 9;
  for (int i = first; i < run.rounds_size(); ++i) {
    state_width = std::max(state_width, run.rounds(i).state().size());
  }
  std::vector<std::string> marks;
  size_t marks_width = 5;
  for (int i = first; i < run.rounds_size(); ++i) {
    marks.push_back(SiteMarks(run.rounds(i), sites));
    marks_width = std::max(marks_width, marks.back().size());
  }
  auto row = [&](const std::string& round, const std::string& state, const std::string& site_marks,
                 const std::string& metric, const std::string& loss) {
    return absl::StrFormat("%5s  %-*s  %-*s  %-7s %s", round, state_width, state, marks_width,
                           site_marks, metric, loss);
  };
  std::vector<std::string> lines;
  lines.push_back(row("ROUND", "STATE", "SITES", segmentation ? "DICE" : "AUC", "LOSS"));
  if (first > 0) lines.push_back(absl::StrCat("  (", first, " earlier rounds not shown)"));
  for (int i = first; i < run.rounds_size(); ++i) {
    const v1::RoundStatus& round = run.rounds(i);
    const std::optional<double> metric = RoundMetric(round, segmentation);
    const bool measured = round.eval_metrics().examples() > 0;
    lines.push_back(row(absl::StrCat(round.round()), round.state(), marks[i - first],
                        metric ? FormatMetric(*metric) : "-",
                        measured ? FormatMetric(round.eval_metrics().loss()) : "-"));
  }
  if (std::string sparkline = MetricSparklineLine(run); !sparkline.empty()) {
    lines.push_back(sparkline);
  }
  if (!sites.empty()) {
    lines.push_back(static_cast<int>(sites.size()) > kMaxSiteMarks
                        ? absl::StrCat("sites: ", sites.size(), " (marks counted per round)")
                        : absl::StrCat("sites: ", absl::StrJoin(sites, " ")));
    lines.push_back(kLegend);
  }
  return lines;
}

std::vector<const v1::RoundStatus*> SettledRounds(const v1::RunStatus& run,
                                                  const std::set<int32_t>& printed) {
  const bool ended = IsTerminalRunState(run.state());
  std::vector<const v1::RoundStatus*> settled;
  for (const auto& round : run.rounds()) {
    if (printed.count(round.round()) > 0 || IsRoundLive(round.state())) continue;
    if (ended || ParseRoundState(round.state()) == RoundState::kEvaluated) {
      settled.push_back(&round);
    }
  }
  return settled;
}

std::string MetricSparklineLine(const v1::RunStatus& run) {
  const bool segmentation = IsSegmentationRun(run.spec());
  std::vector<double> values;
  for (const auto& round : run.rounds()) {
    if (ParseRoundState(round.state()) != RoundState::kEvaluated) continue;
    values.push_back(RoundMetric(round, segmentation).value_or(NAN));
  }
  if (values.empty()) return "";
  const double first = values.front(), last = values.back();
  return absl::StrFormat("%s %s %s .. %s over %d round%s (sites' validation data, pooled)",
                         segmentation ? "Dice" : "AUC", Sparkline(values), FormatMetric(first),
                         FormatMetric(last), values.size(), values.size() == 1 ? "" : "s");
}

std::string RedrawPrefix(int lines) {
  if (lines <= 0) return "";
  return absl::StrCat("\x1b[", lines, "A\r\x1b[J");
}

}  // namespace fedmi::cli
