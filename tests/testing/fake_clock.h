#ifndef LATENCY_TESTS_TESTING_FAKE_CLOCK_H_
#define LATENCY_TESTS_TESTING_FAKE_CLOCK_H_

#include <atomic>

#include "absl/time/time.h"
#include "common/clock.h"

namespace latency::testing {

// FakeClock only moves when a test moves it (Envoy's SimulatedTimeSystem).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'000'000'000)
      : monotonic_ns_(start_ns) {}

  int64_t MonotonicNanos() const override { return monotonic_ns_.load(); }
  absl::Time WallNow() const override {
    return absl::FromUnixNanos(kWallEpochNs + monotonic_ns_.load());
  }

  void Advance(absl::Duration d) {
    monotonic_ns_ += absl::ToInt64Nanoseconds(d);
  }
  void SetMonotonicNanos(int64_t ns) { monotonic_ns_ = ns; }

 private:
  // 2026-01-01T00:00:00Z, so wall labels look real.
  static constexpr int64_t kWallEpochNs = 1'767'225'600'000'000'000;
  std::atomic<int64_t> monotonic_ns_;
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_FAKE_CLOCK_H_
