#ifndef LATENCY_SERVER_SAMPLE_H_
#define LATENCY_SERVER_SAMPLE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace latency {

// How a sample was measured.
enum class ProbeKind { kIcmp, kGrpc };

// Outcome of one probe. Only kOk carries an RTT.
enum class SampleResult {
  kOk,
  kTimeout,      // no reply within the timeout
  kUnreachable,  // ICMP destination unreachable, or gRPC UNAVAILABLE
  kTtlExceeded,  // ICMP time exceeded
  kSendFailed,   // could not be sent (socket error, no address)
  kError,        // anything else (e.g. a gRPC error status); see error
};

// Where an ICMP RTT's send/receive times came from.
enum class TimestampSource { kNone, kKernel, kUserspace, kMixed };

// Sample is one completed probe: what the probers produce and everything
// downstream (statistics, queries, Watch) consumes. Times named *_ns are on
// the monotonic clock (Clock::MonotonicNanos).
struct Sample {
  // Index of the target in the server's target list.
  int target_index = 0;
  ProbeKind kind = ProbeKind::kIcmp;
  // Per target and kind, starting at 0.
  uint64_t sequence = 0;
  // When the probe was due (the schedule, not the send: no coordinated
  // omission) and when it was actually sent.
  int64_t scheduled_ns = 0;
  int64_t sent_ns = 0;
  // When the reply arrived or the probe was given up.
  int64_t completed_ns = 0;
  // Wall-clock label of scheduled_ns, for people.
  absl::Time scheduled_wall = absl::UnixEpoch();
  SampleResult result = SampleResult::kTimeout;
  // Round-trip time; set iff result == kOk.
  std::optional<int64_t> rtt_ns;
  // Time the request spent inside the agent's handler (gRPC only).
  std::optional<int64_t> agent_time_ns;
  // With wire stamps on both hosts (gRPC only): the server's wire round trip
  // minus the agent host's wire hold. Preferred to rtt_ns - agent_time_ns,
  // which still holds both ends' gRPC and TCP stacks.
  std::optional<int64_t> wire_network_rtt_ns;
  TimestampSource timestamp_source = TimestampSource::kNone;
  // Failure detail, empty on success.
  std::string error;

  bool ok() const { return result == SampleResult::kOk; }
  std::optional<int64_t> network_rtt_ns() const {
    if (wire_network_rtt_ns) return wire_network_rtt_ns;
    if (!rtt_ns || !agent_time_ns) return std::nullopt;
    return *rtt_ns - *agent_time_ns;
  }
};

// SampleSink receives every completed probe. Probers call Record from their
// own threads; implementations must be thread-safe and must not block.
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void Record(const Sample& sample) = 0;
};

// Short lowercase names used in logs, metrics labels and failure maps:
// "icmp"/"grpc"; "ok", "timeout", "unreachable", "ttl_exceeded",
// "send_failed", "error".
inline const char* ProbeKindName(ProbeKind kind) {
  return kind == ProbeKind::kIcmp ? "icmp" : "grpc";
}
inline const char* SampleResultName(SampleResult result) {
  switch (result) {
    case SampleResult::kOk:
      return "ok";
    case SampleResult::kTimeout:
      return "timeout";
    case SampleResult::kUnreachable:
      return "unreachable";
    case SampleResult::kTtlExceeded:
      return "ttl_exceeded";
    case SampleResult::kSendFailed:
      return "send_failed";
    case SampleResult::kError:
      return "error";
  }
  return "error";
}

}  // namespace latency

#endif  // LATENCY_SERVER_SAMPLE_H_
