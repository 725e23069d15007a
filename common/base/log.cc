#include "common/base/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fedmi {
namespace {

const char* g_tag = "fedmi";

LogLevel MinimumLevel() {
  static const LogLevel level = [] {
    const char* env = std::getenv("FEDMI_LOG_LEVEL");
    if (env == nullptr) return LogLevel::kInfo;
    if (std::strcmp(env, "ERROR") == 0) return LogLevel::kError;
    if (std::strcmp(env, "WARNING") == 0) return LogLevel::kWarning;
    return LogLevel::kInfo;
  }();
  return level;
}

}  // namespace

void SetLogTag(const char* tag) { g_tag = tag; }

LogLine::LogLine(LogLevel level) : enabled_(level >= MinimumLevel()), level_(level) {}

LogLine::~LogLine() {
  if (!enabled_) return;
  static const char* kNames[] = {"I", "W", "E"};
  std::string text = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  text += " ";
  text += kNames[static_cast<int>(level_)];
  text += " [";
  text += g_tag;
  text += "] ";
  text += stream_.str();
  text += "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace fedmi
