// Minimal line logger to stderr: `FEDMI_LOG(INFO) << "site connected";`
// Each statement writes one line atomically with a UTC timestamp.
// Thread-safe. Set FEDMI_LOG_LEVEL=WARNING (or ERROR) to quieten it.
#ifndef FEDMI_COMMON_BASE_LOG_H_
#define FEDMI_COMMON_BASE_LOG_H_

#include <sstream>

namespace fedmi {

enum class LogLevel { kInfo = 0, kWarning = 1, kError = 2 };

class LogLine {
 public:
  explicit LogLine(LogLevel level);
  ~LogLine();
  template <typename T>
  LogLine& operator<<(const T& value) {
    if (enabled_) stream_ << value;
    return *this;
  }

 private:
  bool enabled_;
  LogLevel level_;
  std::ostringstream stream_;
};

// Sets the process-wide tag printed on every line, e.g. "coordinator".
void SetLogTag(const char* tag);

}  // namespace fedmi

#define FEDMI_LOG_LEVEL_INFO ::fedmi::LogLevel::kInfo
#define FEDMI_LOG_LEVEL_WARNING ::fedmi::LogLevel::kWarning
#define FEDMI_LOG_LEVEL_ERROR ::fedmi::LogLevel::kError
#define FEDMI_LOG(level) ::fedmi::LogLine(FEDMI_LOG_LEVEL_##level)

#endif  // FEDMI_COMMON_BASE_LOG_H_
