// Where the coordinator's time goes on the update path, summed over every
// upload, download and round since it started: the per-phase breakdown of
// `fedmi bench round --json` and fedmi_coordinator_phase_seconds_total.
// Phases overlap in wall time (uploads run side by side), so the sums are
// thread-seconds, comparable with the process's CPU time.
//
// Thread-safe: relaxed atomic adds, one per timed stretch (a chunk, an
// update, a round), never per value.
#ifndef FEDMI_COORDINATOR_PHASE_TIMES_H_
#define FEDMI_COORDINATOR_PHASE_TIMES_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace fedmi {

enum class UpdatePhase {
  kReceive,    // waiting in gRPC reads of an upload: the network, TLS, protobuf decoding
  kHash,       // SHA-256 of the body as it arrives
  kCheck,      // the value scan: finiteness and the change's norm (UpdateValueScan)
  kSpool,      // writing the body to its spool file
  kFold,       // the aggregator taking a complete update (FedAvg: the weighted add)
  kCommit,     // a round's aggregate written to the model store, and its round committed
  kModelSend,  // streaming global models to sites: reading, encoding, gRPC writes
};
inline constexpr int kUpdatePhaseCount = 7;
const char* UpdatePhaseName(UpdatePhase phase);

class PhaseTimes {
 public:
  using Clock = std::chrono::steady_clock;

  void Add(UpdatePhase phase, Clock::duration elapsed) {
    nanos_[static_cast<size_t>(phase)].fetch_add(
        std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
        std::memory_order_relaxed);
  }
  double Seconds(UpdatePhase phase) const {
    return static_cast<double>(nanos_[static_cast<size_t>(phase)].load(std::memory_order_relaxed)) *
           1e-9;
  }

 private:
  std::array<std::atomic<int64_t>, kUpdatePhaseCount> nanos_{};
};

// Adds the time from its construction to its destruction to `phase`;
// nothing when `times` is null.
class PhaseTimer {
 public:
  PhaseTimer(PhaseTimes* times, UpdatePhase phase)
      : times_(times), phase_(phase), start_(PhaseTimes::Clock::now()) {}
  ~PhaseTimer() {
    if (times_ != nullptr) times_->Add(phase_, PhaseTimes::Clock::now() - start_);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  PhaseTimes* const times_;
  const UpdatePhase phase_;
  const PhaseTimes::Clock::time_point start_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_PHASE_TIMES_H_
