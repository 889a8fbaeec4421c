// The real latency-server binary probing a real latency-agent on loopback,
// queried by clients nobody here wrote: buf curl (gRPC via reflection only),
// curl (HTTP), Prometheus (scraping) and promtool (exposition lint), plus the
// project's own latencyctl.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/support/status_code_enum.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.pb.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

// One agent + one server for the whole suite: starting them is the slow part.
class ServerClientsTest : public ::testing::Test {
 protected:
  static void StartSuite() {
    std::string error;
    agent_ = new std::optional<AgentProcess>(testing::StartAgent({}, &error));
    ASSERT_TRUE(agent_->has_value()) << error;
    server_ = new std::optional<ServerProcess>(testing::StartServer(
        {absl::StrCat("--target=lo=127.0.0.1:", (*agent_)->port),
         "--interval=200ms", "--report_interval=0"},
        &error));
    ASSERT_TRUE(server_->has_value()) << error;
    // Healthy once both probes have answered.
    bool ok = WaitUntil(
        [] {
          CommandResult r = Curl({"-s", Server().http_url("/metrics")});
          // The overall status (it precedes "target"), not one probe's.
          return absl::StrContains(r.output, "\"status\":\"ok\",\"target\":");
        },
        absl::Seconds(30));
    ASSERT_TRUE(ok) << Server().process.Output();
    setup_ok_ = true;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete agent_;
  }
  // The suite's processes start in the first test's SetUp, not in
  // SetUpTestSuite: gtest 1.12 marks every test of a suite whose
  // SetUpTestSuite failed SKIPPED, and ctest counts those as passed. Here a
  // failed start fails the first test with its reason, and every other test.
  void SetUp() override {
    if (!setup_attempted_) {
      setup_attempted_ = true;
      StartSuite();
    }
    ASSERT_TRUE(setup_ok_) << "suite setup failed (see the first test)";
  }

  static ServerProcess& Server() { return **server_; }

  static CommandResult Curl(std::vector<std::string> args) {
    args.insert(args.begin(), "curl");
    return RunCommand(args, absl::Seconds(30));
  }
  static CommandResult Buf(const std::vector<std::string>& args,
                           absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {LATENCY_BUF_BINARY, "curl", "--protocol",
                                     "grpc", "--http2-prior-knowledge"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, timeout);
  }
  static std::string GrpcUrl(const std::string& method = "") {
    return "http://" + Server().grpc_address() +
           (method.empty() ? "" : "/latency.v1.LatencyService/" + method);
  }
  // HTTP status code and body of one request.
  static std::pair<int, std::string> Http(std::vector<std::string> args) {
    args.insert(args.begin(), {"-s", "-w", "\n%{http_code}"});
    CommandResult r = Curl(args);
    size_t split = r.output.rfind('\n');
    if (split == std::string::npos) return {0, r.output};
    return {std::atoi(r.output.c_str() + split + 1), r.output.substr(0, split)};
  }

  static std::optional<AgentProcess>* agent_;
  static std::optional<ServerProcess>* server_;
  static bool setup_attempted_;
  static bool setup_ok_;  // StartSuite ran to its end
};

std::optional<AgentProcess>* ServerClientsTest::agent_ = nullptr;
std::optional<ServerProcess>* ServerClientsTest::server_ = nullptr;
bool ServerClientsTest::setup_attempted_ = false;
bool ServerClientsTest::setup_ok_ = false;

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status =
      google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(status.ok()) << status << "\n" << json;
  return message;
}

// --- gRPC through reflection alone -----------------------------------------

