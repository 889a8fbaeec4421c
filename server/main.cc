// latency-server: probes every target by ICMP and gRPC, keeps windowed
// statistics and a status per target.
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/signals.h"
#include "server/config/config.h"
#include "server/config/dns_sd.h"
#include "server/config/file_sd.h"
#include "server/ec2_metadata.h"
#include "server/server_app.h"
#include "server/target_sources.h"

ABSL_FLAG(std::vector<std::string>, target, {},
          "[NAME=]HOST[:GRPC_PORT] to probe (repeatable, or comma-separated); "
          "gRPC port defaults to 50051; IPv6 as [::1]:50051");
ABSL_FLAG(std::string, config, "",
          "server config file (text proto, or JSON when named *.json); see "
          "server/config/example.textproto");
ABSL_FLAG(std::vector<std::string>, file_sd, {},
          "discover targets in files of Prometheus' file_sd format (JSON, "
          "or YAML when named *.yml/*.yaml: lists of {targets: "
          "[\"[NAME=]HOST[:PORT]\", ...], labels: {...}}): paths or glob "
          "patterns (repeatable, or comma-separated), added to the config's "
          "file_sd");
ABSL_FLAG(absl::Duration, file_sd_refresh, absl::Seconds(10),
          "re-read the --file_sd files this often and apply changes in place "
          "(also on SIGHUP); 0 = only at start and on SIGHUP");
ABSL_FLAG(std::vector<std::string>, dns_sd, {},
          "discover targets in DNS: srv:NAME (every SRV record's host and "
          "port), a:NAME[:PORT] or aaaa:NAME[:PORT] (every IPv4 or IPv6 "
          "address of NAME, e.g. a Kubernetes headless service; port "
          "default 50051); repeatable, or comma-separated; added to the "
          "config's dns_sd");
ABSL_FLAG(absl::Duration, dns_sd_refresh, absl::Seconds(30),
          "look the --dns_sd names up again this often and apply changes in "
          "place (also on SIGHUP); 0 = only at start and on SIGHUP");
// Unset (not 0) means "the config file's defaults, else 1s", so help does
// not show a 0 that is not the real default.
ABSL_FLAG(std::optional<absl::Duration>, interval, std::nullopt,
          "probe interval for targets that do not set one (unset: the "
          "--config file's defaults, else 1s)");
ABSL_FLAG(std::optional<absl::Duration>, timeout, std::nullopt,
          "probe timeout for targets that do not set one (unset: the "
          "--config file's defaults, else 1s)");
ABSL_FLAG(std::string, grpc_listen, "127.0.0.1:50052",
          "host:port of the gRPC query service (LatencyService, health, "
          "reflection); loopback unless told otherwise (e.g. "
          "0.0.0.0:50052, with --auth_token_file and TLS); empty disables "
          "it");
ABSL_FLAG(
    std::string, http_listen, "0.0.0.0:5000",
    "host:port of the HTTP gateway (/metrics JSON or Prometheus, /v1/..., "
    "/healthz, /readyz); empty disables it");
ABSL_FLAG(int32_t, http_max_connections, 512,
          "most open HTTP gateway connections; more get 503 and are closed");
ABSL_FLAG(int32_t, http_max_connections_per_client, 64,
          "most open HTTP gateway connections from one client address");
ABSL_FLAG(absl::Duration, http_request_timeout, absl::Seconds(5),
          "an HTTP request (headers and body) must arrive within this from "
          "its first byte, else 408 and the connection closes");
ABSL_FLAG(int32_t, max_watchers, 64, "most concurrent Watch streams");
ABSL_FLAG(int32_t, max_watchers_per_client, 8,
          "most concurrent Watch streams from one client address; 0: only "
          "--max_watchers applies");
ABSL_FLAG(std::string, source, "",
          "where this server measures from (e.g. eu-west-1a): the `source` "
          "label of every metric and `source` in API answers; default: the "
          "config's `source`, else the host name");
ABSL_FLAG(std::string, source_from, "",
          "ec2: the source is this EC2 instance's Availability Zone (e.g. "
          "eu-west-1a), asked once at start from the instance metadata "
          "service (IMDSv2); instead of --source");
ABSL_FLAG(std::string, ec2_metadata_endpoint, "http://169.254.169.254",
          "the EC2 instance metadata service --source_from=ec2 asks");
ABSL_FLAG(int32_t, max_concurrent_streams, 100,
          "calls and streams one query client connection may have open");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(60),
          "log a one-line 1-minute summary per target this often; 0 = never");
