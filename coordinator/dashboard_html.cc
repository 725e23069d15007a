#include "coordinator/dashboard_html.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/crypto/sha256.h"
#include "common/plot/svg_chart.h"

namespace fedmi::dashboard {
namespace {

// System fonts only: a web font would be a request.
constexpr char kStyle[] = R"css(
:root{--ink:#1d2733;--muted:#5f6b7a;--line:#d9dee5;--bg:#f4f6f9;--card:#fff;
--blue:#1f77b4;--green:#1e8a3c;--red:#c62828;--amber:#b26a00;--grey:#7a8594}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#17324d;color:#fff;padding:10px 24px;display:flex;align-items:center;gap:28px}
header .brand{font-weight:700;font-size:17px;letter-spacing:.3px}
header nav a{color:#c9d8e8;text-decoration:none;margin-right:18px;font-weight:600}
header nav a.active{color:#fff;border-bottom:2px solid #fff;padding-bottom:3px}
header .stamp{margin-left:auto;font-size:12px;color:#c9d8e8}
header .stamp.stale{color:#ffb4a8}
main{padding:18px 24px;max-width:1400px}
h1{font-size:22px;margin:4px 0 12px}
h2{font-size:16px;margin:22px 0 8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;
margin-bottom:14px}
.cards{display:flex;flex-wrap:wrap;gap:14px}
.cards .card{flex:1 1 220px;margin:0}
.big{font-size:26px;font-weight:700}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}
.small{font-size:12px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
th{background:#eef1f5;font-size:12px;text-transform:uppercase;letter-spacing:.4px;color:var(--muted)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1558a6}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:700;
color:#fff;background:var(--grey)}
.badge.running{background:var(--blue)}.badge.done{background:var(--green)}
.badge.failed{background:var(--red)}.badge.pending{background:var(--amber)}
.bar{display:inline-block;width:140px;height:10px;background:#e3e8ee;border-radius:5px;
overflow:hidden;vertical-align:middle;margin-right:8px}
.bar span{display:block;height:100%;background:var(--blue)}
.dot{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:7px;
vertical-align:middle;background:var(--grey)}
.dot.up{background:var(--green)}.dot.down{background:var(--grey)}.dot.revoked{background:var(--red)}
.up-text{color:var(--green);font-weight:700}.down-text{color:var(--muted);font-weight:700}
.revoked-text{color:var(--red);font-weight:700}
.warn{color:var(--amber);font-weight:700}.bad{color:var(--red);font-weight:700}
.good{color:var(--green);font-weight:700}
.trend-up{color:var(--green)}.trend-down{color:var(--red)}
.banner{padding:10px 14px;border-radius:8px;margin-bottom:14px;font-weight:600}
.banner.ok{background:#e3f4e8;border:1px solid #9fd3ae;color:#14532d}
.banner.fail{background:#fde8e8;border:1px solid #f1a7a7;color:#7f1d1d}
.banner.note{background:#fff4e0;border:1px solid #f0c987;color:#6b4200}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.chart{background:var(--card);border:1px solid var(--line);border-radius:6px}
.chart .grid{stroke:#e6e9ee}.chart .frame{stroke:#b9c1cc}
.chart text{font:11px system-ui,sans-serif;fill:#5f6b7a}
.chart .chart-title{font-weight:700;font-size:12px;fill:#1d2733}
.chart .legend{fill:#1d2733}
.chart .empty{font-style:italic}
.multiples td{padding:4px 6px}
.multiples .chart{border:none}
code,pre{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:#f7f8fa;border:1px solid var(--line);padding:8px;overflow:auto;max-height:360px}
td code{word-break:break-all}
form.filter{display:flex;gap:12px;align-items:end;flex-wrap:wrap;margin-bottom:12px}
form.filter label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
form.filter input,form.filter select{font:inherit;padding:4px 6px;min-width:150px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
)css";

// Swaps the page's <main> for a fresh copy every few seconds: the server
// renders everything, so the script only fetches its own URL. A refusal
// (401, 403: a reader revoked while the tab stays open) stops the polling:
// each refused request is an auth.denied entry in the append-only audit
// log, which a forgotten tab would otherwise add every few seconds for ever.
constexpr char kScript[] = R"js(
(function(){
  var main=document.querySelector('main');
  var stamp=document.getElementById('updated');
  if(!main||main.getAttribute('data-live')!=='1')return;
  function tick(){
    fetch(location.pathname+location.search,{cache:'no-store',credentials:'same-origin'})
    .then(function(r){
      if(!r.ok){var e=new Error('HTTP '+r.status);e.refused=r.status===401||r.status===403;throw e;}
      return r.text();
    })
    .then(function(text){
      var fresh=new DOMParser().parseFromString(text,'text/html').querySelector('main');
      if(fresh){main.innerHTML=fresh.innerHTML;main.setAttribute('data-live',fresh.getAttribute('data-live'));}
      stamp.textContent='live \u00b7 updated '+new Date().toLocaleTimeString();
      stamp.className='stamp';
      if(main.getAttribute('data-live')==='1')setTimeout(tick,REFRESH_MS);
    })
    .catch(function(e){
      stamp.className='stamp stale';
      if(e.refused){stamp.textContent='access refused ('+e.message+'); reload to retry';return;}
      stamp.textContent='update failed ('+e.message+'), retrying';
      setTimeout(tick,2*REFRESH_MS);
    });
  }
  setTimeout(tick,REFRESH_MS);
})();
)js";

std::string NavLink(const char* href, const char* label, bool active) {
  return absl::StrCat("<a href=\"", href, "\"", active ? " class=\"active\"" : "", ">", label,
                      "</a>");
}

}  // namespace

std::string Html(absl::string_view text) { return EscapeXml(text); }

std::string PageScript() {
  std::string script = kScript;
  const std::string placeholder = "REFRESH_MS";
  for (size_t at = script.find(placeholder); at != std::string::npos;
       at = script.find(placeholder, at)) {
    script.replace(at, placeholder.size(), absl::StrCat(kRefreshSeconds * 1000));
  }
  return script;
}

std::string ContentSecurityPolicy() {
  static const std::string* const policy = new std::string(absl::StrCat(
      "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-",
      absl::Base64Escape(Sha256::Digest(PageScript())),
      "'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
      "base-uri 'none'"));
  return *policy;
}

std::string RenderPage(const PageFrame& frame, const std::string& main_html) {
  const std::string script = PageScript();
  const std::string stamp =
      frame.live ? absl::StrCat("live \xC2\xB7 as of ", FormatTime(frame.now))
                 : absl::StrCat("as of ", FormatTime(frame.now), " \xC2\xB7 reload to update");
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<meta name=\"referrer\" content=\"no-referrer\">"
      "<title>",
      Html(frame.title), " \xE2\x80\x94 fedmi</title><style>", kStyle,
      "</style></head><body><header><span class=\"brand\">fedmi coordinator</span><nav>",
      NavLink("/runs", "Runs", frame.section == Section::kRuns),
      NavLink("/sites", "Sites", frame.section == Section::kSites),
      NavLink("/audit", "Audit log", frame.section == Section::kAudit),
      "</nav><span id=\"updated\" class=\"stamp\">", Html(stamp), "</span></header>",
      "<main data-live=\"", frame.live ? "1" : "0", "\">", main_html, "</main><script>", script,
      "</script></body></html>\n");
}

std::string FormatTime(double unix_seconds) {
  if (!(unix_seconds > 0)) return "never";
  return absl::FormatTime(
      "%Y-%m-%d %H:%M:%S UTC",
      absl::FromUnixMicros(static_cast<int64_t>(std::llround(unix_seconds * 1e6))),
      absl::UTCTimeZone());
}

std::string FormatAgo(double seconds) {
  if (!std::isfinite(seconds) || seconds < 2) return "just now";
  if (seconds < 120) return absl::StrCat(static_cast<int64_t>(seconds), " s ago");
  if (seconds < 7200) return absl::StrCat(static_cast<int64_t>(seconds / 60), " min ago");
  if (seconds < 2 * 86400) return absl::StrCat(static_cast<int64_t>(seconds / 3600), " h ago");
  return absl::StrCat(static_cast<int64_t>(seconds / 86400), " days ago");
}

std::string FormatMetric(double value) {
  if (!std::isfinite(value)) return "\xE2\x80\x93";
  return absl::StrFormat("%.3f", value);
}

std::string StateBadge(absl::string_view state) {
  std::string css = "other";
  for (const char* known : {"running", "done", "failed", "aborted", "pending"}) {
    if (state == known) css = known;
  }
  return absl::StrCat("<span class=\"badge ", css, "\">", Html(state), "</span>");
}

std::string ProgressBar(int done, int total, absl::string_view label) {
  const double share = total > 0 ? std::clamp(static_cast<double>(done) / total, 0.0, 1.0) : 0;
  return absl::StrFormat(
      "<span class=\"bar\" role=\"progressbar\" aria-valuenow=\"%d\" aria-valuemax=\"%d\">"
      "<span style=\"width:%.0f%%\"></span></span><span class=\"progress\">%s</span>",
      done, total, share * 100, Html(label));
}

}  // namespace fedmi::dashboard
