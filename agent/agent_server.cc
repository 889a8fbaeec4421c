#include "agent/agent_server.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/listen.h"
#include "common/logging.h"
#include "common/version.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace latency {
namespace {

// Half the prober's shortest keepalive time (1 s), so timer jitter never
// makes a ping look early.
constexpr int kMinPermittedPingIntervalMs = 500;

}  // namespace

std::string LocalHostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "unknown";
  }
  return name;
}

absl::Status ValidateAgentOptions(const AgentOptions& options) {
  if (options.listen.empty() || options.listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: want HOST:PORT, got '", options.listen, "'"));
  }
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_concurrent_streams: must be at least 1, got ",
                     options.max_concurrent_streams));
  }
  if (options.max_message_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes: must be at least 1024, got ",
                     options.max_message_bytes));
  }
  if (options.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain_timeout: must not be negative");
  }
  return absl::OkStatus();
}

AgentServer::AgentServer(const AgentOptions& options, Clock& clock,
                         const std::string& hostname)
    : options_(options),
      echo_service_(
          clock, AgentIdentity{hostname, kVersion,
                               static_cast<uint64_t>(options.max_message_bytes),
                               options.icmp_echo_sysctl_path}) {}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(
    const AgentOptions& options, Clock& clock) {
  if (absl::Status valid = ValidateAgentOptions(options); !valid.ok()) {
    return valid;
  }
  std::string hostname =
      options.hostname.empty() ? LocalHostname() : options.hostname;
  std::unique_ptr<AgentServer> agent(new AgentServer(options, clock, hostname));

  if (options.tls.enabled()) {
    absl::StatusOr<std::shared_ptr<ServerCertificates>> certificates =
        ServerCertificates::Create(options.tls, "agent",
                                   options.tls_poll_interval);
    if (!certificates.ok()) return certificates.status();
    agent->certificates_ = std::move(*certificates);
  }

  // Under TLS the tap would see only encrypted records: no tap, and replies
  // do not claim stamps, so servers take handler stamps at once.
  if (options.wire_stamps && agent->certificates_ == nullptr) {
    absl::StatusOr<std::unique_ptr<WireTap>> tap = OpenWireStampsTap();
    if (!tap.ok()) return tap.status();
    agent->wire_holds_ = std::make_unique<WireHolds>(std::move(*tap), clock);
    agent->echo_service_.UseWireHolds(agent->wire_holds_.get());
  }

  if (absl::Status status = CheckListenAddress("--listen", options.listen);
      !status.ok()) {
    return status;
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen,
                           MakeServerCredentials(agent->certificates_),
                           &agent->port_);
  // gRPC sets SO_REUSEPORT by default, which would let a second agent
  // silently share the port; a port in use must be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Per connection: one client cannot hold unbounded calls or streams.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  // The prober keeps its connection under HTTP/2 keepalive pings (every
  // second or more, with or without a call open). gRPC's server defaults
  // count those as abuse and close the connection with GOAWAY
  // "too_many_pings", which would make probes pay for a new connection.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      kMinPermittedPingIntervalMs);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // Replies echo the payload, so they are as large as the largest request
  // plus a few fields.
  builder.SetMaxSendMessageSize(options.max_message_bytes + 4096);
  builder.RegisterService(&agent->echo_service_);
  builder.RegisterService(&agent->health_service_);
  agent->server_ = builder.BuildAndStart();
  if (agent->server_ == nullptr || agent->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", options.listen,
                     " (address in use, or not an address of this host?)"));
  }
  if (agent->wire_holds_ != nullptr) {
    agent->wire_holds_->tap().AddServicePort(
        static_cast<uint16_t>(agent->port_));
  }
  agent->health_service_.SetStatus(
      "", HealthService::ServingStatus(
              grpc::health::v1::HealthCheckResponse::SERVING));
  agent->health_service_.SetStatus(
      v1::EchoService::service_full_name(),
      grpc::health::v1::HealthCheckResponse::SERVING);

  IcmpEchoSetting icmp = ReadIcmpEchoSetting(options.icmp_echo_sysctl_path);
  auto log = Logger("agent");
  log->info("latency-agent {} serving on port {} (listen {}, host {}, {})",
            kVersion, agent->port_, options.listen, hostname,
            agent->certificates_ == nullptr   ? "plaintext"
            : options.tls.require_client_cert ? "mTLS"
                                              : "TLS");
  if (agent->wire_holds_ != nullptr) {
    log->info("wire stamps on: replies carry each echo's wire hold");
  } else if (options.wire_stamps) {
    log->warn(
        "--wire_stamps is off under TLS (a tap sees only encrypted records): "
        "servers use handler stamps for this agent's network RTT");
  }
  if (icmp.enabled) {
    log->info("host answers ICMP echo ({})", icmp.state);
  } else if (absl::StartsWith(icmp.state, "net.ipv4.")) {
    log->warn(
        "host does not answer ICMP echo ({}); ICMP probes to it will "
        "time out",
        icmp.state);
  } else {
    log->warn(
        "cannot tell whether this host answers ICMP echo ({}): check "
        "net.ipv4.icmp_echo_ignore_all=0",
        icmp.state);
  }
  return agent;
}

AgentServer::~AgentServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> AgentServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(INT_MAX);
  args.SetMaxReceiveMessageSize(INT_MAX);
  return server_->InProcessChannel(args);
}

void AgentServer::ReloadCertificates() {
  if (certificates_ == nullptr) {
    Logger("agent")->info("SIGHUP: TLS is off, nothing to reload");
    return;
  }
  certificates_->Reload().IgnoreError();  // logged
}

void AgentServer::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  health_service_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(options_.drain_timeout));
  server_->Wait();
  Logger("agent")->info("latency-agent stopped");
}

}  // namespace latency
