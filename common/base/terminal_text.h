// Text for terminals: the progress bars and live tables of fedmi and
// fedmi-client are cut to the terminal's width, since a line that wraps
// leaves a row behind at each in-place redraw.
#ifndef FEDMI_COMMON_BASE_TERMINAL_TEXT_H_
#define FEDMI_COMMON_BASE_TERMINAL_TEXT_H_

#include <cstddef>
#include <string>

namespace fedmi {

// The first `columns` code points of UTF-8 `line` (each taken as one column:
// the bars' block characters are); all of it when `columns` <= 0, i.e. the
// width is unknown.
inline std::string FitToColumns(const std::string& line, int columns) {
  if (columns <= 0) return line;
  int seen = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    // A code point starts at every byte that is not a continuation byte.
    if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;
    if (seen == columns) return line.substr(0, i);
    ++seen;
  }
  return line;
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_TERMINAL_TEXT_H_
