#include "common/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace latency {

int64_t RealClock::MonotonicNanos() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

absl::Time RealClock::WallNow() const { return absl::Now(); }

Clock& RealClockInstance() {
  static RealClock* const clock = new RealClock();
  return *clock;
}

}  // namespace latency