TEST_F(ServerClientsTest, BufListsServicesThroughReflection) {
  CommandResult r = Buf({"--list-services", GrpcUrl()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("latency.v1.LatencyService"));
  EXPECT_THAT(r.output, HasSubstr("grpc.health.v1.Health"));
  CommandResult methods = Buf({"--list-methods", GrpcUrl()});
  for (const char* method :
       {"GetLatency", "ListTargets", "GetTargetStats", "Watch"}) {
    EXPECT_THAT(methods.output, HasSubstr(method));
  }
}

TEST_F(ServerClientsTest, BufCallsEveryUnaryRpc) {
  CommandResult latency = Buf({GrpcUrl("GetLatency")});
  ASSERT_EQ(latency.exit_code, 0) << latency.output;
  auto summary = ParseJson<v1::GetLatencyResponse>(latency.output);
  EXPECT_EQ(summary.status(), "ok");
  EXPECT_EQ(summary.target(), "lo");
  ASSERT_TRUE(summary.has_latency_ms());
  EXPECT_GT(summary.latency_ms(), 0);
  EXPECT_TRUE(summary.has_grpc_latency_ms());

  CommandResult targets = Buf({GrpcUrl("ListTargets")});
  ASSERT_EQ(targets.exit_code, 0) << targets.output;
  auto list = ParseJson<v1::ListTargetsResponse>(targets.output);
  ASSERT_EQ(list.targets_size(), 1);
  EXPECT_EQ(list.targets(0).address(), "127.0.0.1");

  CommandResult stats = Buf(
      {"-d", R"({"target":"lo","window":"5m"})", GrpcUrl("GetTargetStats")});
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  auto response = ParseJson<v1::GetTargetStatsResponse>(stats.output);
  EXPECT_EQ(response.window(), "5m");
  ASSERT_EQ(response.probes_size(), 2);
  for (const v1::ProbeStats& probe : response.probes()) {
    EXPECT_GT(probe.received(), 0u);
    EXPECT_TRUE(probe.has_p50_ms());
    EXPECT_LE(probe.min_ms(), probe.p50_ms());
    EXPECT_LE(probe.p50_ms(), probe.max_ms() * 1.01);
  }
}

TEST_F(ServerClientsTest, BufSeesNotFoundAndInvalidArgument) {
  CommandResult unknown =
      Buf({"-d", R"({"target":"nope"})", GrpcUrl("GetTargetStats")});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.output, HasSubstr("not_found"));
  CommandResult window = Buf(
      {"-d", R"({"target":"lo","window":"2d"})", GrpcUrl("GetTargetStats")});
  EXPECT_NE(window.exit_code, 0);
  EXPECT_THAT(window.output, HasSubstr("invalid_argument"));
  CommandResult latency =
      Buf({"-d", R"({"target":"nope"})", GrpcUrl("GetLatency")});
  EXPECT_THAT(latency.output, HasSubstr("not_found"));
}

TEST_F(ServerClientsTest, BufHealthCheck) {
  CommandResult r = Buf(
      {"http://" + Server().grpc_address() + "/grpc.health.v1.Health/Check"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"SERVING\""));
  CommandResult service = Buf(
      {"-d", R"({"service":"latency.v1.LatencyService"})",
       "http://" + Server().grpc_address() + "/grpc.health.v1.Health/Check"});
  EXPECT_THAT(service.output, HasSubstr("\"SERVING\""));
}

