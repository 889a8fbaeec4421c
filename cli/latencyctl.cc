#include "cli/latencyctl.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/echo_command.h"
#include "cli/query_commands.h"
#include "cli/rpc_util.h"
#include "common/auth.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_interceptor.h"

namespace latency {

const char kLatencyctlUsage[] =
    "Query latency-server and echo latency-agents.\n\n"
    "Usage: latencyctl COMMAND [ARGS] [flags]\n\n"
    "Commands:\n"
    "  status [TARGET]  overall status, a target's latest ICMP and gRPC RTT,\n"
    "                   one line per target\n"
    "  targets          every target with its latest values and errors\n"
    "  stats TARGET     windowed statistics per probe kind (--window)\n"
    "  watch [TARGET]   live samples until Ctrl-C (--kind, --count)\n"
    "  echo AGENT       gRPC echo to a latency-agent (host:port), ping-like\n\n"
    "Examples:\n"
    "  latencyctl status\n"
    "  latencyctl targets --server=10.0.0.5:50052\n"
    "  latencyctl stats agent-1 --window=15m\n"
    "  latencyctl stats agent-1 --output=json\n"
    "  latencyctl watch agent-1 --kind=grpc\n"
    "  latencyctl watch --count=10 --output=json\n"
    "  latencyctl echo 127.0.0.1:50051 --c=10\n"
    "  latencyctl echo agent.example:50051 --mode=stream --c=0\n"
    "  latencyctl status --tls_ca=ca.pem --token_file=token\n\n"
    "TLS: --tls_ca verifies the server (or agent) certificate, --tls_cert and\n"
    "--tls_key present a client certificate (mTLS), --tls alone uses the\n"
    "system's CA roots. --token_file sends its token as a bearer token.\n\n"
    "Output: --output=table (default) or json (protobuf JSON mapping, one\n"
    "object per line; an absent field means no data).\n"
    "Exit codes: 0 all ok, 1 some target or probe not ok, 2 usage or "
    "connection error.";

namespace {

int Usage(const std::string& problem, std::ostream& err) {
  err << "latencyctl: " << problem << "\n\n" << kLatencyctlUsage << "\n";
  return kExitError;
}

std::optional<v1::ProbeKind> ParseKind(const std::string& kind) {
  if (kind.empty() || kind == "all") return v1::PROBE_KIND_UNSPECIFIED;
  if (kind == "icmp") return v1::PROBE_KIND_ICMP;
  if (kind == "grpc") return v1::PROBE_KIND_GRPC;
  return std::nullopt;
}

// Adds "authorization: Bearer TOKEN" to every call.
class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string& value) : value_(value) {}
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", value_});
    }
    methods->Proceed();
  }

 private:
  const std::string& value_;
};

class BearerTokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token)
      : value_(BearerAuthorization(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(value_);
  }

 private:
  const std::string value_;
};

// A channel to `address` with the configured TLS and token.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(
    const std::string& address, const CliConfig& config) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(config.tls);
  if (!credentials.ok()) return credentials.status();
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!config.token_file.empty()) {
    absl::StatusOr<std::string> token =
        ReadTokenFile(config.token_file, "--token_file");
    if (!token.ok()) return token.status();
    interceptors.push_back(
        std::make_unique<BearerTokenInterceptorFactory>(*token));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, *credentials, grpc::ChannelArguments(), std::move(interceptors));
}

int ConnectError(const absl::Status& status, std::ostream& err) {
  err << "latencyctl: " << status.message() << "\n";
  return kExitError;
}

int RunEchoCommand(const std::vector<std::string>& args,
                   const CliConfig& config, std::ostream& out,
                   std::ostream& err, const std::atomic<bool>* stop) {
  if (args.size() != 2) return Usage("echo takes one AGENT (host:port)", err);
  if (config.mode != "unary" && config.mode != "stream") {
    return Usage("--mode: want unary or stream", err);
  }
  if (config.echo_count < 0 || config.payload_bytes < 0) {
    return Usage("--c and --payload_bytes must not be negative", err);
  }
  EchoOptions options;
  options.agent = args[1];
  options.count = config.echo_count;
  options.interval = config.interval;
  options.timeout = config.timeout;
  options.payload_bytes = config.payload_bytes;
  options.stream = config.mode == "stream";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(options.agent, config);
  if (!channel.ok()) return ConnectError(channel.status(), err);
  return RunEcho(options, *channel, RealClockInstance(), out, stop);
}

}  // namespace

int RunLatencyctl(const std::vector<std::string>& args, const CliConfig& config,
                  std::ostream& out, std::ostream& err,
                  const std::atomic<bool>* stop) {
  if (args.empty()) return Usage("missing COMMAND", err);
  const std::string& command = args[0];
  if (config.timeout <= absl::ZeroDuration()) {
    return Usage("--timeout must be positive", err);
  }
  if (command == "echo") return RunEchoCommand(args, config, out, err, stop);
  if (command != "status" && command != "targets" && command != "stats" &&
      command != "watch") {
    return Usage(absl::StrCat("unknown command '", command, "'"), err);
  }

  QueryOptions options;
  options.server = config.server;
  options.timeout = config.timeout;
  options.window = config.window;
  options.count = config.count;
  if (config.output == "json") {
    options.output = OutputFormat::kJson;
  } else if (config.output != "table") {
    return Usage(
        absl::StrCat("--output: want table or json, not '", config.output, "'"),
        err);
  }
  std::optional<v1::ProbeKind> kind = ParseKind(config.kind);
  if (!kind) {
    return Usage(
        absl::StrCat("--kind: want icmp, grpc or all, not '", config.kind, "'"),
        err);
  }
  options.kind = *kind;
  if (config.count < 0) return Usage("--count must not be negative", err);
  if (args.size() > 2)
    return Usage(absl::StrCat("too many arguments to ", command), err);
  if (args.size() == 2) options.target = args[1];

  if (command == "targets" && args.size() != 1) {
    return Usage("targets takes no arguments", err);
  }
  if (command == "stats" && args.size() != 2) {
    return Usage("stats takes one TARGET", err);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(options.server, config);
  if (!channel.ok()) return ConnectError(channel.status(), err);
  if (command == "status") return RunStatus(options, *channel, out, err);
  if (command == "watch") return RunWatch(options, *channel, out, err, stop);
  if (command == "targets") return RunTargets(options, *channel, out, err);
  return RunStats(options, *channel, out, err);
}

}  // namespace latency
