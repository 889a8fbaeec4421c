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
};

// Channel for probing one agent at `target` (gRPC target string): its own
// connection (no subchannel sharing between targets) and reconnect backoff
// capped at `max_backoff`, so a restarted agent is seen again quickly.
// `credentials` (null: plaintext) may be shared by every target's channel.
std::shared_ptr<grpc::Channel> MakeProbeChannel(
    const std::string& target, absl::Duration max_backoff,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

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
