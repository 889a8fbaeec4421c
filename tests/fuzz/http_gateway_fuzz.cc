// Fuzzes the HTTP gateway end to end: two HttpGateways per process on
// 127.0.0.1:0 over a small ResultStore, one open and one requiring a bearer
// token. Each input becomes one HTTP/1.1 request on a fresh loopback
// connection:
//   line 1   METHOD, prefixed by '!' to use the gateway with auth
//   line 2   request target (path and query, sent as is)
//   lines    header lines, up to an empty line
//   rest     body
// Connection: close and the body's Content-Length are added (the input's
// own Content-Length, Transfer-Encoding and Connection headers are
// dropped), so no input makes the server wait for bytes that never come.
// (Debian's cpp-httplib is a shared library built without coverage, so
// raw-byte fuzzing of its parser would be blind anyway; this spends the
// runs on our routes, params, headers and auth.) Checks on the response:
//  - a well-formed HTTP/1.1 status line, Content-Length equal to the body
//    (Prometheus text is chunked: every chunk whole, a final empty one);
//  - never 500 (a handler threw) and no other 5xx but /readyz's 503;
//  - a JSON body parses: errors as ErrorResponse (strict) with the gRPC
//    code of the HTTP status and a message, 200s as one of the LatencyService
//    responses (strict, no unknown fields);
//  - a Prometheus body is lines of comments or `name[{labels}] value`;
//  - with auth and no valid token, nothing but 401 and the health
//    endpoints' text: no JSON data, no metrics;
//  - the server still answers afterwards (it did not wedge).
// NegotiateMetricsFormat is also checked against its contract directly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "common/utf8.h"
#include "server/api/http_gateway.h"
#include "server/api/http_status.h"
#include "server/api/metrics_format.h"
#include "tests/fuzz/fuzz_proto.h"
#include "tests/fuzz/fuzz_store.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

constexpr char kToken[] = "fuzz-token-0123";

struct Server {
  testing::FakeClock clock{int64_t{10} * 3600 * 1'000'000'000};
  std::shared_ptr<ResultStore> shared_store = std::make_shared<ResultStore>(
      clock, fuzz::FuzzTargets(), StatusThresholds());
  ResultStore& store = *shared_store;
  QueryHandler query{[this] {
    return StoreView{shared_store,
                     [](int) { return std::string("127.0.0.1"); }};
  }};
  std::atomic<bool> ready{true};
  std::unique_ptr<HttpGateway> open;
  std::unique_ptr<HttpGateway> with_auth;
};
Server* g_server = nullptr;

std::unique_ptr<HttpGateway> StartGateway(
    std::shared_ptr<BearerTokenAuth> auth) {
  HttpGatewayOptions options;
  options.listen = "127.0.0.1:0";
  options.front.workers = 2;
  options.front.request_timeout = absl::Seconds(2);
  options.auth = std::move(auth);
  HttpGatewayHooks hooks;
  hooks.gauges = [] { return ProberGauges{}; };
  hooks.counters_of = [](int) { return TargetCounters{}; };
  hooks.ready = [] { return g_server->ready.load(); };
  absl::StatusOr<std::unique_ptr<HttpGateway>> gateway =
      HttpGateway::Start(options, g_server->query, std::move(hooks));
  FUZZ_CHECK(gateway.ok(), gateway.status().ToString());
  return std::move(*gateway);
}

void StartServers() {
  g_server = new Server;
  // Samples of every kind and a few failures, so stats and Prometheus
  // have content.
  int64_t now = g_server->clock.MonotonicNanos();
  for (int i = 0; i < 60; ++i) {
    Sample sample;
    sample.target_index = i % 3;
    sample.kind = i % 2 == 0 ? ProbeKind::kIcmp : ProbeKind::kGrpc;
    sample.sequence = static_cast<uint64_t>(i);
    sample.completed_ns = now - int64_t{60 - i} * 1'000'000'000;
    sample.sent_ns = sample.scheduled_ns = sample.completed_ns - 1'000'000;
    sample.result = i % 7 == 6 ? SampleResult::kTimeout : SampleResult::kOk;
    if (sample.ok()) {
      sample.rtt_ns = 100'000 + i * 7'000;
      if (sample.kind == ProbeKind::kGrpc) sample.agent_time_ns = 20'000;
      sample.timestamp_source = TimestampSource::kKernel;
    } else {
      sample.error = "no reply within timeout";
    }
    g_server->store.Record(sample);
  }
  g_server->open = StartGateway(nullptr);

  const char* tmp = std::getenv("TMPDIR");
  std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp",
                                  "/http_gateway_fuzz_token.XXXXXX");
  int fd = mkstemp(path.data());
  FUZZ_CHECK(fd >= 0, path);
  FUZZ_CHECK(write(fd, kToken, sizeof(kToken) - 1) ==
                 static_cast<ssize_t>(sizeof(kToken) - 1),
             path);
  close(fd);
  absl::StatusOr<std::shared_ptr<BearerTokenAuth>> auth =
      BearerTokenAuth::FromFile(path);
  unlink(path.c_str());
  FUZZ_CHECK(auth.ok(), auth.status().ToString());
  g_server->with_auth = StartGateway(std::move(*auth));
}

