#ifndef LATENCY_CLI_ECHO_COMMAND_H_
#define LATENCY_CLI_ECHO_COMMAND_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"

namespace latency {

// EchoOptions are `latencyctl echo`'s settings.
struct EchoOptions {
  std::string agent;  // host:port of latency-agent
  int count = 5;      // echoes to send; 0 means until interrupted
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(2);
  int payload_bytes = 0;
  bool stream = false;  // one EchoStream instead of unary calls
  bool json = false;    // one JSON object per echo and for the summary
};

// EchoReply is the outcome of one echo as the caller saw it.
struct EchoReply {
  uint64_t sequence = 0;
  bool ok = false;
  int64_t rtt_ns = 0;         // client-measured round trip
  int64_t agent_time_ns = 0;  // agent_send - agent_receive
  std::string error;          // gRPC status when !ok
  std::string agent_hostname;
  grpc::StatusCode code = grpc::StatusCode::OK;
};

// EchoSummary aggregates the replies like ping's footer.
struct EchoSummary {
  int sent = 0;
  int received = 0;
  std::optional<double> min_ms, avg_ms, max_ms, stddev_ms;
};
EchoSummary Summarize(const std::vector<EchoReply>& replies);

// Human formats, ping-like:
//   "seq=1 rtt=0.231 ms agent=0.004 ms network=0.227 ms host=h1"
//   "seq=2 error: DEADLINE_EXCEEDED: ..."
std::string FormatReplyLine(const EchoReply& reply);
std::string FormatSummary(const std::string& agent, const EchoSummary& summary);

// Runs the echoes against `channel`, printing one line per reply to `out`
// and the summary at the end (with options.json, one JSON object each:
// {"seq","ok","rtt_ms","agent_ms","network_ms","host","error"}, null where
// there is no value, then {"agent","sent","received","loss_percent",
// "min_ms","avg_ms","max_ms","stddev_ms"}). Every echo, unary or on the
// stream, waits at most options.timeout for its reply. `stop` (may be null)
// ends it within a few tens of milliseconds when set, even mid-call or
// mid-interval. Returns the process exit code: 0 when every echo succeeded,
// 2 when the agent could not be reached (every echo failed with
// UNAVAILABLE or DEADLINE_EXCEEDED), 1 when some failed otherwise (e.g. a
// reachable agent rejected every echo).
int RunEcho(const EchoOptions& options, std::shared_ptr<grpc::Channel> channel,
            Clock& clock, std::ostream& out,
            const std::atomic<bool>* stop = nullptr);

}  // namespace latency

#endif  // LATENCY_CLI_ECHO_COMMAND_H_
