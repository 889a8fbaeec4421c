#ifndef LATENCY_TESTS_SERVER_API_API_TEST_STORE_H_
#define LATENCY_TESTS_SERVER_API_API_TEST_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/api/query.h"
#include "server/sample.h"
#include "server/stats/status.h"
#include "server/store/result_store.h"
#include "server/target.h"
#include "tests/testing/fake_clock.h"

namespace latency::testing {

inline constexpr int64_t kApiT0 = 5'000'000'000'000;  // store creation time
inline constexpr int64_t kApiMs = 1'000'000;
inline constexpr int64_t kApiSec = 1'000'000'000;

inline TargetSpec ApiTarget(const std::string& name, const std::string& host,
                            bool icmp = true, bool grpc = true) {
  TargetSpec spec;
  spec.name = name;
  spec.host = host;
  spec.grpc_port = 50051;
  spec.icmp_enabled = icmp;
  spec.grpc_enabled = grpc;
  return spec;
}

// A ResultStore on a FakeClock that tests fill with samples of known values
// (every sample's completion time is "now" unless given).
class ApiTestStore {
 public:
  explicit ApiTestStore(std::vector<TargetSpec> targets)
      : clock_(kApiT0),
        store_(std::make_shared<ResultStore>(clock_, std::move(targets),
                                             StatusThresholds())) {}

  FakeClock& clock() { return clock_; }
  ResultStore& store() { return *store_; }
  std::shared_ptr<ResultStore> shared() { return store_; }
  int64_t now() const { return clock_.MonotonicNanos(); }

  // The view QueryHandler reads: addresses are "addr-<index>".
  StoreView View() const {
    return {store_, [](int i) { return "addr-" + std::to_string(i); }};
  }

  void Ok(int target, ProbeKind kind, int64_t rtt_ns,
          std::optional<int64_t> agent_ns = std::nullopt,
          std::optional<int64_t> completed_ns = std::nullopt) {
    Sample s = Base(target, kind, completed_ns.value_or(now()));
    s.result = SampleResult::kOk;
    s.rtt_ns = rtt_ns;
    s.agent_time_ns = agent_ns;
    s.timestamp_source = kind == ProbeKind::kIcmp ? TimestampSource::kKernel
                                                  : TimestampSource::kNone;
    store_->Record(s);
  }
  void Fail(int target, ProbeKind kind, SampleResult result,
            const std::string& error = "",
            std::optional<int64_t> completed_ns = std::nullopt) {
    Sample s = Base(target, kind, completed_ns.value_or(now()));
    s.result = result;
    s.error = error;
    store_->Record(s);
  }

  // Puts the target's enabled probes into `status` as of now. The target's
  // interval must be 1 s, except for kUnknown, which needs an interval long
  // enough that "no sample yet" is not stale (see MakeStatusTargets), and
  // now must be at least 10 s after kApiT0.
  void Produce(int target, ProbeStatus status) {
    const TargetSpec& spec = store_->targets()[target];
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      if (kind == ProbeKind::kIcmp ? !spec.icmp_enabled : !spec.grpc_enabled) {
        continue;
      }
      Produce(target, kind, status);
    }
  }
  void Produce(int target, ProbeKind kind, ProbeStatus status) {
    switch (status) {
      case ProbeStatus::kUnknown:
        break;  // no sample
      case ProbeStatus::kOk:
        Ok(target, kind, 2 * kApiMs);
        break;
      case ProbeStatus::kDegraded:
        // 2 lost of 21 (9.5% > 5%; loss needs 20 samples to mean
        // something), after the first success, the latest ok: not down,
        // not stale.
        for (int i = 0; i < 18; ++i) Ok(target, kind, 2 * kApiMs);
        Fail(target, kind, SampleResult::kTimeout);
        Fail(target, kind, SampleResult::kTimeout);
        Ok(target, kind, 2 * kApiMs);
        break;
      case ProbeStatus::kDown:
        for (int i = 0; i < 3; ++i) Fail(target, kind, SampleResult::kTimeout);
        break;
      case ProbeStatus::kStale:
        // 5 s old at a 1 s interval: more than 3 intervals.
        Ok(target, kind, 2 * kApiMs, std::nullopt, now() - 5 * kApiSec);
        break;
      case ProbeStatus::kNoPermission:
        store_->SetNoPermission(target, kind, "not allowed to send ICMP");
        break;
    }
  }

 private:
  Sample Base(int target, ProbeKind kind, int64_t completed_ns) {
    Sample s;
    s.target_index = target;
    s.kind = kind;
    s.sequence = next_sequence_[kind == ProbeKind::kIcmp ? 0 : 1]++;
    s.completed_ns = completed_ns;
    s.sent_ns = completed_ns - kApiMs;
    s.scheduled_ns = s.sent_ns;
    s.scheduled_wall = clock_.WallTimeOf(s.scheduled_ns);
    return s;
  }

  FakeClock clock_;
  std::shared_ptr<ResultStore> store_;
  uint64_t next_sequence_[2] = {0, 0};
};

// Targets for status combinations: "unknown" needs an interval that makes
// an empty series not yet stale 10 s after creation.
inline TargetSpec StatusTarget(const std::string& name, ProbeStatus status,
                               bool grpc = false) {
  TargetSpec spec = ApiTarget(name, "10.9.0.1", true, grpc);
  spec.interval =
      status == ProbeStatus::kUnknown ? absl::Minutes(1) : absl::Seconds(1);
  return spec;
}

}  // namespace latency::testing

#endif  // LATENCY_TESTS_SERVER_API_API_TEST_STORE_H_
