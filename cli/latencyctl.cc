#include "cli/latencyctl.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/echo_command.h"
#include "cli/query_commands.h"
#include "cli/rpc_util.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/json.h"
#include "google/protobuf/struct.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace latency {

const char kLatencyctlUsage[] =
    "Query latency-server and echo latency-agents.\n\n"
    "Usage: latencyctl COMMAND [ARGS] [flags]\n\n"
    "Commands:\n"
    "  status [TARGET]  overall status, a target's latest ICMP and gRPC RTT,\n"
    "                   one line per target\n"
    "  targets          every target with its latest values and errors\n"
    "  stats TARGET     windowed statistics per probe kind (--window)\n"
    "  history TARGET   stored history (survives restarts): a p50 sparkline\n"
    "                   and one row per point (--since, --step, --kind)\n"
    "  watch [TARGET]   live samples until Ctrl-C (--kind, --count); follows\n"
    "                   the server through a reload\n"
    "  matrix [SERVER...]  source x target matrix of the latest RTT (--kind:\n"
    "                   icmp, default, or grpc) from several servers at once\n"
    "                   (default --server); rows are their --source\n"
    "  echo AGENT       gRPC echo to a latency-agent (host:port), ping-like\n"
    "                   (--count, --interval, --mode, --payload_bytes)\n"
    "  health [ADDR]    standard gRPC health check of a latency-server or\n"
    "                   latency-agent (default --server): exit 0 SERVING,\n"
    "                   1 not serving, 2 unreachable; for container\n"
    "                   HEALTHCHECKs (no curl needed)\n\n"
    "Examples:\n"
    "  latencyctl status\n"
    "  latencyctl targets --server=10.0.0.5:50052\n"
    "  latencyctl stats agent-1 --window=15m\n"
    "  latencyctl stats agent-1 --output=json\n"
    "  latencyctl history agent-1 --since=24h --step=1h\n"
    "  latencyctl watch agent-1 --kind=grpc\n"
    "  latencyctl watch --count=10 --output=json\n"
    "  latencyctl matrix 10.0.1.5:50052 10.0.2.5:50052 10.0.3.5:50052\n"
    "  latencyctl echo 127.0.0.1:50051 --count=10\n"
    "  latencyctl echo agent.example:50051 --mode=stream --count=0\n"
    "  latencyctl health 127.0.0.1:50051\n"
    "  latencyctl status --tls_ca=ca.pem --auth_token_file=token\n\n"
    "TLS: --tls_ca verifies the server (or agent) certificate, --tls_cert and\n"
    "--tls_key present a client certificate (mTLS), --tls alone uses the\n"
    "system's CA roots. --auth_token_file sends its token to latency-server\n"
    "as a bearer token, over TLS only (never in clear, never to an agent).\n\n"
    "Output: --output=table (default) or json (one object per line; for the\n"
    "query commands protobuf's JSON mapping, where null means no data).\n"
    "Exit codes: 0 all ok (status TARGET: that target ok), 1 some target or\n"
    "echo not ok, 2 usage error, unreachable server or agent, failed call.";

namespace {

constexpr int32_t kDefaultEchoCount = 5;

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

// A channel to `address` with the configured TLS and, when `with_token`,
// the query token as call credentials: gRPC sends those only on a secure
// channel, and a plaintext channel with a token is refused here, before
// anything is sent.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(
    const std::string& address, const CliConfig& config, bool with_token) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(config.tls);
  if (!credentials.ok()) return credentials.status();
  if (with_token && !config.token_file.empty()) {
    absl::StatusOr<std::string> token =
        ReadTokenFile(config.token_file, "--auth_token_file");
    if (!token.ok()) return token.status();
    if (!config.tls.enabled()) {
      return absl::FailedPreconditionError(
          "--auth_token_file: refusing to send the token in clear; connect "
          "with TLS (--tls_ca=CA.pem, or --tls for the system's CA roots)");
    }
    std::shared_ptr<grpc::ChannelCredentials> composite =
        grpc::CompositeChannelCredentials(*credentials,
                                          grpc::AccessTokenCredentials(*token));
    if (composite == nullptr) {
      return absl::FailedPreconditionError(
          "--auth_token_file: cannot attach the token to this channel");
    }
    *credentials = std::move(composite);
  }
  return grpc::CreateChannel(address, *credentials);
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
  if (config.count.value_or(0) < 0) {
    return Usage("--count must not be negative", err);
  }
  if (config.payload_bytes < 0) {
    return Usage("--payload_bytes must not be negative", err);
  }
  if (config.interval <= absl::ZeroDuration()) {
    return Usage("--interval must be positive", err);
  }
  EchoOptions options;
  options.agent = args[1];
  options.count = config.count.value_or(kDefaultEchoCount);
  options.json = config.output == "json";
  options.interval = config.interval;
  options.timeout = config.timeout;
  options.payload_bytes = config.payload_bytes;
  options.stream = config.mode == "stream";
  if (!config.token_file.empty()) {
    err << "latencyctl: echo does not send the --auth_token_file token: "
           "it is for latency-server, never for agents\n";
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(options.agent, config, /*with_token=*/false);
  if (!channel.ok()) return ConnectError(channel.status(), err);
  return RunEcho(options, *channel, RealClockInstance(), out, stop);
}