TEST_F(ServerClientsTest, BufReadsWatchMessages) {
  // Watch never ends by itself; buf's --timeout cuts it after ~2 s (10
  // probes of each kind at 200 ms).
  CommandResult r =
      Buf({"--timeout=2s", "-d", R"({"target":"lo","kind":"PROBE_KIND_ICMP"})",
           GrpcUrl("Watch")},
          absl::Seconds(60));
  int samples = 0;
  for (size_t at = 0;
       (at = r.output.find("\"sample\"", at)) != std::string::npos; ++at) {
    ++samples;
  }
  EXPECT_GE(samples, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PROBE_KIND_ICMP"));
  EXPECT_THAT(r.output, Not(HasSubstr("PROBE_KIND_GRPC")));
}

// --- HTTP with curl ----------------------------------------------------------

TEST_F(ServerClientsTest, MetricsKeepsTheOriginalContract) {
  auto [code, body] = Http({Server().http_url("/metrics")});
  EXPECT_EQ(code, 200);
  // The original Flask tool's keys, first and with the same meaning.
  EXPECT_THAT(body, ::testing::StartsWith("{\"latency_ms\":"));
  auto summary = ParseJson<v1::GetLatencyResponse>(body);
  EXPECT_GT(summary.latency_ms(), 0);
  EXPECT_EQ(summary.status(), "ok");
  CommandResult headers =
      Curl({"-s", "-o", "/dev/null", "-D", "-", Server().http_url("/metrics")});
  EXPECT_THAT(headers.output, HasSubstr("Content-Type: application/json"));
}

// What real clients send as Accept, and what /metrics must answer them.
TEST_F(ServerClientsTest, MetricsNegotiatesWithRealClientsAcceptHeaders) {
  struct Client {
    const char* name;
    const char* accept;  // nullptr: no Accept header at all
    const char* content_type;
  };
  const Client clients[] = {
      {"curl", "*/*", "application/json"},
      {"no Accept", nullptr, "application/json"},
      {"axios / Angular", "application/json, text/plain, */*",
       "application/json"},
      {"Python requests", "*/*", "application/json"},
      {"Chromium",
       "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
       "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
       "application/json"},
      {"Prometheus 2.42",
       "application/openmetrics-text;version=1.0.0,application/"
       "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
       "*/*;q=0.1",
       "application/openmetrics-text; version=1.0.0; charset=utf-8"},
      {"Prometheus, OpenMetrics off", "text/plain;version=0.0.4;q=1,*/*;q=0.1",
       "text/plain; version=0.0.4; charset=utf-8"},
      {"text preferred by q", "application/json;q=0.5, text/plain",
       "text/plain; version=0.0.4; charset=utf-8"},
      {"JSON excluded", "application/json;q=0, text/plain;q=0.2",
       "text/plain; version=0.0.4; charset=utf-8"},
  };
  for (const Client& client : clients) {
    SCOPED_TRACE(client.name);
    std::vector<std::string> args = {"-s", "-D", "-", "-o", "/dev/null"};
    if (client.accept != nullptr) {
      args.push_back("-H");
      args.push_back(absl::StrCat("Accept: ", client.accept));
    } else {
      args.push_back("-H");
      args.push_back("Accept:");  // curl then sends no Accept header
    }
    args.push_back(Server().http_url("/metrics"));
    CommandResult headers = Curl(args);
    EXPECT_THAT(
        headers.output,
        HasSubstr(absl::StrCat("Content-Type: ", client.content_type, "\r\n")));
    EXPECT_THAT(headers.output, HasSubstr("Vary: Accept\r\n"));
  }
  // Nothing acceptable: 406, not a body the client cannot read.
  EXPECT_EQ(
      Http({"-H", "Accept: image/png", Server().http_url("/metrics")}).first,
      406);
  // ?format= overrides Accept.
  CommandResult forced =
      Curl({"-s", "-D", "-", "-o", "/dev/null", "-H", "Accept: text/plain",
            Server().http_url("/metrics?format=json")});
  EXPECT_THAT(forced.output, HasSubstr("Content-Type: application/json"));
}

TEST_F(ServerClientsTest, OpenMetricsIsRealOpenMetrics) {
  auto [code, body] = Http({Server().http_url("/metrics?format=openmetrics")});
  ASSERT_EQ(code, 200);
  // Counter families are named without _total, their samples with it, and
  // the exposition ends with # EOF.
  EXPECT_THAT(body, HasSubstr("# TYPE latency_probes counter\n"));
  EXPECT_THAT(body, HasSubstr("\nlatency_probes_total{source=\""));
  EXPECT_THAT(body, HasSubstr(",target=\"lo\",kind=\"icmp\",result=\"ok\"}"));
  EXPECT_THAT(body, Not(HasSubstr("# TYPE latency_probes_total")));
  EXPECT_THAT(body, ::testing::EndsWith("\n# EOF\n"));
  // The text format stays as it was.
  auto [text_code, text] =
      Http({Server().http_url("/metrics?format=prometheus")});
  ASSERT_EQ(text_code, 200);
  EXPECT_THAT(text, HasSubstr("# TYPE latency_probes_total counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("# EOF")));
}

TEST_F(ServerClientsTest, HttpRoutesMirrorTheGrpcResponses) {
  auto [latency_code, latency] =
      Http({Server().http_url("/v1/latency?target=lo")});
  EXPECT_EQ(latency_code, 200);
  EXPECT_EQ(ParseJson<v1::GetLatencyResponse>(latency).target(), "lo");
  auto [targets_code, targets] = Http({Server().http_url("/v1/targets")});
  EXPECT_EQ(targets_code, 200);
  EXPECT_EQ(ParseJson<v1::ListTargetsResponse>(targets).targets(0).name(),
            "lo");
  auto [stats_code, stats] =
      Http({Server().http_url("/v1/targets/lo/stats?window=15m")});
  EXPECT_EQ(stats_code, 200);
  EXPECT_EQ(ParseJson<v1::GetTargetStatsResponse>(stats).window(), "15m");
  // Absent measurements are null, never 0 (the ICMP probe has no network RTT).
  EXPECT_THAT(targets, HasSubstr("\"last_network_rtt_ms\":null"));
  // Counts are JSON numbers, not the strings proto3 JSON makes of 64-bit
  // integers: a dashboard adding them up must not concatenate.
  EXPECT_THAT(stats, ::testing::ContainsRegex("\"sent\":[0-9]"));
  EXPECT_THAT(stats, ::testing::ContainsRegex("\"received\":[0-9]"));
  EXPECT_THAT(stats, ::testing::ContainsRegex("\"lost\":[0-9]"));
  EXPECT_THAT(targets,
              ::testing::ContainsRegex("\"consecutive_failures\":[0-9]"));
}

TEST_F(ServerClientsTest, HttpErrorsAreGoogleRpcStatusJson) {
  // The body grpc-gateway clients parse: {"code": <gRPC code>, "message",
  // "details": []}, with the HTTP status google.rpc's table gives the code.
  auto expect_error = [](std::pair<int, std::string> response, int http,
                         grpc::StatusCode code) {
    EXPECT_EQ(response.first, http) << response.second;
    EXPECT_THAT(response.second, HasSubstr("\"details\":[]"));
    auto error = ParseJson<v1::ErrorResponse>(response.second);
    EXPECT_EQ(error.code(), code) << response.second;
    EXPECT_FALSE(error.message().empty());
  };
  expect_error(Http({Server().http_url("/nope")}), 404, grpc::NOT_FOUND);
  expect_error(Http({Server().http_url("/v1/targets/nope/stats")}), 404,
               grpc::NOT_FOUND);
  expect_error(Http({Server().http_url("/v1/latency?target=nope")}), 404,
               grpc::NOT_FOUND);
  // A name that is not UTF-8 is echoed as U+FFFD: the JSON stays valid.
  expect_error(Http({Server().http_url("/v1/latency?target=%FF%C0x")}), 404,
               grpc::NOT_FOUND);
  expect_error(Http({Server().http_url("/v1/targets/lo/stats?window=3m")}), 400,
               grpc::INVALID_ARGUMENT);
  expect_error(Http({Server().http_url("/metrics?format=xml")}), 400,
               grpc::INVALID_ARGUMENT);
  // Echoed values that are not UTF-8 become U+FFFD in every error.
  expect_error(Http({Server().http_url("/metrics?format=%94")}), 400,
               grpc::INVALID_ARGUMENT);
  expect_error(Http({Server().http_url("/v1/targets/lo/stats?window=%FF")}),
               400, grpc::INVALID_ARGUMENT);
  expect_error(Http({"-X", "DELETE", Server().http_url("/metrics")}), 405,
               grpc::UNIMPLEMENTED);
  expect_error(
      Http({"-X", "POST", "-d", "x=1", Server().http_url("/v1/targets")}), 405,
      grpc::UNIMPLEMENTED);
  expect_error(Http({"-H", "Accept: image/png", Server().http_url("/metrics")}),
               406, grpc::INVALID_ARGUMENT);
  // Oversized body and URI.
  expect_error(Http({"-X", "POST", "--data-binary", std::string(64 * 1024, 'a'),
                     Server().http_url("/metrics")}),
               413, grpc::RESOURCE_EXHAUSTED);
  expect_error(
      Http({Server().http_url("/metrics?x=" + std::string(10000, 'a'))}), 414,
      grpc::RESOURCE_EXHAUSTED);
  CommandResult allow = Curl({"-s", "-o", "/dev/null", "-D", "-", "-X", "PUT",
                              "-d", "", Server().http_url("/metrics")});
  EXPECT_THAT(allow.output, HasSubstr("Allow: GET"));
}

TEST_F(ServerClientsTest, HealthAndReadiness) {
  EXPECT_EQ(Http({Server().http_url("/healthz")}).first, 200);
  EXPECT_EQ(Http({Server().http_url("/readyz")}).first, 200);
}

TEST_F(ServerClientsTest, GarbageOnTheHttpPortGets400AndServingGoesOn) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(Server().http_port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  const char garbage[] = "\x16\x03\x01 this is not HTTP\r\n\r\n";
  ASSERT_GT(write(fd, garbage, sizeof(garbage) - 1), 0);
  char reply[512] = {};
  ssize_t n = read(fd, reply, sizeof(reply) - 1);
  close(fd);
  EXPECT_GT(n, 0);
  EXPECT_THAT(std::string(reply), HasSubstr("400"));
  EXPECT_EQ(Http({Server().http_url("/metrics")}).first, 200);
}

// --- Prometheus
// ---------------------------------------------------------------

TEST_F(ServerClientsTest, ExpositionPassesPromtool) {
  CommandResult negotiated =
      Curl({"-s", "-H", "Accept: text/plain;version=0.0.4",
            Server().http_url("/metrics")});
  EXPECT_THAT(negotiated.output,
              HasSubstr("# TYPE latency_rtt_seconds histogram"));
  char path[] = "/tmp/latency-exposition-XXXXXX";
  close(mkstemp(path));
  CommandResult fetch =
      Curl({"-s", "-o", path, Server().http_url("/metrics?format=prometheus")});
  ASSERT_EQ(fetch.exit_code, 0);
  CommandResult lint =
      RunCommand({"sh", "-c", absl::StrCat("promtool check metrics < ", path)});
  unlink(path);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST_F(ServerClientsTest, RealPrometheusScrapesTheRttMetric) {
  char dir[] = "/tmp/latency-prometheus-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string config = absl::StrCat(dir, "/prometheus.yml");
  // Only defaults plus the target: what a user would write first.
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: latency\n"
                        << "    static_configs:\n      - targets: ['127.0.0.1:"
                        << Server().http_port << "']\n";
  int port = FreePort();
  std::optional<testing::Subprocess> prometheus = testing::Subprocess::Start(
      {"prometheus", "--config.file=" + config,
       absl::StrCat("--storage.tsdb.path=", dir, "/data"),
       absl::StrCat("--web.listen-address=127.0.0.1:", port)});
  ASSERT_TRUE(prometheus.has_value());
  std::string query =
      absl::StrCat("http://127.0.0.1:", port,
                   "/api/v1/"
                   "query?query=latency_rtt_seconds_count%7Btarget%3D%22lo%22%"
                   "2Ckind%3D%22icmp%22%7D");
  CommandResult result;
  bool found = WaitUntil(
      [&] {
        result = Curl({"-s", query});
        return absl::StrContains(result.output,
                                 "\"__name__\":\"latency_rtt_seconds_count\"");
      },
      absl::Seconds(60));
  EXPECT_TRUE(found) << result.output << "\n" << prometheus->Output();
  CommandResult up = Curl({"-s", absl::StrCat("http://127.0.0.1:", port,
                                              "/api/v1/query?query=up")});
  EXPECT_THAT(up.output, HasSubstr("\"1\"]"));
  prometheus->Signal(SIGTERM);
  prometheus->Wait(absl::Seconds(30));
  RunCommand({"rm", "-rf", dir});
}

// --- latencyctl
// ------------------------------------------------------------------

TEST_F(ServerClientsTest, LatencyctlAgainstTheRealServer) {
  std::string server = "--server=" + Server().grpc_address();
  CommandResult status =
      RunCommand({testing::CliBinaryPath(), "status", server});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("lo"));
  CommandResult targets = RunCommand(
      {testing::CliBinaryPath(), "targets", server, "--output=json"});
  EXPECT_EQ(targets.exit_code, 0) << targets.output;
  EXPECT_EQ(
      ParseJson<v1::ListTargetsResponse>(targets.output).targets(0).status(),
      "ok");
  CommandResult stats = RunCommand(
      {testing::CliBinaryPath(), "stats", "lo", "--window=1m", server});
  EXPECT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_THAT(stats.output, HasSubstr("icmp"));
  CommandResult unknown =
      RunCommand({testing::CliBinaryPath(), "stats", "nope", server});
  EXPECT_EQ(unknown.exit_code, 2);
  CommandResult watch = RunCommand(
      {testing::CliBinaryPath(), "watch", "lo", "--count=3", server});
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  CommandResult echo =
      RunCommand({testing::CliBinaryPath(), "echo", (*agent_)->address(),
                  "--count=2", "--interval=10ms"});
  EXPECT_EQ(echo.exit_code, 0) << echo.output;
}

}  // namespace
}  // namespace latency
