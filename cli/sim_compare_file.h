// The strategies file of `fedmi sim --compare FILE`, and the seeds the
// comparison runs them on. The file is TOML, one table per strategy:
//
//   [[strategy]]
//   name = "FedAvg"
//   flags = "--strategy fedavg"
//
//   [[strategy]]
//   name = "Trimmed mean"
//   flags = "--strategy trimmed_mean --trim-fraction 0.2"
//
// `flags` are `fedmi sim` flags (a string split like a shell's words, or an
// array of strings), parsed later by sim's own parser on top of the command
// line's flags, so that every sim flag works in an entry except those that
// the command line fixes for all entries alike: the data split and seeds,
// the rounds, the processes' threads and where results go
// (kCompareFixedFlags). An entry without `flags` runs the command line as
// it is.
//
// Pure functions; thread-safe.
#ifndef FEDMI_CLI_SIM_COMPARE_FILE_H_
#define FEDMI_CLI_SIM_COMPARE_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi::cli {

struct CompareEntry {
  std::string name;
  std::vector<std::string> args;  // the entry's sim flags, one argument each
  std::string where;              // "<file>:<line>", for errors about the entry
};

// Sim flags an entry may not give: every strategy must see the same split,
// seeds and rounds, and run with the same threads, and the comparison
// decides where runs and results go.
inline constexpr const char* kCompareFixedFlags[] = {
    "--sites",   "--rounds",     "--data",    "--partition", "--alpha",    "--seed",
    "--seeds",   "--seed-count", "--threads", "--work-dir",  "--json-out", "--json",
    "--compare", "--target-auc", "--out",     "--help",      "-h",
};

// `text` split into arguments as a shell splits words, without expansions:
// blanks separate, '...' quotes literally, and "..." quotes with the
// escapes \" and \\ inside. InvalidArgument for an unclosed quote.
absl::StatusOr<std::vector<std::string>> SplitFlags(absl::string_view text);

// InvalidArgument naming the first of `args` that is one of
// kCompareFixedFlags (also as --flag=value), and why it is refused.
absl::Status CheckEntryFlags(const std::vector<std::string>& args);

// The entries of a strategies file `text`, read from `source` (named in
// errors). InvalidArgument "<source>:<line>: ..." for a TOML syntax error,
// a top-level key other than `strategy`, a `strategy` that is not an array
// of tables, a key other than `name` and `flags` in an entry, a missing or
// empty name, a name given twice, `flags` that are neither a string nor an
// array of strings (or an unclosed quote), a fixed flag (CheckEntryFlags),
// or no entry at all.
absl::StatusOr<std::vector<CompareEntry>> ParseCompareFile(absl::string_view text,
                                                           const std::string& source);

// ParseCompareFile of the file at `path`; NotFound when it cannot be read.
absl::StatusOr<std::vector<CompareEntry>> LoadCompareFile(const std::string& path);

// The seeds to run: `seeds_text` ("0,1,2") when given, else `seed_count`
// seeds from `base_seed` on (base_seed, base_seed + 1, ...), else
// base_seed alone. InvalidArgument for both given, a seed that is not a
// non-negative integer, a seed listed twice, or a count below 1.
absl::StatusOr<std::vector<uint64_t>> ResolveSeeds(const std::string& seeds_text, int seed_count,
                                                   uint64_t base_seed);

// A file-name-safe form of an entry's name: lower case letters and digits,
// other runs of characters as one '-' ("Trimmed mean 0.2" ->
// "trimmed-mean-0-2"); "strategy" when nothing is left.
std::string EntrySlug(absl::string_view name);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SIM_COMPARE_FILE_H_