// The request an input stands for.
struct Request {
  bool auth = false;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string body;

  std::string Header(absl::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (absl::EqualsIgnoreCase(key, name)) return value;
    }
    return "";
  }
  // Whether some Authorization header carries the token.
  bool HasToken() const {
    for (const auto& [key, value] : headers) {
      if (!absl::EqualsIgnoreCase(key, "authorization")) continue;
      if (absl::StrContains(value, kToken)) return true;
    }
    return false;
  }
  std::string Serialize() const {
    std::string out = absl::StrCat(method, " ", target, " HTTP/1.1\r\n");
    for (const auto& [key, value] : headers) {
      absl::StrAppend(&out, key, ": ", value, "\r\n");
    }
    absl::StrAppend(&out, "Connection: close\r\n");
    // Always, even 0: without it cpp-httplib waits for a POST's body
    // until its read timeout.
    absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
    absl::StrAppend(&out, "\r\n", body);
    return out;
  }
};

Request ParseInput(absl::string_view input) {
  auto line = [&input]() {
    size_t end = input.find('\n');
    absl::string_view text = input.substr(0, end);
    input.remove_prefix(end == absl::string_view::npos ? input.size()
                                                       : end + 1);
    absl::ConsumeSuffix(&text, "\r");
    return std::string(text);
  };
  Request request;
  request.method = line();
  request.auth = absl::StartsWith(request.method, "!");
  if (request.auth) request.method.erase(0, 1);
  request.target = line();
  while (!input.empty()) {
    std::string header = line();
    if (header.empty()) break;
    std::pair<std::string, std::string> field =
        absl::StrSplit(header, absl::MaxSplits(':', 1));
    std::string name = absl::AsciiStrToLower(field.first);
    if (name == "content-length" || name == "transfer-encoding" ||
        name == "connection") {
      continue;
    }
    request.headers.emplace_back(
        field.first,
        std::string(absl::StripLeadingAsciiWhitespace(field.second)));
  }
  request.body = std::string(input);
  return request;
}

// Whether the server takes `request` (as sent) for a HEAD: no body in the
// answer. cpp-httplib skips blanks before the method.
bool IsHead(absl::string_view request) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(request), "HEAD ");
}

// Whether `raw` holds a whole response: headers and Content-Length bytes
// (none for HEAD). cpp-httplib keeps the connection open after some errors
// (e.g. a 400 for a bad request line) despite Connection: close.
bool Complete(const std::string& raw, bool head) {
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return false;
  if (head) return true;
  std::string headers = absl::AsciiStrToLower(raw.substr(0, header_end));
  if (absl::StrContains(headers, "\r\ntransfer-encoding: chunked")) {
    return absl::EndsWith(raw, "\r\n0\r\n\r\n");
  }
  size_t at = headers.find("\r\ncontent-length: ");
  if (at == std::string::npos) return false;  // read to EOF
  size_t length = 0;
  at += 18;
  if (!absl::SimpleAtoi(headers.substr(at, headers.find('\r', at) - at),
                        &length)) {
    return false;
  }
  return raw.size() - header_end - 4 >= length;
}

// Sends `request` and returns the response: read until it is complete, the
// server closes, or it stays quiet for a second.
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's -timeout alarm interrupts system calls: retry on EINTR (a
  // connect then goes on in the background; wait until it is writable).
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    FUZZ_CHECK(errno == EINTR, absl::StrCat("connect: ", std::strerror(errno)));
    pollfd p{fd, POLLOUT, 0};
    while (poll(&p, 1, 2000) < 0 && errno == EINTR) {
    }
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    FUZZ_CHECK(error == 0, absl::StrCat("connect: ", std::strerror(error)));
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may answer and close early (e.g. 414)
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[8192];
  while (true) {
    // cpp-httplib leaves some bad requests unanswered until its keep-alive
    // timeout; that is allowed (the /healthz check below catches a wedged
    // server), so a quiet second ends the exchange.
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, 1000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready != 1) break;
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
    if (Complete(response, IsHead(request))) break;
  }
  // Reset instead of FIN: no TIME_WAIT pile-up over many thousand runs.
  linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(fd);
  return response;
}

bool ParsesAs(const std::string& body, google::protobuf::Message* message) {
  return fuzz::ParseJsonStrict(body, message).ok();
}

