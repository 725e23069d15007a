// The CSV that fedmi reads and writes (labels.csv, to-label lists,
// suspects, audit exports): RFC 4180 fields, one record per line.
#ifndef FEDMI_COMMON_BASE_CSV_H_
#define FEDMI_COMMON_BASE_CSV_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fedmi {

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a
// comma, a quote, a line break or leading/trailing spaces; else unchanged.
std::string CsvField(absl::string_view value);

// Splits one CSV line; double quotes may wrap a field ("" is a quote).
// Fields are stripped of surrounding whitespace and a trailing '\r'.
std::vector<std::string> CsvFields(absl::string_view line);

// The position of the column called `name` (ASCII case ignored) in a
// header row; -1 when there is none.
int CsvColumn(const std::vector<std::string>& header, absl::string_view name);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_CSV_H_
