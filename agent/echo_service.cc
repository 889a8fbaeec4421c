#include "agent/echo_service.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"

namespace latency {

IcmpEchoSetting ReadIcmpEchoSetting(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return {false, "cannot read " + path};
  }
  std::stringstream contents;
  contents << file.rdbuf();
  std::string value(absl::StripAsciiWhitespace(contents.str()));
  if (value == "0") {
    return {true, "net.ipv4.icmp_echo_ignore_all=0"};
  }
  if (value == "1") {
    return {false, "net.ipv4.icmp_echo_ignore_all=1"};
  }
  return {false, "unexpected value '" + value + "' in " + path};
}

// Reads one request, answers it, then reads the next: replies keep the
// requests' order and at most one write is in flight.
class EchoServiceImpl::StreamReactor final
    : public grpc::ServerBidiReactor<v1::EchoRequest, v1::EchoResponse> {
 public:
  StreamReactor(const EchoServiceImpl* service, std::string peer)
      : service_(service), peer_(std::move(peer)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed (or the call is gone): end cleanly.
      Finish(grpc::Status::OK);
      return;
    }
    int64_t receive_time_ns = service_->clock_.MonotonicNanos();
    response_.Clear();
    service_->FillReply(request_, receive_time_ns, &response_);
    service_->AttachWireHolds(peer_, request_, &response_);
    response_.set_agent_send_time_ns(service_->clock_.MonotonicNanos());
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const EchoServiceImpl* const service_;
  const std::string peer_;
  v1::EchoRequest request_;
  v1::EchoResponse response_;
};

EchoServiceImpl::EchoServiceImpl(Clock& clock, AgentIdentity identity)
    : clock_(clock),
      identity_(std::move(identity)),
      start_time_ns_(clock.MonotonicNanos()) {}

void EchoServiceImpl::FillReply(const v1::EchoRequest& request,
                                int64_t receive_time_ns,
                                v1::EchoResponse* response) const {
  response->set_sequence(request.sequence());
  response->set_payload(request.payload());
  response->set_client_send_time_ns(request.client_send_time_ns());
  response->set_agent_receive_time_ns(receive_time_ns);
  response->set_agent_hostname(identity_.hostname);
  response->set_agent_version(identity_.version);
}

void EchoServiceImpl::AttachWireHolds(const std::string& peer,
                                      const v1::EchoRequest& request,
                                      v1::EchoResponse* response) const {
  if (wire_holds_ == nullptr) return;
  wire_holds_->Attach(peer, request.client_send_time_ns(), response);
}

grpc::ServerUnaryReactor* EchoServiceImpl::Echo(
    grpc::CallbackServerContext* context, const v1::EchoRequest* request,
    v1::EchoResponse* response) {
  int64_t receive_time_ns = clock_.MonotonicNanos();
  FillReply(*request, receive_time_ns, response);
  AttachWireHolds(context->peer(), *request, response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  response->set_agent_send_time_ns(clock_.MonotonicNanos());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerBidiReactor<v1::EchoRequest, v1::EchoResponse>*
EchoServiceImpl::EchoStream(grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context->peer());
}

grpc::ServerUnaryReactor* EchoServiceImpl::GetAgentInfo(
    grpc::CallbackServerContext* context,
    const v1::GetAgentInfoRequest* /*request*/,
    v1::GetAgentInfoResponse* response) {
  IcmpEchoSetting icmp = ReadIcmpEchoSetting(identity_.icmp_echo_sysctl_path);
  response->set_hostname(identity_.hostname);
  response->set_version(identity_.version);
  response->set_icmp_echo_enabled(icmp.enabled);
  response->set_icmp_echo_state(icmp.state);
  response->set_max_message_bytes(identity_.max_message_bytes);
  response->set_uptime_ms((clock_.MonotonicNanos() - start_time_ns_) /
                          1'000'000);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace latency