ABSL_FLAG(absl::Duration, dns_refresh, absl::Seconds(60),
          "re-resolve target host names this often");
ABSL_FLAG(bool, wire_stamps, false,
          "stamp gRPC echo segments on the wire (needs CAP_NET_RAW; agents "
          "with --wire_stamps, plaintext) so network RTT leaves out both "
          "hosts' gRPC and TCP stacks; such samples are recorded one probe "
          "interval late");
constexpr char kDefaultHistoryDb[] = "/var/lib/latency-pair/history.db";
ABSL_FLAG(std::string, history_db, kDefaultHistoryDb,
          "SQLite file of the stored history (a row per target, probe kind "
          "and minute, and per hour); empty = off. The default is used when "
          "its directory exists (the package creates it), else history is "
          "off; a path given here must be in an existing directory");
ABSL_FLAG(absl::Duration, history_minutes, absl::Hours(7 * 24),
          "how long history keeps minute rows");
ABSL_FLAG(absl::Duration, history_hours, absl::Hours(400 * 24),
          "how long history keeps hour rows");
ABSL_FLAG(std::string, grpc_tls_cert, "",
          "PEM certificate chain of the gRPC query service; with "
          "--grpc_tls_key it serves TLS only. Re-read on SIGHUP and when the "
          "file changes");
ABSL_FLAG(std::string, grpc_tls_key, "", "PEM private key of --grpc_tls_cert");
ABSL_FLAG(std::string, grpc_tls_client_ca, "",
          "PEM CA bundle; when set, query clients must present a certificate "
          "it signed (mTLS)");
ABSL_FLAG(std::vector<std::string>, grpc_tls_client_san, {},
          "with --grpc_tls_client_ca: subjectAltNames (DNS, IP, URI) of which "
          "a query client's certificate must carry one (repeatable, or "
          "comma-separated); others get PERMISSION_DENIED, so agents' "
          "certificates from the same CA do not open the query API");
ABSL_FLAG(std::string, http_tls_cert, "",
          "PEM certificate chain of the HTTP gateway; with --http_tls_key it "
          "serves HTTPS only. Re-read on SIGHUP and when the file changes");
ABSL_FLAG(std::string, http_tls_key, "", "PEM private key of --http_tls_cert");
ABSL_FLAG(bool, probe_tls, false,
          "probe agents over TLS (implied by --probe_tls_ca/_cert); without "
          "--probe_tls_ca the system's CA roots verify them");
ABSL_FLAG(std::string, probe_tls_ca, "",
          "PEM CA bundle that agents' certificates must chain to");
ABSL_FLAG(std::string, probe_tls_cert, "",
          "PEM client certificate for agents that require one (mTLS)");
ABSL_FLAG(std::string, probe_tls_key, "",
          "PEM private key of --probe_tls_cert");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding a bearer token that the gRPC query API and HTTP "
          "gateway require (Authorization: Bearer TOKEN); health checks and "
          "reflection are exempt. Re-read on SIGHUP");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(std::string, log_format, "text", "text or json (one object a line)");

namespace {

// The host name (the default --source), or "unknown" if it has none.
std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "unknown";
  }
  return name;
}

// The --config file, with the --file_sd and --dns_sd flags added to its
// discovery.
absl::StatusOr<latency::v1::ServerConfig> ConfigFromFlags() {
  latency::v1::ServerConfig config;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    absl::StatusOr<latency::v1::ServerConfig> loaded =
        latency::LoadConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    config = *loaded;
  }
  for (const std::string& pattern : absl::GetFlag(FLAGS_file_sd)) {
    config.add_file_sd(pattern);
  }
  for (const std::string& value : absl::GetFlag(FLAGS_dns_sd)) {
    absl::StatusOr<latency::v1::DnsSdConfig> lookup =
        latency::ParseDnsSdFlag(value);
    if (!lookup.ok()) return lookup.status();
    *config.add_dns_sd() = *std::move(lookup);
  }
  return config;
}