// grpc.health.v1.Health/Check of the whole server (service ""): no token
// (health is exempt), TLS as configured.
int RunHealthCommand(const std::vector<std::string>& args,
                     const CliConfig& config, std::ostream& out,
                     std::ostream& err) {
  if (args.size() > 2) return Usage("health takes at most one ADDR", err);
  const std::string address = args.size() == 2 ? args[1] : config.server;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(address, config, /*with_token=*/false);
  if (!channel.ok()) return ConnectError(channel.status(), err);
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + config.timeout));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status =
      stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) {
    err << "latencyctl: health of " << address << ": " << GrpcStatusText(status)
        << "\n";
    return kExitError;
  }
  const std::string name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
          response.status());
  if (config.output == "json") {
    google::protobuf::Struct json;
    (*json.mutable_fields())["address"].set_string_value(address);
    (*json.mutable_fields())["status"].set_string_value(name);
    out << ToJson(json) << "\n";
  } else {
    out << address << ": " << name << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitNotOk;
}

}  // namespace

std::vector<std::string> RewriteFlagAliases(std::vector<std::string> args) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"c", "count"}, {"token_file", "auth_token_file"}};
  for (std::string& arg : args) {
    if (arg == "--") break;
    for (const auto& [old_name, name] : kAliases) {
      for (const std::string dashes : {"-", "--"}) {
        std::string prefix = dashes + old_name;
        if (arg == prefix || absl::StartsWith(arg, prefix + "=")) {
          arg = absl::StrCat("--", name, arg.substr(prefix.size()));
        }
      }
    }
  }
  return args;
}

int RunLatencyctl(const std::vector<std::string>& args, const CliConfig& config,
                  std::ostream& out, std::ostream& err,
                  const std::atomic<bool>* stop) {
  if (args.empty()) return Usage("missing COMMAND", err);
  const std::string& command = args[0];
  if (config.timeout <= absl::ZeroDuration()) {
    return Usage("--timeout must be positive", err);
  }
  if (config.output != "json" && config.output != "table") {
    return Usage(
        absl::StrCat("--output: want table or json, not '", config.output, "'"),
        err);
  }
  if (command == "echo") return RunEchoCommand(args, config, out, err, stop);
  if (command == "health") return RunHealthCommand(args, config, out, err);
  if (command != "status" && command != "targets" && command != "stats" &&
      command != "watch" && command != "matrix" && command != "history") {
    return Usage(absl::StrCat("unknown command '", command, "'"), err);
  }

  QueryOptions options;
  options.server = config.server;
  options.timeout = config.timeout;
  options.window = config.window;
  options.count = config.count.value_or(0);
  options.since = config.since;
  options.step = config.step;
  if (options.since <= absl::ZeroDuration() ||
      options.step < absl::ZeroDuration()) {
    return Usage("--since must be positive and --step not negative", err);
  }
  if (config.output == "json") options.output = OutputFormat::kJson;
  std::optional<v1::ProbeKind> kind = ParseKind(config.kind);
  if (!kind) {
    return Usage(
        absl::StrCat("--kind: want icmp, grpc or all, not '", config.kind, "'"),
        err);
  }
  options.kind = *kind;
  if (options.count < 0) return Usage("--count must not be negative", err);
  if (command == "matrix") {
    std::vector<std::string> addresses(args.begin() + 1, args.end());
    if (addresses.empty()) addresses.push_back(options.server);
    std::vector<std::pair<std::string, std::shared_ptr<grpc::ChannelInterface>>>
        servers;
    for (const std::string& address : addresses) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          Connect(address, config, /*with_token=*/true);
      if (!channel.ok()) return ConnectError(channel.status(), err);
      servers.emplace_back(address, *std::move(channel));
    }
    return RunMatrix(options, servers, out, err);
  }
  if (args.size() > 2)
    return Usage(absl::StrCat("too many arguments to ", command), err);
  if (args.size() == 2) options.target = args[1];

  if (command == "targets" && args.size() != 1) {
    return Usage("targets takes no arguments", err);
  }
  if ((command == "stats" || command == "history") && args.size() != 2) {
    return Usage(command + " takes one TARGET", err);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      Connect(options.server, config, /*with_token=*/true);
  if (!channel.ok()) return ConnectError(channel.status(), err);
  if (command == "status") return RunStatus(options, *channel, out, err);
  if (command == "watch") return RunWatch(options, *channel, out, err, stop);
  if (command == "targets") return RunTargets(options, *channel, out, err);
  if (command == "history") return RunHistory(options, *channel, out, err);
  return RunStats(options, *channel, out, err);
}

}  // namespace latency
