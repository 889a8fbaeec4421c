#ifndef LATENCY_SERVER_PROBER_ECHO_CLIENT_H_
#define LATENCY_SERVER_PROBER_ECHO_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "latency/v1/echo.grpc.pb.h"

namespace latency {

// EchoClient is the gRPC prober's seam to one agent (Envoy's
// createCodecClient): real implementations sit on a persistent channel, tests
// use a fake that completes calls by hand.
class EchoClient {
 public:
  using Done =
      std::function<void(const grpc::Status&, const v1::EchoResponse&)>;

  virtual ~EchoClient() = default;

  // Sends one echo without blocking. `done` runs exactly once, on a gRPC
  // thread (or inline on immediate failure), unless the client is destroyed
  // first. The destructor cancels what is in flight and waits for it.
  virtual void Echo(const v1::EchoRequest& request, absl::Duration timeout,
                    Done done) = 0;

  // The channel's connectivity state, without triggering a connection.
  virtual grpc_connectivity_state State() = 0;

  // Starts connecting now (when idle), without waiting.
  virtual void Connect() = 0;
};

// How a probe channel connects, reconnects and notices a dead connection,
// derived from the target's probe interval and timeout. A pure function of
// them, so the arithmetic is testable without a network.
struct ProbeChannelTuning {
  // Reconnect backoff: starts at initial, grows to max (the interval, so a
  // restarted agent is seen again within about two probes).
  int initial_backoff_ms = 100;
  int max_backoff_ms = 1000;
  // gRPC's GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is really the minimum time one
  // connection attempt may take (TCP + TLS + HTTP/2 settings), not a backoff:
  // 100 ms never connects to an agent 150 ms away.
  int min_connect_timeout_ms = 20'000;
  // HTTP/2 keepalive pings (and, through gRPC, TCP_USER_TIMEOUT = timeout):
  // a blackholed connection is dropped within time + timeout instead of
  // staying READY for minutes while TCP retransmits.
  int keepalive_time_ms = 1000;
  int keepalive_timeout_ms = 1000;
};
ProbeChannelTuning TuneProbeChannel(absl::Duration interval,
                                    absl::Duration timeout);

// The shortest keepalive time a probe channel uses; agents must accept pings
// this often (see AgentServer).
inline constexpr absl::Duration kMinProbeKeepaliveTime = absl::Seconds(1);

// Channel for probing one agent at `target` (gRPC target string): its own
// connection (no subchannel sharing between targets), tuned by
// TuneProbeChannel(interval, timeout). `credentials` (null: plaintext) may be
// shared by every target's channel. A non-empty `authority` ("name:port") is
// sent as :authority and checked against the agent's certificate, for a
// target given by a resolved address.
std::shared_ptr<grpc::Channel> MakeProbeChannel(
    const std::string& target, absl::Duration interval, absl::Duration timeout,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
    const std::string& authority = "");

// One Echo RPC per probe, with the probe timeout as its deadline.
std::unique_ptr<EchoClient> MakeUnaryEchoClient(
    std::shared_ptr<grpc::Channel> channel);

// Probes share one long-lived EchoStream; replies are matched by sequence.
// A broken stream fails its outstanding probes and is reopened by the next
// Echo; a stream whose oldest probe is older than its timeout is treated as
// stuck and replaced.
std::unique_ptr<EchoClient> MakeStreamEchoClient(
    std::shared_ptr<grpc::Channel> channel, Clock& clock);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_ECHO_CLIENT_H_
