#ifndef LATENCY_COMMON_CLOCK_H_
#define LATENCY_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/time/time.h"

namespace latency {

// Clock is the only way project code reads time, so tests can substitute a
// fake one and never sleep (Envoy's TimeSource).
class Clock {
 public:
  virtual ~Clock() = default;

  // Nanoseconds on a monotonic clock (CLOCK_MONOTONIC) since an arbitrary
  // epoch. Use it for every interval and RTT: it never jumps with NTP.
  virtual int64_t MonotonicNanos() const = 0;

  // Wall-clock time. Use it only to label things for people.
  virtual absl::Time WallNow() const = 0;

  // The wall-clock label of a monotonic reading (as of now: a later NTP
  // step relabels nothing already labelled).
  absl::Time WallTimeOf(int64_t monotonic_ns) const {
    return WallNow() - absl::Nanoseconds(MonotonicNanos() - monotonic_ns);
  }
};

// RealClock reads the operating system's clocks.
class RealClock final : public Clock {
 public:
  int64_t MonotonicNanos() const override;
  absl::Time WallNow() const override;
};

// Process-wide RealClock for wiring in mains.
Clock& RealClockInstance();

}  // namespace latency

#endif  // LATENCY_COMMON_CLOCK_H_
