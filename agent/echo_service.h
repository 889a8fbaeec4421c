#ifndef LATENCY_AGENT_ECHO_SERVICE_H_
#define LATENCY_AGENT_ECHO_SERVICE_H_

#include <cstdint>
#include <string>

#include "agent/wire_holds.h"
#include "common/clock.h"
#include "latency/v1/echo.grpc.pb.h"

namespace latency {

// IcmpEchoSetting is what the host kernel says about answering ICMP echo.
struct IcmpEchoSetting {
  bool enabled = false;
  // Human-readable reading, e.g. "net.ipv4.icmp_echo_ignore_all=0", or why it
  // could not be read.
  std::string state;
};

// Reads net.ipv4.icmp_echo_ignore_all from `path` (normally
// /proc/sys/net/ipv4/icmp_echo_ignore_all). Unreadable or malformed files
// give enabled=false with the reason in `state`.
IcmpEchoSetting ReadIcmpEchoSetting(const std::string& path);

// Static facts the agent reports about itself.
struct AgentIdentity {
  std::string hostname;
  std::string version;
  uint64_t max_message_bytes = 0;
  // Where to read net.ipv4.icmp_echo_ignore_all (re-read on every
  // GetAgentInfo so the answer follows sysctl changes).
  std::string icmp_echo_sysctl_path;
};

// EchoServiceImpl answers latency.v1.EchoService with the callback API.
// Every reply carries agent_receive_time_ns (taken when the handler starts)
// and agent_send_time_ns (taken just before the reply is handed to gRPC),
// both from `clock`'s monotonic time. EchoStream answers requests strictly in
// order, one at a time.
class EchoServiceImpl final : public v1::EchoService::CallbackService {
 public:
  EchoServiceImpl(Clock& clock, AgentIdentity identity);

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoRequest* request,
                                 v1::EchoResponse* response) override;

  grpc::ServerBidiReactor<v1::EchoRequest, v1::EchoResponse>* EchoStream(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* GetAgentInfo(
      grpc::CallbackServerContext* context,
      const v1::GetAgentInfoRequest* request,
      v1::GetAgentInfoResponse* response) override;

  // With wire stamps (--wire_stamps) replies also carry wire holds. Set
  // before the service is registered; `holds` outlives the service.
  void UseWireHolds(WireHolds* holds) { wire_holds_ = holds; }

 private:
  class StreamReactor;

  // Fills everything but agent_send_time_ns from `request`.
  void FillReply(const v1::EchoRequest& request, int64_t receive_time_ns,
                 v1::EchoResponse* response) const;

  // Adds the wire holds for `peer` when wire stamps are on.
  void AttachWireHolds(const std::string& peer, const v1::EchoRequest& request,
                       v1::EchoResponse* response) const;

  Clock& clock_;
  const AgentIdentity identity_;
  WireHolds* wire_holds_ = nullptr;
  const int64_t start_time_ns_;
};

}  // namespace latency

#endif  // LATENCY_AGENT_ECHO_SERVICE_H_