absl::StatusOr<latency::ServerOptions> OptionsFromConfig(
    const latency::v1::ServerConfig& config,
    const std::vector<latency::DiscoveredTarget>& discovered) {
  latency::v1::ProbeSettings flag_defaults;
  if (std::optional<absl::Duration> d = absl::GetFlag(FLAGS_interval)) {
    flag_defaults.set_interval_ms(absl::ToInt64Milliseconds(*d));
  }
  if (std::optional<absl::Duration> d = absl::GetFlag(FLAGS_timeout)) {
    flag_defaults.set_timeout_ms(absl::ToInt64Milliseconds(*d));
  }
  absl::StatusOr<latency::ServerSettings> settings = latency::BuildSettings(
      config, absl::GetFlag(FLAGS_target), flag_defaults, discovered);
  if (!settings.ok()) return settings.status();
  for (const std::string& why : settings->skipped) {
    latency::Logger("server")->warn("discovered target left out: {}", why);
  }
  latency::ServerOptions options;
  options.targets = settings->targets;
  options.source = absl::GetFlag(FLAGS_source);
  if (!options.source.empty()) {
    if (absl::Status s = latency::ValidateSource("--source", options.source);
        !s.ok()) {
      return s;
    }
  } else if (!settings->source.empty()) {
    options.source = settings->source;
  } else {
    options.source = HostName();
  }
  options.thresholds.degraded_loss_percent =
      settings->thresholds.degraded_loss_percent();
  options.thresholds.down_after_failures =
      static_cast<int>(settings->thresholds.down_after_failures());
  options.thresholds.stale_after_intervals =
      static_cast<int>(settings->thresholds.stale_after_intervals());
  options.report_interval = absl::GetFlag(FLAGS_report_interval);
  options.dns_refresh = absl::GetFlag(FLAGS_dns_refresh);
  options.grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  options.http_front.max_connections =
      absl::GetFlag(FLAGS_http_max_connections);
  options.http_front.max_connections_per_client =
      absl::GetFlag(FLAGS_http_max_connections_per_client);
  options.http_front.request_timeout =
      absl::GetFlag(FLAGS_http_request_timeout);
  if (options.http_front.max_connections < 1 ||
      options.http_front.max_connections_per_client < 1) {
    return absl::InvalidArgumentError(
        "--http_max_connections, --http_max_connections_per_client: must be "
        "1 or more");
  }
  if (options.http_front.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--http_request_timeout: must be more than 0");
  }
  options.max_watchers = absl::GetFlag(FLAGS_max_watchers);
  options.max_watchers_per_client =
      absl::GetFlag(FLAGS_max_watchers_per_client);
  if (options.max_watchers_per_client < 0) {
    return absl::InvalidArgumentError(
        "--max_watchers_per_client: must be 0 or more");
  }
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.grpc_tls =
      latency::ServerTlsFiles("--grpc_tls_", absl::GetFlag(FLAGS_grpc_tls_cert),
                              absl::GetFlag(FLAGS_grpc_tls_key),
                              absl::GetFlag(FLAGS_grpc_tls_client_ca));
  options.grpc_client_sans = absl::GetFlag(FLAGS_grpc_tls_client_san);
  options.http_tls =
      latency::ServerTlsFiles("--http_tls_", absl::GetFlag(FLAGS_http_tls_cert),
                              absl::GetFlag(FLAGS_http_tls_key), "");
  options.probe_tls = latency::ClientTlsFiles(
      "--probe_tls_", absl::GetFlag(FLAGS_probe_tls),
      absl::GetFlag(FLAGS_probe_tls_ca), absl::GetFlag(FLAGS_probe_tls_cert),
      absl::GetFlag(FLAGS_probe_tls_key));
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  return options;
}

// History settings, read once at start (a reload keeps them). The default
// path only counts where its directory exists; a path the user gave must.
absl::StatusOr<latency::HistoryOptions> HistoryFromFlags() {
  latency::HistoryOptions history;
  history.path = absl::GetFlag(FLAGS_history_db);
  history.retention.minutes = absl::GetFlag(FLAGS_history_minutes);
  history.retention.hours = absl::GetFlag(FLAGS_history_hours);
  if (history.retention.minutes < absl::Hours(1) ||
      history.retention.hours < history.retention.minutes) {
    return absl::InvalidArgumentError(
        "--history_minutes must be at least 1h and --history_hours at least "
        "--history_minutes");
  }
  if (history.path.empty()) return history;
  const size_t slash = history.path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : history.path.substr(0, slash + 1);
  if (access(dir.c_str(), F_OK) != 0) {
    if (history.path == kDefaultHistoryDb) {
      latency::Logger("server")->info(
          "history off: {} does not exist (create it, or set --history_db)",
          dir);
      history.path.clear();
      return history;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--history_db: directory ", dir,
                     " does not exist (create it, or "
                     "--history_db= to turn history off)"));
  }
  return history;
}

