// HttpGateway on a real loopback socket (port 0) over a store of known
// samples: every route, content negotiation on /metrics, readiness, the
// error mapping (JSON ErrorResponse with the HTTP status) and bearer auth.
#include "server/api/http_gateway.h"

#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/api/api_test_store.h"
#include "tests/testing/raw_tcp.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace latency {
namespace {

using ::latency::testing::ApiTarget;
using ::latency::testing::ApiTestStore;
using ::latency::testing::IsOk;
using ::latency::testing::kApiMs;
using ::latency::testing::RawTcp;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(10);

class HttpGatewayTest : public ::testing::Test {
 protected:
  HttpGatewayTest()
      : data_({ApiTarget("first", "10.0.0.1"),
               ApiTarget("agent-2.v6:x_y", "10.0.0.2", true, false)}),
        query_([this] { return data_.View(); }) {
    data_.Ok(0, ProbeKind::kIcmp, 3 * kApiMs);
    data_.Ok(0, ProbeKind::kGrpc, 5 * kApiMs, kApiMs);
    data_.Ok(1, ProbeKind::kIcmp, 1 * kApiMs);
  }

  void Start(std::shared_ptr<BearerTokenAuth> auth = nullptr) {
    HttpGatewayOptions options;
    options.listen = "127.0.0.1:0";
    options.front.workers = 2;
    options.auth = std::move(auth);
    HttpGatewayHooks hooks;
    hooks.gauges = [] {
      ProberGauges g;
      g.icmp_available = true;
      return g;
    };
    hooks.counters_of = [](int) { return TargetCounters(); };
    hooks.ready = [this] { return ready_.load(); };
    auto gateway = HttpGateway::Start(options, query_, std::move(hooks));
    ASSERT_THAT(gateway, IsOk());
    gateway_ = std::move(*gateway);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", gateway_->port());
    client_->set_read_timeout(30, 0);
  }

  httplib::Result Get(const std::string& path,
                      const httplib::Headers& headers = {}) {
    return client_->Get(path, headers);
  }

  ApiTestStore data_;
  QueryHandler query_;
  std::atomic<bool> ready_{true};
  std::unique_ptr<HttpGateway> gateway_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpGatewayTest, MetricsServesTheOriginalJsonContract) {
  ASSERT_NO_FATAL_FAILURE(Start());
  httplib::Result r = Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_THAT(r->body, StartsWith("{\"latency_ms\":3,\"status\":\"ok\","));
  EXPECT_THAT(r->body, HasSubstr("\"grpc_latency_ms\":5"));
  EXPECT_THAT(r->body, HasSubstr("\"grpc_network_latency_ms\":4"));
  // The same message /v1/latency serves.
  httplib::Result v1 = Get("/v1/latency");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->body, r->body);
}

