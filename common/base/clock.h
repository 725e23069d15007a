// Time as an injected dependency, so deadlines and timestamps can be driven
// by tests. Implementations are thread-safe.
#ifndef FEDMI_COMMON_BASE_CLOCK_H_
#define FEDMI_COMMON_BASE_CLOCK_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fedmi {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  double NowUnixSeconds() const { return absl::ToDoubleSeconds(Now() - absl::UnixEpoch()); }
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// A clock that only moves when told to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Advance(absl::Duration d) { nanos_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_CLOCK_H_