void CheckPrometheus(const std::string& body) {
  FUZZ_CHECK(!body.empty() && body.back() == '\n', "Prometheus body");
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# ")) continue;
    size_t name_end = line.find_first_of("{ ");
    FUZZ_CHECK(name_end != absl::string_view::npos && name_end > 0,
               std::string(line));
    for (char c : line.substr(0, name_end)) {
      FUZZ_CHECK(absl::ascii_isalnum(c) || c == '_' || c == ':',
                 std::string(line));
    }
    absl::string_view value = line.substr(line.rfind(' ') + 1);
    double number = 0;
    FUZZ_CHECK(absl::SimpleAtod(value, &number) || value == "NaN" ||
                   value == "+Inf" || value == "-Inf",
               std::string(line));
  }
}

struct Response {
  int status = 0;
  std::string content_type;
  std::string www_authenticate;
  bool ranged = false;   // Content-Range: a byte range of the body
  bool encoded = false;  // Content-Encoding: gzip, br, ...
  std::string body;
};

Response ParseResponse(const std::string& raw, const std::string& request) {
  std::string what = absl::StrCat(raw.substr(0, 300), "\n--- request:\n",
                                  request.substr(0, 300));
  Response response;
  FUZZ_CHECK(absl::StartsWith(raw, "HTTP/1.1 ") && raw.size() >= 12, what);
  FUZZ_CHECK(absl::SimpleAtoi(raw.substr(9, 3), &response.status), what);
  size_t header_end = raw.find("\r\n\r\n");
  FUZZ_CHECK(header_end != std::string::npos, what);
  size_t length = 0;
  bool has_length = false;
  bool chunked = false;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(raw).substr(0, header_end), "\r\n")) {
    std::pair<absl::string_view, absl::string_view> field =
        absl::StrSplit(line, absl::MaxSplits(": ", 1));
    std::string name = absl::AsciiStrToLower(field.first);
    if (name == "content-type")
      response.content_type = std::string(field.second);
    if (name == "www-authenticate")
      response.www_authenticate = std::string(field.second);
    if (name == "content-range") response.ranged = true;
    if (name == "content-encoding") response.encoded = true;
    if (name == "content-length") {
      has_length = absl::SimpleAtoi(field.second, &length);
    }
    if (name == "transfer-encoding") {
      chunked = absl::AsciiStrToLower(field.second) == "chunked";
    }
  }
  response.body = raw.substr(header_end + 4);
  bool head = IsHead(request);
  if (chunked && !head) {
    // Prometheus text streams as chunks: size in hex, CRLF, data, CRLF,
    // ending with a zero-size chunk. Every chunk must be whole.
    FUZZ_CHECK(!has_length, what);
    std::string body;
    absl::string_view rest = response.body;
    for (;;) {
      size_t line_end = rest.find("\r\n");
      FUZZ_CHECK(line_end != absl::string_view::npos, what);
      size_t size = 0;
      FUZZ_CHECK(absl::SimpleHexAtoi(rest.substr(0, line_end), &size), what);
      rest.remove_prefix(line_end + 2);
      if (size == 0) break;
      FUZZ_CHECK(rest.size() >= size + 2 && rest.substr(size, 2) == "\r\n",
                 what);
      body.append(rest.data(), size);
      rest.remove_prefix(size + 2);
    }
    response.body = std::move(body);
  }
  if (has_length && !head) {
    FUZZ_CHECK(response.body.size() == length, what);
  }
  return response;
}