// --source_from=ec2: asks EC2 once, at start, and sets --source (which a
// reload then keeps, as it keeps any --source).
absl::Status SourceFromMetadata() {
  const std::string from = absl::GetFlag(FLAGS_source_from);
  if (from.empty()) return absl::OkStatus();
  if (from != "ec2") {
    return absl::InvalidArgumentError(
        absl::StrCat("--source_from: \"", from, "\": want ec2"));
  }
  if (!absl::GetFlag(FLAGS_source).empty()) {
    return absl::InvalidArgumentError("--source and --source_from: set one");
  }
  absl::StatusOr<std::string> zone = latency::Ec2AvailabilityZone(
      absl::GetFlag(FLAGS_ec2_metadata_endpoint), absl::Seconds(2));
  if (!zone.ok()) {
    return absl::UnavailableError(
        absl::StrCat("--source_from=ec2: ", zone.status().message()));
  }
  latency::Logger("server")->info("source {} (EC2 instance metadata)", *zone);
  absl::SetFlag(&FLAGS_source, *zone);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  latency::BlockShutdownSignals();
  // Debian's Abseil leaves the mutex deadlock detector on (no NDEBUG): a
  // lock-graph update on every lock, ours and gRPC's, about 9% of the
  // server's CPU at 10k targets (BENCHMARKS.md). Tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  latency::ParseFlags(
      argc, argv, "latency-server",
      "Probes targets by ICMP and by gRPC echo to latency-agent, keeps "
      "windowed statistics\nand a status per target.\n\n"
      "Usage: latency-server --target=[NAME=]HOST[:PORT] [--target=...] "
      "[flags]\n       latency-server --config=FILE [flags]",
      {"target", "file_sd", "dns_sd", "grpc_tls_client_san"});
  if (absl::Status s = latency::SetupLogging(absl::GetFlag(FLAGS_log_level),
                                             absl::GetFlag(FLAGS_log_format));
      !s.ok()) {
    fprintf(stderr, "latency-server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto log = latency::Logger("server");
  if (absl::Status s = SourceFromMetadata(); !s.ok()) {
    log->critical("bad configuration: {}", s.message());
    return 2;
  }
  latency::TargetSources targets(ConfigFromFlags, OptionsFromConfig,
                                 &latency::RealFileSdSource(),
                                 &latency::RealDnsResolver());
  absl::StatusOr<latency::ServerOptions> options = targets.Load();
  if (!options.ok()) {
    log->critical("bad configuration: {}", options.status().message());
    return 2;
  }
  absl::StatusOr<latency::HistoryOptions> history = HistoryFromFlags();
  if (!history.ok()) {
    log->critical("bad configuration: {}", history.status().message());
    return 2;
  }
  options->history = *std::move(history);
  options->wire_stamps = absl::GetFlag(FLAGS_wire_stamps);
  auto app = latency::ServerApp::Start(*options, latency::RealClockInstance());
  if (!app.ok()) {
    log->critical("{}", app.status().message());
    return app.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  const latency::TargetSources::Applier apply =
      [&app](const latency::ServerOptions& next) {
        return (*app)->ReloadTargets(next.targets, next.thresholds);
      };
  absl::Notification stopping;
  // Each discovery's timer on its own thread: a DNS lookup that waits for
  // its timeout holds up no file refresh's timing (the lock aside).
  std::vector<std::thread> refreshers;
  auto refresh_every = [&](absl::Duration every, auto refresh) {
    if (every <= absl::ZeroDuration()) return;
    refreshers.emplace_back([&stopping, &targets, &apply, every, refresh] {
      while (!stopping.WaitForNotificationWithTimeout(every)) {
        (targets.*refresh)(apply);
      }
    });
  };
  refresh_every(absl::GetFlag(FLAGS_file_sd_refresh),
                &latency::TargetSources::RefreshFiles);
  refresh_every(absl::GetFlag(FLAGS_dns_sd_refresh),
                &latency::TargetSources::RefreshDns);
  int sig = latency::WaitForShutdownSignal([&app, &log, &targets, &apply] {
    log->info("SIGHUP: reloading TLS certificates, token and configuration");
    (*app)->ReloadCredentials();
    targets.Reload(apply);
  });
  log->info("signal {}: stopping", sig);
  stopping.Notify();
  for (std::thread& refresher : refreshers) refresher.join();
  (*app)->Shutdown();
  log->info("latency-server stopped");
  return 0;
}
