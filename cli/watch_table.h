// What `fedmi run status --watch` draws, as pure functions of a RunStatus:
//  - on a terminal, a compact table redrawn in place: one row per round with
//    its state, one character per site (what each did in that round), the
//    pooled validation AUC (Dice for segmentation) and loss, then a
//    sparkline of that metric over the rounds and a legend;
//  - elsewhere the rounds as they settle, line by line (SettledRounds).
//
//   ROUND  STATE                                           SITES  AUC     LOSS
//       1  evaluated                                       ####   0.9496  0.3482
//       2  training (secure aggregation: sharing secrets)  ++..   -       -
//   AUC ▄ 0.9496 .. 0.9496 over 1 round (sites' validation data, pooled)
//   sites: site-1 site-2 site-3 site-4
//   # evaluated  + trained  . training  e evaluating  x dropped  r refused  - not in the round
//
// The per-site marks come from each round's SiteParticipation.state; a site
// the coordinator did not select for a round (or that had not joined yet)
// has no participation there and shows "-". The coordinator's status has no
// record of a site that was connected but not selected, so "-" does not
// tell "not selected" from "not connected".
#ifndef FEDMI_CLI_WATCH_TABLE_H_
#define FEDMI_CLI_WATCH_TABLE_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

// '#' evaluated, '+' uploaded (trained), '.' training, 'e' evaluating,
// 'x' dropped, 'r' refused, '?' a state this version does not know.
char SiteMark(absl::string_view participation_state);

// Every site named in any round, sorted.
std::vector<std::string> RunSites(const v1::RunStatus& run);

// One block character (▁▂▃▄▅▆▇█) per value, scaled from the smallest to the
// largest finite value; a non-finite value is a space, and equal values
// are all ▄.
std::string Sparkline(const std::vector<double>& values);

// The table's lines (no newlines): header, the last `max_rounds` rounds
// (with a line saying how many earlier ones are not shown), the sparkline,
// the site names and the legend.
std::vector<std::string> WatchTableLines(const v1::RunStatus& run, int max_rounds = 12);

// The rounds to print now in line-by-line mode, in order: those not in
// `printed` whose evaluation is in, and once the run has ended, every
// stored round left (a round committed but never evaluated, say, because
// the run failed in between). A live round is never settled, whatever its
// state's wording ("training (secure aggregation: advertising keys)").
std::vector<const v1::RoundStatus*> SettledRounds(const v1::RunStatus& run,
                                                  const std::set<int32_t>& printed);

// "AUC ▁▅█ 0.8123 .. 0.9512 over 3 rounds (sites' validation data, pooled)";
// empty while no round is evaluated.
std::string MetricSparklineLine(const v1::RunStatus& run);

// What moves a terminal's cursor up over the `lines` previously drawn and
// erases them: "\x1b[<lines>A\r\x1b[J"; empty for 0.
std::string RedrawPrefix(int lines);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_WATCH_TABLE_H_
