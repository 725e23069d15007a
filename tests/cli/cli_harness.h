// Runs one group of `fedmi` subcommands through a CLI11 app built as main()
// builds it, capturing stdout and stderr, for command tests that need no
// binary.
#ifndef FEDMI_TESTS_CLI_CLI_HARNESS_H_
#define FEDMI_TESTS_CLI_CLI_HARNESS_H_

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "gtest/gtest.h"

namespace fedmi::cli {

struct CliOutcome {
  int exit_code;
  std::string out;
  std::string err;
  // The last line of stdout as JSON (null when it is not JSON).
  nlohmann::json Json() const {
    std::string text = out;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    const size_t start = text.rfind('\n');
    return nlohmann::json::parse(start == std::string::npos ? text : text.substr(start + 1),
                                 nullptr, /*allow_exceptions=*/false);
  }
};

// `add` registers the group (e.g. AddPrivacyCommands); `args` follow the
// group's name. A parse error exits kExitUsage with its message on stderr.
inline CliOutcome RunCliCommands(void (*add)(CLI::App&, GlobalOptions&, CommandResult&),
                                 const std::string& group, std::vector<std::string> args) {
  CLI::App app{"fedmi"};
  app.require_subcommand(1);
  GlobalOptions global;
  CommandResult result;
  add(app, global, result);
  args.insert(args.begin(), group);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code;
  try {
    app.parse(args);
    code = result.exit_code;
  } catch (const CLI::ParseError& e) {
    std::cerr << e.what() << "\n";
    code = kExitUsage;
  }
  std::string out = ::testing::internal::GetCapturedStdout();
  return CliOutcome{code, std::move(out), ::testing::internal::GetCapturedStderr()};
}

}  // namespace fedmi::cli

#endif  // FEDMI_TESTS_CLI_CLI_HARNESS_H_
