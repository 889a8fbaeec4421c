#ifndef LATENCY_TESTS_SERVER_STATS_TEST_SAMPLES_H_
#define LATENCY_TESTS_SERVER_STATS_TEST_SAMPLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "server/sample.h"

namespace latency::testing {

// An arbitrary monotonic start, far from 0 and not slot-aligned.
inline constexpr int64_t kT0 = 1'000'003'000'000'000;
inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;

inline Sample OkSample(int64_t completed_ns, int64_t rtt_ns,
                       std::optional<int64_t> agent_time_ns = std::nullopt) {
  Sample sample;
  sample.kind = agent_time_ns ? ProbeKind::kGrpc : ProbeKind::kIcmp;
  sample.sent_ns = completed_ns - rtt_ns;
  sample.scheduled_ns = sample.sent_ns;
  sample.completed_ns = completed_ns;
  sample.result = SampleResult::kOk;
  sample.rtt_ns = rtt_ns;
  sample.agent_time_ns = agent_time_ns;
  return sample;
}

inline Sample FailedSample(int64_t completed_ns,
                           SampleResult result = SampleResult::kTimeout,
                           std::string error = "no reply") {
  Sample sample;
  sample.sent_ns = completed_ns - kSec;
  sample.scheduled_ns = sample.sent_ns;
  sample.completed_ns = completed_ns;
  sample.result = result;
  sample.error = std::move(error);
  return sample;
}

}  // namespace latency::testing

#endif  // LATENCY_TESTS_SERVER_STATS_TEST_SAMPLES_H_
