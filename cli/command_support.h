// Plumbing shared by the `fedmi` subcommands: running a handler so that no
// exception escapes and its exit code lands in CommandResult, reporting
// errors the same way everywhere, connecting to the coordinator, and
// formatting numbers for tables and JSON.
//
// Conventions: errors go to stderr as "error: <message>"; exit 0 on success,
// 1 on failure, 2 on a usage error. With --json a command prints exactly one
// JSON object, as the last line of stdout.
//
// Free functions without shared state.
#ifndef FEDMI_CLI_COMMAND_SUPPORT_H_
#define FEDMI_CLI_COMMAND_SUPPORT_H_

#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/admin_client.h"
#include "cli/commands.h"
#include "common/base/names.h"

namespace fedmi::cli {

// A flag whose value `check` validates and whose default --help shows: the
// shape of nearly every numeric option of `fedmi`.
template <typename T>
CLI::Option* AddCheckedOption(CLI::App* command, const std::string& name, T& value,
                              const std::string& help, const CLI::Validator& check) {
  return command->add_option(name, value, help)->check(check)->capture_default_str();
}

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Runs `handler` and stores its exit code in `result`. An exception becomes
// "error: ..." and exit 1.
void RunCommand(CommandResult& result, const std::function<int()>& handler);

// Prints "error: <message>" to stderr and returns kExitFailure.
int ReportError(const absl::Status& status);
// Prints "error: <message>" to stderr and returns kExitUsage.
int ReportUsageError(const std::string& message);

// Connects to the coordinator named by the global options.
absl::StatusOr<std::unique_ptr<AdminClient>> ConnectToCoordinator(const GlobalOptions& global);

// A number for JSON; NaN and infinities (undefined metrics) become null.
nlohmann::json JsonNumber(double value);
// Fixed-point with `precision` digits, or "-" for NaN.
std::string FormatMetric(double value, int precision = 4);
// "2024-05-01 12:00:00 UTC"; "-" for 0 (never).
std::string FormatUnixTime(double unix_seconds);
// "42 s ago", "3 min ago", "5 h ago", "2 d ago"; "-" for 0.
std::string FormatAgo(double unix_seconds);

// Prints `json` compactly on one line to stdout.
void PrintJsonLine(const nlohmann::json& json);

// A reporting command's listing: the coordinator's answer `items` as
// {"<key>": [to_json(item)...]} with --json, `empty_text` when there are
// none, otherwise the text `print_text` writes. Returns the exit code.
template <typename Item, typename ToJson, typename PrintText>
int PrintListing(const GlobalOptions& global, const absl::StatusOr<std::vector<Item>>& items,
                 const char* key, ToJson to_json, const char* empty_text, PrintText print_text) {
  if (!items.ok()) return ReportError(items.status());
  if (global.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const Item& item : *items) list.push_back(to_json(item));
    PrintJsonLine({{key, std::move(list)}});
  } else if (items->empty()) {
    std::cout << empty_text << std::endl;
  } else {
    print_text(*items);
    std::cout << std::flush;
  }
  return kExitOk;
}

// Adds the --json flag ("print one JSON object as the last line of stdout
// instead of text") to `command`, setting global.json.
CLI::Option* AddJsonFlag(CLI::App* command, GlobalOptions& global);

// Dropped or refused: the site left its round before the end.
bool HasLeftRound(ParticipationState state);
// The same for a participation state as the wire spells it; false for a
// name that is not a participation state.
bool HasLeftRound(absl::string_view participation_state);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_COMMAND_SUPPORT_H_
