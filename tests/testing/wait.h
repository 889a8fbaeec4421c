#ifndef LATENCY_TESTS_TESTING_WAIT_H_
#define LATENCY_TESTS_TESTING_WAIT_H_

#include <functional>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace latency::testing {

// Polls `done` until it holds or `timeout` passes (real time). For
// integration tests against real sockets only: the bound is generous and the
// assertion is on what happened, never on how long it took.
inline bool WaitUntil(const std::function<bool()>& done,
                      absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_WAIT_H_
