// The overall progress of a run that `fedmi sim` and `fedmi bench` drive,
// on stderr so that stdout (and its last-line JSON) stays as it was: a bar
// redrawn in place on a terminal, one line per change otherwise.
//
//   [██████░░░░░░░░░░░░░░] round 3/10 training: 2/5 sites trained
//   fedmi sim: round 3/10 training: 2/5 sites trained
//
// The text is a pure function of the RunStatus.
#ifndef FEDMI_CLI_RUN_PROGRESS_H_
#define FEDMI_CLI_RUN_PROGRESS_H_

#include <ostream>
#include <string>

#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

// Share of the run done, in [0, 1]: its completed rounds, plus the current
// round's sites that trained (half each) and were evaluated (the other
// half).
double RunFraction(const v1::RunStatus& run);

// "round 3/10 training: 2/5 sites trained", "round 3/10 evaluating: 4/5
// sites evaluated", with a dropped or refused count and the secure
// aggregation step when there are; "waiting for sites", "run done after
// 10/10 rounds" otherwise.
std::string RunProgressText(const v1::RunStatus& run);

// "[██████░░░░] " followed by RunProgressText.
std::string RunProgressBar(const v1::RunStatus& run, int cells = 20);

// Whether progress may be a bar redrawn on stderr: stderr and stdout both
// terminals. With stdout piped (`| tee`), its lines reach the terminal
// later than the bar's redraws and would land inside the bar.
bool StderrBarFits();

// The width of the terminal on stderr; 0 when unknown.
int StderrColumns();

// Writes progress to `out` (stderr): on a terminal the bar, redrawn in
// place; otherwise "<prefix>: <text>" lines, only when the text changed.
class RunProgressWriter {
 public:
  // `columns`: the terminal's width, to which the bar is cut (0: no limit).
  // A bar that wraps cannot be redrawn in place: the carriage return goes
  // back only to the start of its last line, and every redraw leaves the
  // lines above behind.
  RunProgressWriter(std::ostream* out, bool terminal, std::string prefix, int columns = 0)
      : out_(out), terminal_(terminal), prefix_(std::move(prefix)), columns_(columns) {}
  ~RunProgressWriter() { Clear(); }
  void Update(const v1::RunStatus& run);
  // Erases the bar, before other text is written to the same terminal.
  void Clear();

 private:
  std::ostream* out_;
  bool terminal_;
  std::string prefix_;
  int columns_;
  std::string last_;
  bool drawn_ = false;
};

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_RUN_PROGRESS_H_