void CheckResponse(const Request& request, const std::string& sent,
                   const std::string& raw) {
  // Nothing at all only when the server found no request line to answer.
  if (raw.empty()) return;
  Response response = ParseResponse(raw, sent);
  std::string what =
      absl::StrCat(raw.substr(0, 300), "\n--- request:\n", sent.substr(0, 300));
  FUZZ_CHECK(response.status != 500, what);
  FUZZ_CHECK(response.status < 500 || response.status == 503, what);
  bool data = response.status != 401 && response.status < 400;
  // Without the token only the health endpoints (bare text/plain: "ok",
  // "ready", "not ready ...") and the dashboard's own files (HTML, CSS,
  // JavaScript; no data: the page asks for the token) answer. A body that
  // cpp-httplib compressed (Accept-Encoding) or cut to a Range is judged by
  // its type; multipart/byteranges by each part's type.
  if (request.auth && !request.HasToken() && data) {
    auto open_type = [](absl::string_view type) {
      return type == "text/plain" || absl::StartsWith(type, "text/html") ||
             absl::StartsWith(type, "text/css") ||
             absl::StartsWith(type, "text/javascript");
    };
    std::vector<absl::string_view> types = {response.content_type};
    const bool multipart =
        absl::StartsWith(response.content_type, "multipart/byteranges");
    if (multipart) {
      types.clear();
      for (absl::string_view line : absl::StrSplit(response.body, "\r\n")) {
        if (absl::ConsumePrefix(&line, "Content-Type: ")) types.push_back(line);
      }
    }
    for (absl::string_view type : types) {
      FUZZ_CHECK(open_type(type), "data without a token: " + what);
    }
    if (response.content_type == "text/plain" && !response.encoded &&
        !response.ranged && response.status == 200) {
      FUZZ_CHECK(response.body.empty() || response.body == "ok\n" ||
                     absl::StartsWith(response.body, "ready\n") ||
                     absl::StartsWith(response.body, "not ready"),
                 "data without a token: " + what);
    }
  }
  if (response.status == 401) {
    FUZZ_CHECK(request.auth && !response.www_authenticate.empty(), what);
  }
  // cpp-httplib applies a Range header to any body, error bodies too, and
  // compresses when the request accepts it.
  if (response.status == 206 || response.ranged || response.encoded ||
      IsHead(sent)) {
    return;
  }
  const std::string& body = response.body;
  if (absl::StartsWith(response.content_type, "application/json")) {
    // Target names and errors from peers are echoed with stray bytes
    // replaced, so every JSON body is UTF-8.
    FUZZ_CHECK(IsValidUtf8(body), what);
    if (response.status >= 400) {
      v1::ErrorResponse error;
      FUZZ_CHECK(ParsesAs(body, &error), what);
      FUZZ_CHECK(HttpStatusFor(static_cast<absl::StatusCode>(error.code())) ==
                         response.status ||
                     StatusCodeForHttp(response.status) ==
                         static_cast<absl::StatusCode>(error.code()),
                 what);
      FUZZ_CHECK(!error.message().empty(), what);
    } else {
      v1::GetLatencyResponse latency;
      v1::ListTargetsResponse targets;
      v1::GetTargetStatsResponse stats;
      v1::GetHistoryResponse history;
      FUZZ_CHECK(ParsesAs(body, &latency) || ParsesAs(body, &targets) ||
                     ParsesAs(body, &stats) || ParsesAs(body, &history),
                 what);
    }
  } else if (absl::StartsWith(response.content_type, "text/event-stream")) {
    // /v1/watch: whole events (a sample's WatchResponse) and comments only.
    FUZZ_CHECK(response.status == 200, what);
    for (absl::string_view event : absl::StrSplit(body, "\n\n")) {
      if (event.empty() || event == ":") continue;
      FUZZ_CHECK(absl::ConsumePrefix(&event, "event: sample\ndata: "), what);
      v1::WatchResponse sample;
      FUZZ_CHECK(ParsesAs(std::string(event), &sample), what);
    }
  } else if (absl::StartsWith(response.content_type,
                              "text/plain; version=0.0.4")) {
    FUZZ_CHECK(response.status == 200, what);
    CheckPrometheus(body);
  } else if (absl::StartsWith(response.content_type,
                              "application/openmetrics-text")) {
    FUZZ_CHECK(response.status == 200, what);
    FUZZ_CHECK(absl::EndsWith(body, "\n# EOF\n"), what);
    CheckPrometheus(body.substr(0, body.size() - 6));
  }
}

// NegotiateMetricsFormat's contract, checked from outside: a format that
// the header gives q=0 (by its most specific range) is never chosen, and
// JSON is chosen whenever nothing is explicitly preferred to it.
void CheckNegotiation(const std::string& accept) {
  std::optional<MetricsFormat> format = NegotiateMetricsFormat(accept);
  if (absl::StripAsciiWhitespace(accept).empty()) {
    FUZZ_CHECK(format == MetricsFormat::kJson, accept);
  }
  if (accept == "*/*" || absl::StartsWith(accept, "application/json,")) {
    FUZZ_CHECK(format == MetricsFormat::kJson, accept);
  }
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  latency::StartServers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using latency::g_server;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  latency::Request request = latency::ParseInput(input);
  g_server->ready = size % 2 == 0;
  std::string sent = request.Serialize();
  latency::HttpGateway& gateway =
      request.auth ? *g_server->with_auth : *g_server->open;
  latency::CheckResponse(request, sent,
                         latency::Exchange(gateway.port(), sent));

  latency::CheckNegotiation(request.Header("Accept"));

  // Still serving? (Every 16th run: it doubles the cost.)
  static int runs = 0;
  if (++runs % 16 != 0) return 0;
  std::string health = latency::Exchange(
      gateway.port(), "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
  FUZZ_CHECK(absl::StartsWith(health, "HTTP/1.1 200 "), health);
  return 0;
}