// GET /v1/watch: server-sent events, one `sample` event per matching probe
// (the Watch stream's JSON) as it completes; the stream ends when the store
// closes its subscriptions (a reload), and its slot is freed.
TEST_F(HttpGatewayTest, WatchStreamsSamplesAsServerSentEvents) {
  ASSERT_NO_FATAL_FAILURE(Start());
  RawTcp client(gateway_->port());
  ASSERT_TRUE(client.ok());
  client.Send(
      "GET /v1/watch?target=first&kind=icmp HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string headers = client.ReadUntil("\r\n\r\n", 1, kWait);
  EXPECT_THAT(headers, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(headers, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(headers, HasSubstr("Connection: close"));
  EXPECT_THAT(headers, Not(HasSubstr("Content-Length")));
  // The stream is subscribed once its headers are out.
  data_.Ok(1, ProbeKind::kIcmp, 2 * kApiMs);  // another target: filtered
  data_.Ok(0, ProbeKind::kGrpc, 6 * kApiMs);  // another kind: filtered
  data_.Ok(0, ProbeKind::kIcmp, 7 * kApiMs);
  const std::string event = client.ReadUntil("\n\n", 1, kWait);
  EXPECT_THAT(
      event,
      StartsWith("event: sample\ndata: {\"sample\":{\"target\":\"first\","
                 "\"kind\":\"PROBE_KIND_ICMP\""));
  EXPECT_THAT(event, HasSubstr("\"rtt_ms\":7"));
  data_.store().CloseSubscriptions();
  EXPECT_EQ(client.ReadUntilClose(kWait), "");
}

TEST_F(HttpGatewayTest, WatchRefusesBadFiltersAndTooManyStreams) {
  ASSERT_NO_FATAL_FAILURE(Start());
  httplib::Result unknown = Get("/v1/watch?target=nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  httplib::Result kind = Get("/v1/watch?kind=tcp");
  ASSERT_TRUE(kind);
  EXPECT_EQ(kind->status, 400);
  // Eight per client address by default; the ninth is refused (429).
  std::vector<std::unique_ptr<RawTcp>> open;
  for (int i = 0; i < 8; ++i) {
    open.push_back(std::make_unique<RawTcp>(gateway_->port()));
    open.back()->Send("GET /v1/watch HTTP/1.1\r\nHost: t\r\n\r\n");
    ASSERT_THAT(open.back()->ReadUntil("\r\n\r\n", 1, kWait),
                StartsWith("HTTP/1.1 200"));
  }
  httplib::Result ninth = Get("/v1/watch");
  ASSERT_TRUE(ninth);
  EXPECT_EQ(ninth->status, 429);
  EXPECT_THAT(ninth->body, HasSubstr("per client"));
  // A client that leaves frees its slot.
  open.pop_back();
  bool admitted = false;
  for (int i = 0; i < 100 && !admitted; ++i) {
    RawTcp again(gateway_->port());
    again.Send("GET /v1/watch HTTP/1.1\r\nHost: t\r\n\r\n");
    admitted =
        absl::StartsWith(again.ReadUntil("\r\n\r\n", 1, kWait), "HTTP/1.1 200");
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(admitted);
}

TEST_F(HttpGatewayTest, MetricsNegotiatesPrometheusTextAndOpenMetrics) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // Prometheus with OpenMetrics off prefers text; with it on, OpenMetrics.
  struct Case {
    const char* accept;
    const char* content_type;
  };
  for (const Case& c :
       {Case{"text/plain;version=0.0.4;q=0.3,*/*;q=0.1",
             "text/plain; version=0.0.4; charset=utf-8"},
        Case{"application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
             "application/openmetrics-text; version=1.0.0; charset=utf-8"}}) {
    SCOPED_TRACE(c.accept);
    httplib::Result r = Get("/metrics", {{"Accept", c.accept}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), c.content_type);
    EXPECT_EQ(r->get_header_value("Vary"), "Accept");
    EXPECT_THAT(r->body, HasSubstr("# TYPE latency_rtt_seconds histogram"));
    EXPECT_THAT(r->body, HasSubstr("latency_last_rtt_seconds{target=\"first\","
                                   "kind=\"icmp\"} 0.003\n"));
  }
  httplib::Result forced = Get("/metrics?format=prometheus");
  ASSERT_TRUE(forced);
  EXPECT_THAT(forced->body, HasSubstr("latency_icmp_available 1\n"));
  // ?format=json wins over the Accept header.
  httplib::Result json =
      Get("/metrics?format=json", {{"Accept", "text/plain"}});
  ASSERT_TRUE(json);
  EXPECT_THAT(json->body, StartsWith("{\"latency_ms\":"));
  httplib::Result bad = Get("/metrics?format=xml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body,
            "{\"code\":3,\"message\":\"format: want json, prometheus or "
            "openmetrics, got 'xml'\",\"details\":[]}");
}

TEST_F(HttpGatewayTest, TargetsAndStatsRoutes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  httplib::Result list = Get("/v1/targets");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_THAT(list->body, StartsWith("{\"targets\":[{\"name\":\"first\","));
  EXPECT_THAT(list->body, HasSubstr("\"name\":\"agent-2.v6:x_y\""));

  // A name with every kind of character a name may have, ":" encoded.
  httplib::Result stats = Get("/v1/targets/agent-2.v6%3Ax_y/stats?window=5m");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 200) << stats->body;
  EXPECT_THAT(stats->body, HasSubstr("\"window\":\"5m\""));
  EXPECT_THAT(stats->body, HasSubstr("\"name\":\"agent-2.v6:x_y\""));

  httplib::Result named = Get("/v1/latency?target=agent-2.v6%3Ax_y");
  ASSERT_TRUE(named);
  EXPECT_THAT(named->body, StartsWith("{\"latency_ms\":1,"));
}

TEST_F(HttpGatewayTest, ErrorsAreJsonWithTheMatchingStatus) {
  ASSERT_NO_FATAL_FAILURE(Start());
  struct Case {
    std::string path;
    int status;
    std::string body;
  };
  for (const Case& c : {
           Case{"/v1/latency?target=nope", 404,
                "{\"code\":5,\"message\":\"unknown target "
                "'nope'\",\"details\":[]}"},
           Case{"/v1/targets/nope/stats", 404,
                "{\"code\":5,\"message\":\"unknown target "
                "'nope'\",\"details\":[]}"},
           Case{"/v1/targets/first/stats?window=2m", 400,
                "{\"code\":3,\"message\":\"window: window \\\"2m\\\" is "
                "not one of 1m, 5m, 15m, 1h\",\"details\":[]}"},
           Case{"/no/such/route", 404,
                "{\"code\":5,\"message\":\"no such route\",\"details\":[]}"},
       }) {
    SCOPED_TRACE(c.path);
    httplib::Result r = Get(c.path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(r->body, c.body);
  }

  httplib::Result post = client_->Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  EXPECT_EQ(post->body,
            "{\"code\":12,\"message\":\"method not allowed; use GET\","
            "\"details\":[]}");

  // Bodies over 4 KiB: 413; request URIs over 8 KiB: 414.
  httplib::Result big =
      client_->Post("/metrics", std::string(5000, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_THAT(big->body, HasSubstr("\"code\":8,"));  // RESOURCE_EXHAUSTED
  httplib::Result long_uri =
      Get("/v1/latency?target=" + std::string(9000, 'a'));
  ASSERT_TRUE(long_uri);
  EXPECT_EQ(long_uri->status, 414);
  EXPECT_THAT(long_uri->body, HasSubstr("\"code\":8,"));
}

// README: /readyz is 200 while probing, 503 otherwise; /healthz is 200
// while the process serves, probing or not.
TEST_F(HttpGatewayTest, ReadyzFollowsTheProbersHealthzDoesNot) {
  ASSERT_NO_FATAL_FAILURE(Start());
  httplib::Result ready = Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  ready_ = false;
  httplib::Result not_ready = Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "not ready: probers not running\n");
  httplib::Result health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
}

TEST_F(HttpGatewayTest, BearerTokenGuardsEveryRouteButHealth) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/http_gateway_test.token";
  ASSERT_TRUE(testing::WriteFile(path, "s3cret-token\n"));
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  auto auth = BearerTokenAuth::FromFile(path, "--auth_token_file");
  ASSERT_THAT(auth, IsOk());
  ASSERT_NO_FATAL_FAILURE(Start(*auth));

  for (const char* route : {"/metrics", "/v1/targets", "/no/such/route"}) {
    SCOPED_TRACE(route);
    httplib::Result missing = Get(route);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 401);
    EXPECT_EQ(missing->get_header_value("WWW-Authenticate"),
              "Bearer realm=\"latency-server\"");
    EXPECT_THAT(missing->body, HasSubstr("missing bearer token"));
    httplib::Result wrong =
        Get(route, {{"Authorization", "Bearer not-the-token"}});
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
    EXPECT_THAT(wrong->body, HasSubstr("invalid bearer token"));
  }
  httplib::Result ok =
      Get("/metrics", {{"Authorization", "Bearer s3cret-token"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  // The dashboard's static files hold no data: open, so the page can load
  // and ask for the token.
  for (const char* route :
       {"/healthz", "/readyz", "/", "/assets/app.js", "/assets/uPlot.esm.js"}) {
    httplib::Result open = Get(route);
    ASSERT_TRUE(open);
    EXPECT_EQ(open->status, 200) << route;
  }
  httplib::Result missing_asset = Get("/assets/nope.js");
  ASSERT_TRUE(missing_asset);
  EXPECT_EQ(missing_asset->status, 404);
}

TEST_F(HttpGatewayTest, DashboardFilesHaveCspTypesAndEtags) {
  ASSERT_NO_FATAL_FAILURE(Start());
  httplib::Result page = Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"),
              HasSubstr("default-src 'self'"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"),
              Not(HasSubstr("unsafe-inline")));
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_THAT(page->body, HasSubstr("src=\"/assets/app.js\""));
  EXPECT_THAT(page->body, Not(HasSubstr("<script>")));  // no inline script
  const std::string etag = page->get_header_value("ETag");
  ASSERT_EQ(etag.size(), 22u) << etag;
  httplib::Result again = Get("/", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_EQ(again->body, "");
  httplib::Result stale = Get("/", {{"If-None-Match", "\"other\""}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200);

  for (const auto& [route, type] :
       std::vector<std::pair<std::string, std::string>>{
           {"/assets/app.js", "text/javascript; charset=utf-8"},
           {"/assets/shape.js", "text/javascript; charset=utf-8"},
           {"/assets/uPlot.esm.js", "text/javascript; charset=utf-8"},
           {"/assets/app.css", "text/css; charset=utf-8"},
           {"/assets/uPlot.min.css", "text/css; charset=utf-8"}}) {
    SCOPED_TRACE(route);
    httplib::Result asset = Get(route);
    ASSERT_TRUE(asset);
    EXPECT_EQ(asset->status, 200);
    EXPECT_EQ(asset->get_header_value("Content-Type"), type);
    EXPECT_FALSE(asset->get_header_value("ETag").empty());
    EXPECT_GT(asset->body.size(), 500u);
  }
  httplib::Result traversal = Get("/assets/..%2Fapp.js");
  ASSERT_TRUE(traversal);
  EXPECT_EQ(traversal->status, 404);
}

// Slow-loris: clients that send a header byte every 300 ms never trip a
// per-read timeout. Before HttpFront, each held one of httplib's worker
// threads for as long as it trickled, so a few dozen of them stalled every
// route, /healthz and Prometheus scrapes included.
TEST_F(HttpGatewayTest, TricklingClientsDoNotStallHealthOrMetrics) {
  Start();
  constexpr int kTricklers = 40;
  std::vector<std::unique_ptr<::latency::testing::RawTcp>> tricklers;
  for (int i = 0; i < kTricklers; ++i) {
    tricklers.push_back(
        std::make_unique<::latency::testing::RawTcp>(gateway_->port()));
    ASSERT_TRUE(tricklers.back()->ok());
    ASSERT_TRUE(tricklers.back()->Send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& client : tricklers) client->Send("X");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  httplib::Client probe("127.0.0.1", gateway_->port());
  probe.set_connection_timeout(3, 0);
  probe.set_read_timeout(3, 0);
  httplib::Result health = probe.Get("/healthz");
  httplib::Result metrics = probe.Get("/metrics");
  stop = true;
  trickle.join();
  ASSERT_TRUE(health) << "no /healthz answer within 3 s";
  EXPECT_EQ(health->status, 200);
  ASSERT_TRUE(metrics) << "no /metrics answer within 3 s";
  EXPECT_EQ(metrics->status, 200);
}

// Past a few hundred targets the Prometheus text is made in parts as the
// client reads (it is hundreds of MB at 100k targets) and sent in chunks,
// gzipped for a client that accepts it as Prometheus does; what arrives is
// exactly the rendered text, and the connection serves the next request.
class HttpGatewayLargeTest : public ::testing::Test {
 protected:
  HttpGatewayLargeTest() : data_(Targets()) {
    for (int i = 0; i < 400; ++i) {
      data_.Ok(i, ProbeKind::kIcmp, (i + 1) * kApiMs);
    }
  }
  static std::vector<TargetSpec> Targets() {
    std::vector<TargetSpec> targets;
    for (int i = 0; i < 400; ++i) {
      targets.push_back(ApiTarget(absl::StrCat("t", i), "10.0.0.1"));
    }
    return targets;
  }
  void SetUp() override {
    HttpGatewayOptions options;
    options.listen = "127.0.0.1:0";
    hooks_.gauges = [] { return ProberGauges(); };
    hooks_.counters_of = [](int) { return TargetCounters(); };
    hooks_.ready = [] { return true; };
    auto gateway = HttpGateway::Start(options, query_, hooks_);
    ASSERT_THAT(gateway, IsOk());
    gateway_ = std::move(*gateway);
  }
  std::string Expected(const std::string& format) {
    return RenderPrometheus(data_.store(), ProberGauges(), hooks_.counters_of,
                            format == "openmetrics"
                                ? ExpositionFormat::kOpenMetrics
                                : ExpositionFormat::kPrometheusText);
  }

  ApiTestStore data_;
  QueryHandler query_{[this] { return data_.View(); }};
  HttpGatewayHooks hooks_;
  std::unique_ptr<HttpGateway> gateway_;
};

TEST_F(HttpGatewayLargeTest, ExpositionArrivesWholeInChunksPlainOrGzipped) {
  httplib::Client client("127.0.0.1", gateway_->port());
  client.set_read_timeout(30, 0);
  for (const char* format : {"prometheus", "openmetrics"}) {
    for (const char* encoding : {"gzip", "identity"}) {
      // httplib's client inflates a gzip body itself.
      httplib::Result res = client.Get(absl::StrCat("/metrics?format=", format),
                                       {{"Accept-Encoding", encoding}});
      ASSERT_TRUE(res) << format << " " << encoding;
      EXPECT_EQ(res->status, 200);
      EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
      EXPECT_FALSE(res->has_header("Content-Length"));
      EXPECT_EQ(res->get_header_value("Content-Encoding"),
                std::string(encoding) == "gzip" ? "gzip" : "");
      const std::string expected = Expected(format);
      EXPECT_GT(expected.size(), 500'000u);
      EXPECT_EQ(res->body, expected) << format << " " << encoding;
    }
  }
  EXPECT_EQ(client.Get("/healthz")->status, 200) << "connection not reusable";
}

// HEAD gets the head alone; HTTP/1.0, which has no chunks, the whole text
// with its length.
TEST_F(HttpGatewayLargeTest, HeadAndHttp10GetWhatTheyCanRead) {
  {
    RawTcp client(gateway_->port());
    client.Send(
        "HEAD /metrics?format=prometheus HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    const std::string answer =
        client.ReadUntil("HTTP/1.1 200", 2, absl::Seconds(10));
    EXPECT_THAT(answer, HasSubstr("Transfer-Encoding: chunked\r\n"));
    const size_t second = answer.find("HTTP/1.1 200", 1);
    ASSERT_NE(second, std::string::npos) << answer;
    EXPECT_TRUE(absl::EndsWith(answer.substr(0, second), "\r\n\r\n"))
        << "HEAD got a body: " << answer.substr(0, 300);
  }
  RawTcp client(gateway_->port());
  client.Send("GET /metrics?format=prometheus HTTP/1.0\r\nHost: t\r\n\r\n");
  const std::string answer = client.ReadUntilClose(absl::Seconds(30));
  const std::string expected = Expected("prometheus");
  EXPECT_THAT(answer, HasSubstr(absl::StrCat(
                          "Content-Length: ", expected.size(), "\r\n")));
  EXPECT_NE(answer.find(expected), std::string::npos);
}

TEST(HttpGatewayStartTest, BadListenAddressNamesTheFlag) {
  ApiTestStore data({ApiTarget("t", "10.0.0.1")});
  QueryHandler query([&data] { return data.View(); });
  HttpGatewayOptions options;
  options.listen = "127.0.0.1";  // no port
  auto gateway = HttpGateway::Start(options, query, HttpGatewayHooks());
  EXPECT_EQ(gateway.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(gateway.status().message(), HasSubstr("--http_listen"));
}

}  // namespace
}  // namespace latency
