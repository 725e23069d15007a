// Usage errors named in the words of the command line. CLI11 checks
// required options and subcommands before it reports arguments it did not
// recognise, so `fedmi --bogus-flag` and `fedmi frobnicate` would both say
// "A subcommand is required" and `fedmi-client --bogus` "--site is
// required"; DescribeUsageError says "unknown flag '--bogus-flag'" or
// "unknown command 'frobnicate'" instead, with a suggestion when a known
// name is close. Header-only so that fedmi_base itself needs no CLI11.
#ifndef FEDMI_COMMON_BASE_CLI_USAGE_H_
#define FEDMI_COMMON_BASE_CLI_USAGE_H_

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

namespace fedmi {

// Edit distance counting insertions, deletions, substitutions and swaps of
// two neighbouring letters ("stie" for "site") as one edit each (optimal
// string alignment).
inline size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The candidate closest to `word`, or "" when none is close enough to be a
// likely typo: a prefix of at least 3 letters, or at most a third of the
// letters wrong (at least one).
inline std::string ClosestName(const std::string& word,
                               const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    if (word.size() >= 3 && candidate.rfind(word, 0) == 0) return candidate;
    const size_t distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// The subcommand the command line selected last ("status" in `fedmi run
// status`), or `app` itself.
inline CLI::App* SelectedCommand(CLI::App* app) {
  while (true) {
    std::vector<CLI::App*> selected = app->get_subcommands();
    if (selected.empty()) return app;
    app = selected.back();
  }
}

// "fedmi run status": the names from the root down to `app`.
inline std::string CommandPath(const CLI::App* app) {
  std::string path = app->get_name();
  for (const CLI::App* parent = app->get_parent(); parent != nullptr;
       parent = parent->get_parent()) {
    if (!parent->get_name().empty()) path = parent->get_name() + " " + path;
  }
  return path;
}

// The names of the subcommands `app` offers, in the order --help lists them.
inline std::vector<std::string> SubcommandNames(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands(
           [](const CLI::App* s) { return !s->get_name().empty() && !s->get_disabled(); })) {
    names.push_back(sub->get_name());
  }
  return names;
}

// The long flags `command` accepts: its own and, since subcommands hand
// what they do not know to their parent (CLI11's fallthrough), its parents'.
inline std::vector<std::string> LongFlagsOf(const CLI::App* command) {
  std::vector<std::string> flags;
  for (const CLI::App* app = command; app != nullptr; app = app->get_parent()) {
    for (const CLI::Option* option : app->get_options()) {
      for (const std::string& name : option->get_lnames()) flags.push_back("--" + name);
    }
    if (!app->get_fallthrough()) break;
  }
  return flags;
}

// What went wrong, in the words of the command line, for a parse that
// threw `error` (not --help or --version); "" to keep CLI11's message.
inline std::string DescribeUsageError(CLI::App& app, const CLI::ParseError& error) {
  CLI::App* command = SelectedCommand(&app);
  const std::string path = CommandPath(command);
  const std::string help = " (see `" + path + " --help`)";
  const std::vector<std::string> leftover = app.remaining(true);
  const std::vector<std::string> subcommands = SubcommandNames(command);
  const bool wants_command = command->get_require_subcommand_min() > 0;
  if (!leftover.empty()) {
    const std::string& first = leftover.front();
    if (first.size() > 1 && first[0] == '-') {
      const std::string flag = first.substr(0, first.find('='));
      std::string text = "unknown flag '" + flag + "'";
      if (flag.rfind("--", 0) == 0) {
        const std::vector<std::string> known = LongFlagsOf(command);
        if (std::find(known.begin(), known.end(), flag) != known.end()) {
          // The command takes it, so it came before the command's name
          // (`fedmi --json site list`), where a parent parsed it; suggesting
          // the flag itself would be no help.
          return "'" + flag + "' is an option of `" + path + "`: put it after `" + path + "`" +
                 help;
        }
        const std::string near = ClosestName(flag, known);
        if (!near.empty()) text += "; did you mean '" + near + "'?";
      }
      return text + help;
    }
    if (wants_command || !subcommands.empty()) {
      std::string text = "unknown command '" + first + "' for `" + path + "`";
      const std::string near = ClosestName(first, subcommands);
      if (!near.empty()) text += "; did you mean '" + near + "'?";
      return text + help;
    }
    return "unexpected argument '" + first + "'" + help;
  }
  if (wants_command && command->get_subcommands().empty() &&
      dynamic_cast<const CLI::RequiredError*>(&error) != nullptr) {
    std::string names;
    for (const std::string& name : subcommands) names += (names.empty() ? "" : ", ") + name;
    return "`" + path + "` needs a command: " + names + help;
  }
  return "";
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_CLI_USAGE_H_
