#ifndef LATENCY_TESTS_TESTING_RECORDING_SINK_H_
#define LATENCY_TESTS_TESTING_RECORDING_SINK_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/sample.h"

namespace latency::testing {

// RecordingSink keeps every sample, thread-safely, for assertions.
class RecordingSink final : public SampleSink {
 public:
  void Record(const Sample& sample) override {
    absl::MutexLock lock(&mu_);
    samples_.push_back(sample);
  }
  std::vector<Sample> samples() {
    absl::MutexLock lock(&mu_);
    return samples_;
  }
  // Waits (real time, bounded) until at least `count` samples arrived.
  bool WaitFor(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return samples_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  absl::Mutex mu_;
  std::vector<Sample> samples_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_RECORDING_SINK_H_
