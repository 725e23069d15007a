#include "cli/command_support.h"

#include <cmath>
#include <exception>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/cli_config.h"

namespace fedmi::cli {

void RunCommand(CommandResult& result, const std::function<int()>& handler) {
  try {
    result.exit_code = handler();
  } catch (const std::exception& e) {
    result.exit_code = ReportError(absl::InternalError(e.what()));
  } catch (...) {
    result.exit_code = ReportError(absl::InternalError("unknown exception"));
  }
}

int ReportError(const absl::Status& status) {
  std::cout.flush();
  std::cerr << "error: " << status.message() << std::endl;
  return kExitFailure;
}

int ReportUsageError(const std::string& message) {
  std::cout.flush();
  std::cerr << "error: " << message << std::endl;
  return kExitUsage;
}

absl::StatusOr<std::unique_ptr<AdminClient>> ConnectToCoordinator(const GlobalOptions& global) {
  if (global.insecure) {
    std::cerr << "warning: --insecure: plaintext, unauthenticated transport; local experiments "
                 "only"
              << std::endl;
  }
  TransportOptions transport;
  transport.insecure = global.insecure;
  transport.cert_file =
      ResolveConfigPath(global.cert, "--cert", global.argc, global.argv, global.config_file);
  transport.key_file =
      ResolveConfigPath(global.key, "--key", global.argc, global.argv, global.config_file);
  transport.ca_file =
      ResolveConfigPath(global.ca, "--ca", global.argc, global.argv, global.config_file);
  return AdminClient::Connect(global.coordinator, transport);
}

nlohmann::json JsonNumber(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

std::string FormatMetric(double value, int precision) {
  if (std::isnan(value)) return "-";
  return absl::StrFormat("%.*f", precision, value);
}

std::string FormatUnixTime(double unix_seconds) {
  if (unix_seconds <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                          absl::FromUnixSeconds(static_cast<int64_t>(unix_seconds)),
                          absl::UTCTimeZone());
}

std::string FormatAgo(double unix_seconds) {
  if (unix_seconds <= 0) return "-";
  const double ago =
      std::max(0.0, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) - unix_seconds);
  if (ago < 120) return absl::StrCat(static_cast<int64_t>(ago), " s ago");
  if (ago < 2 * 3600) return absl::StrCat(static_cast<int64_t>(ago / 60), " min ago");
  if (ago < 2 * 86400) return absl::StrCat(static_cast<int64_t>(ago / 3600), " h ago");
  return absl::StrCat(static_cast<int64_t>(ago / 86400), " d ago");
}

void PrintJsonLine(const nlohmann::json& json) {
  // Replace rather than throw on invalid UTF-8 in user-supplied strings.
  std::cout << json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

CLI::Option* AddJsonFlag(CLI::App* command, GlobalOptions& global) {
  return command->add_flag("--json", global.json,
                           "print one JSON object as the last line of stdout instead of text");
}

bool HasLeftRound(ParticipationState state) {
  return state == ParticipationState::kDropped || state == ParticipationState::kRefused;
}

bool HasLeftRound(absl::string_view participation_state) {
  const std::optional<ParticipationState> state = ParseParticipationState(participation_state);
  return state.has_value() && HasLeftRound(*state);
}

}  // namespace fedmi::cli
