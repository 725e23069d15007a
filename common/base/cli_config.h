// The TOML config option every fedmi binary shares: `--config FILE`, or
// $FEDMI_CONFIG when the flag is absent. Keys are the long flag names
// (`listen = "0.0.0.0:7000"`); flags on the command line override them.
// Header-only so that fedmi_common itself needs no CLI11.
#ifndef FEDMI_COMMON_BASE_CLI_CONFIG_H_
#define FEDMI_COMMON_BASE_CLI_CONFIG_H_

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/base/cli_usage.h"

namespace fedmi {

inline void AddConfigOption(CLI::App& app) {
  const char* env = std::getenv("FEDMI_CONFIG");
  const std::string from_env = env != nullptr ? env : "";
  // A config named by the environment must exist: silently ignoring a typo
  // would run with defaults the operator did not choose.
  app.set_config("--config", from_env, "TOML config file (default: $FEDMI_CONFIG)",
                 /*config_required=*/!from_env.empty());
}

// The config file in effect after parsing ("" when none).
inline std::string ConfigFileOf(CLI::App& app) {
  CLI::Option* option = app.get_config_ptr();
  if (option == nullptr) return "";
  if (option->count() > 0) return option->as<std::string>();
  const char* env = std::getenv("FEDMI_CONFIG");
  return env != nullptr ? env : "";
}

// The config file named by --config FILE / --config=FILE in argv, else by
// $FEDMI_CONFIG, else "". For code that runs inside CLI11's parse().
inline std::string ConfigFileInArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) return argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) return arg.substr(9);
  }
  const char* env = std::getenv("FEDMI_CONFIG");
  return env != nullptr ? env : "";
}

// Resolves a relative `path` against the directory of `config_file` (kits
// name their files relative to their config); other paths pass unchanged.
inline std::string ResolveAgainstConfig(const std::string& path, const std::string& config_file) {
  if (path.empty() || path[0] == '/' || config_file.empty()) return path;
  const size_t slash = config_file.rfind('/');
  if (slash == std::string::npos) return path;
  return config_file.substr(0, slash + 1) + path;
}

// A relative path written in a config file means relative to that file, so
// that a kit folder can be moved as a whole; given as `flag` on the command
// line it means relative to the working directory, as usual.
inline std::string ResolveConfigPath(const std::string& path, const std::string& flag, int argc,
                                     char** argv, const std::string& config_file) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == flag || arg.rfind(flag + "=", 0) == 0) return path;
  }
  return ResolveAgainstConfig(path, config_file);
}

// Parses the command line. Returns -1 when the program should go on, else
// its exit code: 0 after --help or --version, 2 for a usage error, which
// goes to stderr as "error: unknown flag '--bogus' (see `prog --help`)"
// (DescribeUsageError) or in CLI11's words.
inline int ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    if (const std::string message = DescribeUsageError(app, e); !message.empty()) {
      std::cerr << "error: " << message << std::endl;
      return 2;
    }
    app.exit(e);
    return 2;
  }
  return -1;
}

// Adds --cert, --key and --ca, the party's kit files for mutual TLS.
struct TlsFlags {
  std::string cert;
  std::string key;
  std::string ca;
  std::string crl;
};
inline void AddTlsOptions(CLI::App& app, TlsFlags& flags) {
  app.add_option("--cert", flags.cert, "this party's certificate (PEM, from its kit)");
  app.add_option("--key", flags.key, "this party's private key (PEM, from its kit)");
  app.add_option("--ca", flags.ca, "the project CA certificate (PEM, from the kit)");
  app.add_option("--crl", flags.crl,
                 "the project's certificate revocation list (PEM, from `fedmi provision crl`), "
                 "checked against the CA at start: certificates it lists are refused");
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_CLI_CONFIG_H_
