#include "cli/sim_compare_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status.h"

namespace fedmi::cli {
namespace {

std::string Where(const std::string& source, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? absl::StrCat(source, ":", line) : source;
}

absl::Status ErrorAt(const std::string& where, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", message));
}

absl::StatusOr<std::vector<std::string>> EntryArgs(const std::string& where,
                                                   const toml::node& flags) {
  if (const auto* text = flags.as_string()) {
    auto args = SplitFlags(text->get());
    if (!args.ok()) return ErrorAt(where, args.status().message());
    return args;
  }
  const toml::array* array = flags.as_array();
  if (array == nullptr) {
    return ErrorAt(where,
                   "'flags' must be a string (\"--strategy median\") or an array of strings");
  }
  std::vector<std::string> args;
  for (const toml::node& element : *array) {
    const auto* arg = element.as_string();
    if (arg == nullptr) return ErrorAt(where, "'flags' must be an array of strings");
    args.push_back(arg->get());
  }
  return args;
}

absl::StatusOr<CompareEntry> ReadEntry(const std::string& source, const toml::table& table) {
  CompareEntry entry;
  entry.where = Where(source, table);
  bool named = false;
  for (const auto& [key, node] : table) {
    const std::string_view name = key.str();
    if (name == "name") {
      const auto* text = node.as_string();
      if (text == nullptr) return ErrorAt(Where(source, node), "'name' must be a string");
      entry.name = std::string(absl::StripAsciiWhitespace(text->get()));
      named = true;
    } else if (name == "flags") {
      ASSIGN_OR_RETURN(entry.args, EntryArgs(Where(source, node), node));
    } else {
      return ErrorAt(Where(source, node),
                     absl::StrCat("unknown key '", std::string(name),
                                  "' in a [[strategy]] entry (it takes 'name' and 'flags')"));
    }
  }
  if (!named || entry.name.empty()) {
    return ErrorAt(entry.where, "a [[strategy]] entry needs a non-empty 'name'");
  }
  if (absl::Status fixed = CheckEntryFlags(entry.args); !fixed.ok()) {
    return ErrorAt(entry.where, absl::StrCat("strategy '", entry.name, "': ", fixed.message()));
  }
  return entry;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitFlags(absl::string_view text) {
  std::vector<std::string> args;
  std::string current;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) args.push_back(std::move(current));
      current.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      in_word = true;
      const size_t open = i;
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (c == '"' && text[i] == '\\' && i + 1 < text.size() &&
            (text[i + 1] == '"' || text[i + 1] == '\\')) {
          ++i;
        }
        current.push_back(text[i]);
      }
      if (i == text.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unclosed ", std::string(1, c), " in flags, opened at character ", open + 1));
      }
    } else {
      in_word = true;
      current.push_back(c);
    }
  }
  if (in_word) args.push_back(std::move(current));
  return args;
}

absl::Status CheckEntryFlags(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(std::begin(kCompareFixedFlags), std::end(kCompareFixedFlags), name) ==
        std::end(kCompareFixedFlags)) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        " cannot differ between strategies: give the split (--sites, --partition, --alpha, "
        "--data), the seeds (--seed, --seeds, --seed-count), --rounds, --threads and the "
        "outputs on the command line, for every strategy alike"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CompareEntry>> ParseCompareFile(absl::string_view text,
                                                           const std::string& source) {
  toml::table table;
  try {
    table = toml::parse(std::string_view(text.data(), text.size()), source);
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", error.source().begin.line,
                     ": TOML syntax error: ", std::string(error.description())));
  }
  const toml::array* strategies = nullptr;
  for (const auto& [key, node] : table) {
    if (key.str() != "strategy") {
      return ErrorAt(Where(source, node),
                     absl::StrCat("unknown key '", std::string(key.str()),
                                  "': a strategies file holds only [[strategy]] entries"));
    }
    strategies = node.as_array();
    if (strategies == nullptr || (!strategies->empty() && !strategies->is_array_of_tables())) {
      return ErrorAt(Where(source, node),
                     "'strategy' must be a list of [[strategy]] tables with a name and flags");
    }
  }
  std::vector<CompareEntry> entries;
  std::set<std::string> names;
  if (strategies != nullptr) {
    for (const toml::node& node : *strategies) {
      ASSIGN_OR_RETURN(CompareEntry entry, ReadEntry(source, *node.as_table()));
      if (!names.insert(entry.name).second) {
        return ErrorAt(entry.where, absl::StrCat("strategy name '", entry.name,
                                                 "' is given twice; names label the results"));
      }
      entries.push_back(std::move(entry));
    }
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": no strategies to compare; list them as [[strategy]] tables with a name and "
                     "flags, e.g.\n  [[strategy]]\n  name = \"FedAvg\"\n  flags = \"--strategy "
                     "fedavg\""));
  }
  return entries;
}

absl::StatusOr<std::vector<CompareEntry>> LoadCompareFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read strategies file '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return absl::NotFoundError(absl::StrCat("cannot read strategies file '", path, "'"));
  return ParseCompareFile(text.str(), path);
}

absl::StatusOr<std::vector<uint64_t>> ResolveSeeds(const std::string& seeds_text, int seed_count,
                                                   uint64_t base_seed) {
  if (!seeds_text.empty() && seed_count != 0) {
    return absl::InvalidArgumentError("give --seeds or --seed-count, not both");
  }
  std::vector<uint64_t> seeds;
  if (!seeds_text.empty()) {
    for (absl::string_view part : absl::StrSplit(seeds_text, ',')) {
      part = absl::StripAsciiWhitespace(part);
      uint64_t seed = 0;
      if (part.empty() || part[0] == '-' || part[0] == '+' || !absl::SimpleAtoi(part, &seed)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--seeds: '", part, "' is not a seed (a non-negative integer); e.g. --seeds 0,1,2"));
      }
      if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end()) {
        return absl::InvalidArgumentError(absl::StrCat("--seeds: seed ", seed, " is listed twice"));
      }
      seeds.push_back(seed);
    }
    return seeds;
  }
  if (seed_count < 0) return absl::InvalidArgumentError("--seed-count must be at least 1");
  for (int i = 0; i < std::max(seed_count, 1); ++i) seeds.push_back(base_seed + i);
  return seeds;
}

std::string EntrySlug(absl::string_view name) {
  std::string slug;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      slug.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (!slug.empty() && slug.back() != '-') {
      slug.push_back('-');
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "strategy" : slug;
}

}  // namespace fedmi::cli
