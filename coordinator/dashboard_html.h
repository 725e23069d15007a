// The coordinator's read-only web dashboard (docs/operations.md): the page
// frame every page shares (navigation, inline CSS, the polling script) and
// the small formatting pieces the pages use. The dashboard is rendered
// here, from status values, with no transport: coordinator_http.cc serves
// it. Pages load nothing from anywhere: no external script, style, font
// or image, and no URL other than the listener's own paths.
//
// Everything that comes from data (site, actor and model names, audit
// details, errors) passes through Html() before it reaches a page.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COORDINATOR_DASHBOARD_HTML_H_
#define FEDMI_COORDINATOR_DASHBOARD_HTML_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fedmi::dashboard {

enum class Section { kRuns, kSites, kAudit };

// Seconds between two fetches of a live page.
inline constexpr int kRefreshSeconds = 5;

struct PageFrame {
  std::string title;  // plain text, escaped here
  Section section = Section::kRuns;
  // A live page re-fetches itself every kRefreshSeconds and swaps in its
  // new <main>, until a fetched page says it is no longer live (a run that
  // ended).
  bool live = true;
  double now = 0;  // unix seconds, for the "as of" line
};

// A whole HTML document: `main_html` (already escaped markup) in the frame.
std::string RenderPage(const PageFrame& frame, const std::string& main_html);

// The one inline script every page carries (polling a live page).
std::string PageScript();
// The pages' Content-Security-Policy: nothing but the page itself, and of
// scripts only PageScript() (by its SHA-256), so that markup that slipped
// through unescaped could not run a script, which could send the page
// anywhere by navigating.
std::string ContentSecurityPolicy();

// Escaped text for element content and quoted attributes.
std::string Html(absl::string_view text);

// "2026-12-06 19:55:02 UTC"; "never" for 0.
std::string FormatTime(double unix_seconds);
// "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago".
std::string FormatAgo(double seconds);
// A metric with three decimals; "–" when not measured (NaN).
std::string FormatMetric(double value);
// A coloured label for a run state (running, done, failed, aborted,
// pending) or any other word.
std::string StateBadge(absl::string_view state);
// A progress bar, done of total (total 0: empty), with `label` beside it.
std::string ProgressBar(int done, int total, absl::string_view label);

}  // namespace fedmi::dashboard

#endif  // FEDMI_COORDINATOR_DASHBOARD_HTML_H_
