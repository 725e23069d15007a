#include "common/base/fault_hook.h"

#include <csignal>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "common/base/enum_names.h"
#include "common/base/log.h"

namespace fedmi {
namespace {

constexpr EnumName<FaultPoint> kFaultPoints[] = {
    {FaultPoint::kCoordinatorMidUpload, "coordinator-mid-upload"},
    {FaultPoint::kCoordinatorMidAggregation, "coordinator-mid-aggregation"},
    {FaultPoint::kCoordinatorCommit, "coordinator-commit"},
    {FaultPoint::kCoordinatorEvaluation, "coordinator-evaluation"},
    {FaultPoint::kCoordinatorBetweenRounds, "coordinator-between-rounds"},
    {FaultPoint::kSiteBeforeMaskedUpload, "secagg-before-masked-upload"},
};

class NoFaultHook final : public FaultHook {
 public:
  void Reached(FaultPoint, int32_t) override {}
};

class CrashAtFaultPoint final : public FaultHook {
 public:
  CrashAtFaultPoint(FaultPoint point, std::optional<int32_t> round, std::string setting)
      : point_(point), round_(round), setting_(std::move(setting)) {}

  void Reached(FaultPoint point, int32_t round) override {
    if (point != point_ || (round_.has_value() && *round_ != round)) return;
    FEDMI_LOG(WARNING) << "FEDMI_TEST_CRASH_AT=" << setting_
                       << ": killing this process (test only)";
    std::raise(SIGKILL);
  }

 private:
  const FaultPoint point_;
  const std::optional<int32_t> round_;
  const std::string setting_;
};

FaultHook& MakeHookFromEnvironment() {
  const char* crash_at = std::getenv("FEDMI_TEST_CRASH_AT");
  if (crash_at == nullptr || *crash_at == '\0') return NoFaults();
  const std::string setting = crash_at;
  const size_t colon = setting.find(':');
  const std::optional<FaultPoint> point = ParseFaultPoint(setting.substr(0, colon));
  std::optional<int32_t> round;
  if (colon != std::string::npos) {
    int32_t parsed = 0;
    if (absl::SimpleAtoi(setting.substr(colon + 1), &parsed)) round = parsed;
  }
  if (!point.has_value() || (colon != std::string::npos && !round.has_value())) {
    FEDMI_LOG(ERROR) << "FEDMI_TEST_CRASH_AT=" << setting << " names no fault point; ignoring it";
    return NoFaults();
  }
  static CrashAtFaultPoint* const hook = new CrashAtFaultPoint(*point, round, setting);
  return *hook;
}

}  // namespace

const char* FaultPointName(FaultPoint point) { return NameOf(kFaultPoints, point); }

std::optional<FaultPoint> ParseFaultPoint(absl::string_view name) {
  return ParseName(kFaultPoints, name);
}

FaultHook& NoFaults() {
  static NoFaultHook* const hook = new NoFaultHook();
  return *hook;
}

FaultHook& CrashAtFaultPointFromEnvironment() {
  static FaultHook& hook = MakeHookFromEnvironment();
  return hook;
}

}  // namespace fedmi
