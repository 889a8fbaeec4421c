#include "server/api/http_gateway.h"

#include <fcntl.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <regex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/utf8.h"
#include "server/api/chunked_body.h"
#include "server/api/http_status.h"
#include "server/api/metrics_format.h"
#include "server/web/web_assets.h"

namespace latency {

// httplib's router and request parser, fed one complete request at a time
// by HttpFront instead of reading sockets itself (its own loop ties a
// thread to every connection; see HttpFront).
class HttpRoutes final : public httplib::Server {
 public:
  // httplib stops streaming a chunked body (Prometheus text) once it thinks
  // its listening socket is closed; it has none here, so it gets a stand-in
  // that is never read or written.
  HttpRoutes() : stand_in_(open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    svr_sock_ = stand_in_;
  }
  ~HttpRoutes() override {
    svr_sock_ = INVALID_SOCKET;
    if (stand_in_ >= 0) close(stand_in_);
  }

  // Answers the request in `stream`; true when the client asked to close.
  bool Serve(httplib::Stream& stream, bool close_connection) {
    bool client_closes = false;
    process_request(stream, close_connection, client_closes, {});
    return client_closes;
  }

 private:
  const int stand_in_;
};

namespace {

// The event stream a /v1/watch handler started on this worker thread, for
// Answer to hand to HttpFront with the reply's headers.
thread_local std::shared_ptr<HttpStream>* current_stream = nullptr;
// Likewise a pulled body (a large exposition) a handler made.
thread_local std::shared_ptr<ChunkedTextBody>* current_body = nullptr;

// One buffered request in, the response out to a string.
class ExchangeStream final : public httplib::Stream {
 public:
  ExchangeStream(const HttpExchange& exchange, HttpReply* out)
      : exchange_(exchange), out_(out) {}

  bool is_readable() const override { return read_ < exchange_.bytes.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, exchange_.bytes.size() - read_);
    std::memcpy(ptr, exchange_.bytes.data() + read_, n);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    // Past kPieceBytes the response goes on in further pieces (HttpReply).
    std::string* piece = out_->more.empty() ? &out_->bytes : &out_->more.back();
    if (piece->size() >= kPieceBytes) {
      piece = &out_->more.emplace_back();
      piece->reserve(kPieceBytes + size);
    }
    piece->append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = exchange_.peer_ip;
    port = exchange_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = exchange_.local_ip;
    port = exchange_.local_port;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  static constexpr size_t kPieceBytes = 256 * 1024;
  const HttpExchange& exchange_;
  HttpReply* out_;
  size_t read_ = 0;
};

// The status code of a serialized response ("HTTP/1.1 400 ...").
int StatusOf(absl::string_view response) {
  int status = 0;
  if (response.size() >= 12) {
    (void)absl::SimpleAtoi(response.substr(9, 3), &status);
  }
  return status;
}

constexpr char kJson[] = "application/json";
// Above this many targets the Prometheus text (~3.3 KB per target) is
// streamed in chunks rather than rendered into one string first.
constexpr size_t kStreamedExpositionTargets = 300;
constexpr char kPrometheusText[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kOpenMetrics[] =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// The google.rpc.Status-shaped body. `message` may echo what the client sent
// (a format, a target): JSON must stay UTF-8 whatever the bytes were.
void SendError(httplib::Response& res, int http_status, absl::StatusCode code,
               absl::string_view message) {
  v1::ErrorResponse error;
  error.set_code(static_cast<int>(code));
  error.set_message(ToValidUtf8(message));
  res.status = http_status;
  res.set_content(ToJson(error), kJson);
}

// An error raised by the HTTP layer itself (no query ran).
void SendError(httplib::Response& res, int http_status,
               absl::string_view message) {
  SendError(res, http_status, StatusCodeForHttp(http_status), message);
}

template <typename Response>
void SendResult(httplib::Response& res,
                const absl::StatusOr<Response>& result) {
  if (!result.ok()) {
    const absl::StatusCode code = result.status().code();
    SendError(res, HttpStatusFor(code), code, result.status().message());
    return;
  }
  res.status = 200;
  res.set_content(ToJson(*result), kJson);
}

// Reads an optional unsigned query parameter into `request` with `set`;
// false after answering 400 when it is not a number.
template <typename Request>
bool ParseUint32Param(const httplib::Request& req, const char* name,
                      Request* request, httplib::Response& res,
                      void (Request::*set)(uint32_t)) {
  if (!req.has_param(name)) return true;
  const std::string text = req.get_param_value(name);
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    SendError(
        res, 400,
        absl::StrCat(name, ": want a non-negative integer, got '", text, "'"));
    return false;
  }
  (request->*set)(value);
  return true;
}

// GET .../history parameters: kind (icmp, grpc), start and end (RFC 3339),
// step (a duration: 60s, 5m, 1h). Unknown values are errors, not defaults.
absl::StatusOr<v1::GetHistoryRequest> ParseHistoryRequest(
    const httplib::Request& req) {
  v1::GetHistoryRequest request;
  const std::string kind = req.get_param_value("kind");
  if (kind == "icmp") {
    request.set_kind(v1::PROBE_KIND_ICMP);
  } else if (kind == "grpc") {
    request.set_kind(v1::PROBE_KIND_GRPC);
  } else if (!kind.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: want icmp or grpc, got '", ToValidUtf8(kind), "'"));
  }
  for (const char* name : {"start", "end"}) {
    if (!req.has_param(name)) continue;
    const std::string text = req.get_param_value(name);
    absl::Time t;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": want an RFC 3339 time (2026-12-04T10:00:00Z), got '",
          ToValidUtf8(text), "'"));
    }
    google::protobuf::Timestamp& out = std::string_view(name) == "start"
                                           ? *request.mutable_start()
                                           : *request.mutable_end();
    out.set_seconds(absl::ToUnixSeconds(t));
    out.set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(out.seconds()))));
  }
  if (req.has_param("step")) {
    const std::string text = req.get_param_value("step");
    absl::Duration step;
    if (!absl::ParseDuration(text, &step) || step <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("step: want a positive duration (60s, 5m, 1h), got '",
                       ToValidUtf8(text), "'"));
    }
    request.mutable_step()->set_seconds(absl::ToInt64Seconds(step));
  }
  return request;
}

std::string DefaultReason(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "no such route";
    case 405:
      return "method not allowed";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 406:
      return "not acceptable";
    default:
      return absl::StrCat("HTTP ", status);
  }
}

// Splits "host:port" / "[v6]:port".
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    const std::string& listen) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen: want HOST:PORT, got '", listen, "'"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, port);
}

// Copies a dashboard answer (server/web) into the response.
void SendWebAsset(const httplib::Request& req, httplib::Response& res,
                  absl::string_view name) {
  WebResponse web = ServeWebAsset(name, req.get_header_value("If-None-Match"));
  for (const auto& [header, value] : web.headers) {
    if (header != "Content-Type") res.set_header(header, value);
  }
  if (web.status == 404) {
    SendError(res, 404, "no such dashboard file");
    return;
  }
  res.status = web.status;
  if (web.status == 200) {
    res.set_content(web.body.data(), web.body.size(),
                    web.headers["Content-Type"]);
  }
}

}  // namespace

HttpGateway::HttpGateway(const HttpGatewayOptions& options,
                         const QueryHandler& query, HttpGatewayHooks hooks)
    : query_(query),
      hooks_(std::move(hooks)),
      tls_(options.tls),
      auth_(options.auth),
      max_body_bytes_(options.max_body_bytes),
      watch_slots_(std::make_shared<WatchSlots>(
          options.max_watch_streams, options.max_watch_streams_per_client,
          "watch streams")),
      routes_(std::make_unique<HttpRoutes>()) {}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const HttpGatewayOptions& options, const QueryHandler& query,
    HttpGatewayHooks hooks) {
  absl::StatusOr<std::pair<std::string, int>> address =
      SplitHostPort(options.listen);
  if (!address.ok()) return address.status();
  std::unique_ptr<HttpGateway> gateway(
      new HttpGateway(options, query, std::move(hooks)));
  HttpFrontOptions front = options.front;
  front.max_body_bytes = options.max_body_bytes;
  if (options.tls != nullptr) {
    gateway->ssl_ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (gateway->ssl_ctx_ == nullptr ||
        !ConfigureServerSslContext(gateway->ssl_ctx_.get(),
                                   options.tls.get())) {
      return absl::InvalidArgumentError(
          "--http_tls_cert: cannot set up TLS with this certificate and key");
    }
    front.tls = gateway->ssl_ctx_.get();
  }
  gateway->InstallRoutes();
  auto [host, port] = *address;
  HttpGateway* raw = gateway.get();
  absl::StatusOr<std::unique_ptr<HttpFront>> started = HttpFront::Start(
      host, port, front,
      [raw](const HttpExchange& exchange) { return raw->Answer(exchange); },
      // Health checks never wait behind busy workers.
      [](absl::string_view request_line) {
        return absl::StartsWith(request_line, "GET /healthz ") ||
               absl::StartsWith(request_line, "GET /readyz ");
      },
      [](int http_status, absl::string_view message) {
        v1::ErrorResponse error;
        error.set_code(static_cast<int>(StatusCodeForHttp(http_status)));
        error.set_message(ToValidUtf8(message));
        return ToJson(error);
      });
  if (!started.ok()) {
    return absl::Status(
        started.status().code(),
        absl::StrCat("--http_listen: ", started.status().message()));
  }
  gateway->front_ = std::move(*started);
  Logger("http")->info("HTTP gateway on port {} (listen {}, {}{})",
                       gateway->port(), options.listen,
                       options.tls ? "HTTPS" : "HTTP",
                       options.auth ? ", bearer token required" : "");
  return gateway;
}

HttpGateway::~HttpGateway() { Shutdown(); }

void HttpGateway::Shutdown() {
  if (front_ != nullptr) front_->Shutdown();
}

int HttpGateway::port() const { return front_->port(); }

HttpReply HttpGateway::Answer(const HttpExchange& exchange) {
  HttpReply reply;
  ExchangeStream stream(exchange, &reply);
  std::shared_ptr<HttpStream> events;
  std::shared_ptr<ChunkedTextBody> body;
  current_stream = &events;
  current_body = &body;
  const bool client_closes = routes_->Serve(stream, exchange.close_after);
  current_stream = nullptr;
  current_body = nullptr;
  if (body != nullptr) {
    // httplib wrote the head for an empty body (perhaps gzipped: drop it);
    // the body's own framing replaces the length and coding it named.
    static const std::regex kFraming(
        "\r\n(Content-Length|Content-Encoding|Transfer-Encoding): [^\r]*",
        std::regex::icase);
    reply.bytes.resize(reply.bytes.find("\r\n\r\n"));
    reply.bytes = std::regex_replace(reply.bytes, kFraming, "");
    absl::StrAppend(&reply.bytes, "\r\nTransfer-Encoding: chunked",
                    body->gzip() ? "\r\nContent-Encoding: gzip" : "",
                    "\r\nVary: Accept-Encoding\r\n\r\n");
    reply.close = client_closes || exchange.close_after;
    // A HEAD request gets the head alone.
    if (!absl::StartsWith(exchange.bytes, "HEAD "))
      reply.body = std::move(body);
    return reply;
  }
  if (events != nullptr) {
    // An event stream: its body is open-ended and ends with the
    // connection, so the headers carry no length.
    static const std::regex kLength("\r\nContent-Length: [0-9]+",
                                    std::regex::icase);
    static const std::regex kKeepAlive("\r\n(Connection|Keep-Alive): [^\r]*",
                                       std::regex::icase);
    reply.bytes = std::regex_replace(reply.bytes, kLength, "");
    reply.bytes = std::regex_replace(reply.bytes, kKeepAlive, "");
    const size_t status_end = reply.bytes.find("\r\n");
    if (status_end != std::string::npos) {
      reply.bytes.insert(status_end, "\r\nConnection: close");
    }
    reply.stream = std::move(events);
    reply.close = true;
    return reply;
  }
  // After a request it could not parse, the connection's framing is in
  // doubt: the reply is its last.
  const int status = StatusOf(reply.bytes);
  reply.close = client_closes || exchange.close_after || status == 400 ||
                status == 413 || status == 414;
  return reply;
}

void HttpGateway::InstallRoutes() {
  httplib::Server& server = *routes_;
  server.set_payload_max_length(max_body_bytes_);
  // Only framing: HttpFront owns the connections and their timeouts.
  server.set_keep_alive_timeout(5);
  server.set_keep_alive_max_count(1000);
  if (auth_ != nullptr) {
    // Deny by default: every path but the health endpoints and the
    // dashboard's static files (no data; the page asks for the token).
    server.set_pre_routing_handler([this](const httplib::Request& req,
                                          httplib::Response& res) {
      if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/" ||
          absl::StartsWith(req.path, "/assets/") ||
          auth_->Check(req.get_header_value("Authorization"))) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      res.set_header("WWW-Authenticate", R"(Bearer realm="latency-server")");
      SendError(res, 401,
                req.has_header("Authorization")
                    ? "invalid bearer token"
                    : "missing bearer token (send Authorization: Bearer "
                      "TOKEN)");
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  server.Get("/metrics", [this](const httplib::Request& req,
                                httplib::Response& res) {
    // Caches must key on Accept: one URL, three representations.
    res.set_header("Vary", "Accept");
    std::optional<MetricsFormat> format;
    if (req.has_param("format")) {
      const std::string param = req.get_param_value("format");
      format = ParseMetricsFormat(param);
      if (!format) {
        SendError(res, 400,
                  "format: want json, prometheus or openmetrics, got '" +
                      param + "'");
        return;
      }
    } else {
      format = NegotiateMetricsFormat(req.get_header_value("Accept"));
      if (!format) {
        SendError(res, 406,
                  "Accept: none of application/json, "
                  "application/openmetrics-text, text/plain is acceptable");
        return;
      }
    }
    if (*format == MetricsFormat::kJson) {
      v1::GetLatencyRequest request;
      if (!ParseUint32Param(req, "max_targets", &request, res,
                            &v1::GetLatencyRequest::set_max_targets)) {
        return;
      }
      SendResult(res, query_.GetLatency(request));
      return;
    }
    const bool openmetrics = *format == MetricsFormat::kOpenMetrics;
    const ExpositionFormat exposition = openmetrics
                                            ? ExpositionFormat::kOpenMetrics
                                            : ExpositionFormat::kPrometheusText;
    res.status = 200;
    StoreView view = query_.Current();
    // Small: one string with a Content-Length, the cheapest answer; HTTP/1.0
    // has no chunks, so its clients get the text whole too.
    if (view.store->targets().size() <= kStreamedExpositionTargets ||
        req.version == "HTTP/1.0") {
      res.set_content(
          RenderPrometheus(*view.store, hooks_.gauges(), hooks_.counters_of,
                           exposition, view.source),
          openmetrics ? kOpenMetrics : kPrometheusText);
      return;
    }
    // Large: rendered in parts as the client reads them (HttpBody),
    // chunked and gzipped when the client accepts it. At 100k targets
    // the text is 300 MB; whole, it more than doubled the server's
    // memory for the time of a scrape.
    auto renderer = std::make_shared<ExpositionRenderer>(
        *view.store, hooks_.gauges(), hooks_.counters_of, exposition,
        view.source);
    *current_body = std::make_shared<ChunkedTextBody>(
        [view = std::move(view), renderer](std::string& out, size_t budget) {
          return renderer->Next(out, budget);
        },
        AcceptsGzip(req.get_header_value("Accept-Encoding")));
    res.set_content("", openmetrics ? kOpenMetrics : kPrometheusText);
  });
  server.Get("/v1/latency",
             [this](const httplib::Request& req, httplib::Response& res) {
               v1::GetLatencyRequest request;
               request.set_target(req.get_param_value("target"));
               if (!ParseUint32Param(req, "max_targets", &request, res,
                                     &v1::GetLatencyRequest::set_max_targets)) {
                 return;
               }
               SendResult(res, query_.GetLatency(request));
             });
  server.Get("/v1/targets", [this](const httplib::Request& req,
                                   httplib::Response& res) {
    v1::ListTargetsRequest request;
    request.set_page_token(req.get_param_value("page_token"));
    if (req.has_param("page_size")) {
      int page_size = 0;
      if (!absl::SimpleAtoi(req.get_param_value("page_size"), &page_size)) {
        SendError(res, 400,
                  "page_size: want an integer, got '" +
                      req.get_param_value("page_size") + "'");
        return;
      }
      request.set_page_size(page_size);
    }
    SendResult(res, query_.ListTargets(request));
  });
  server.Get(R"(/v1/targets/([^/]+)/stats)", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
    v1::GetTargetStatsRequest request;
    request.set_target(httplib::detail::decode_url(req.matches[1], false));
    request.set_window(req.get_param_value("window"));
    SendResult(res, query_.GetTargetStats(request));
  });
  server.Get(
      R"(/v1/targets/([^/]+)/history)",
      [this](const httplib::Request& req, httplib::Response& res) {
        absl::StatusOr<v1::GetHistoryRequest> request =
            ParseHistoryRequest(req);
        if (!request.ok()) {
          SendError(res, 400, std::string(request.status().message()));
          return;
        }
        request->set_target(httplib::detail::decode_url(req.matches[1], false));
        SendResult(res, query_.GetHistory(*request));
      });
  // Server-sent events: one `sample` event per completed probe (the Watch
  // stream's WatchResponse as JSON), filtered by target and kind; the
  // stream ends when the configuration changes (clients watch again).
  server.Get(
      "/v1/watch", [this](const httplib::Request& req, httplib::Response& res) {
        v1::WatchRequest request;
        request.set_target(req.get_param_value("target"));
        const std::string kind = req.get_param_value("kind");
        if (kind == "icmp") {
          request.set_kind(v1::PROBE_KIND_ICMP);
        } else if (kind == "grpc") {
          request.set_kind(v1::PROBE_KIND_GRPC);
        } else if (!kind.empty() && kind != "all") {
          SendError(res, 400,
                    absl::StrCat("kind: want icmp, grpc or all, got '",
                                 ToValidUtf8(kind), "'"));
          return;
        }
        absl::Status valid = query_.ValidateWatch(request);
        const std::string client = req.remote_addr;
        if (valid.ok()) valid = watch_slots_->Admit(client);
        if (!valid.ok()) {
          SendError(res, HttpStatusFor(valid.code()), valid.code(),
                    valid.message());
          return;
        }
        std::shared_ptr<ResultStore> store = query_.Current().store;
        auto subscription = std::make_shared<std::atomic<int>>(-1);
        auto stream = std::make_shared<HttpStream>(
            [store, subscription, slots = watch_slots_, client] {
              if (*subscription >= 0) store->Unsubscribe(*subscription);
              slots->Release(client);
            });
        // Only matching samples are formatted, on the prober's thread; the
        // stream's buffer bounds what a slow client may hold.
        const ResultStore* raw_store = store.get();
        *subscription = store->Subscribe(
            [stream, raw_store, request](const Sample& sample) {
              if (!QueryHandler::WatchMatches(*raw_store, request, sample))
                return;
              v1::WatchResponse event;
              *event.mutable_sample() =
                  QueryHandler::SampleToProto(*raw_store, sample);
              stream->Push(
                  absl::StrCat("event: sample\ndata: ", ToJson(event), "\n\n"));
            },
            [stream] { stream->Finish(); });
        *current_stream = stream;
        res.status = 200;
        res.set_header("Cache-Control", "no-store");
        res.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer
        res.set_content("", "text/event-stream");
      });
  server.Get("/", [](const httplib::Request& req, httplib::Response& res) {
    SendWebAsset(req, res, "index.html");
  });
  server.Get(R"(/assets/([A-Za-z0-9._-]+))",
             [](const httplib::Request& req, httplib::Response& res) {
               SendWebAsset(req, res, req.matches[1].str());
             });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [this](const httplib::Request&,
                               httplib::Response& res) {
    bool ready = hooks_.ready();
    std::string problem =
        ready && hooks_.not_ready ? hooks_.not_ready() : std::string();
    res.status = ready && problem.empty() ? 200 : 503;
    std::string note = hooks_.ready_note ? hooks_.ready_note() : std::string();
    if (!note.empty()) note = "; " + note;
    res.set_content(!ready            ? "not ready: probers not running\n"
                    : problem.empty() ? "ready" + note + "\n"
                                      : "not ready: " + problem + note + "\n",
                    "text/plain");
  });
  // Known paths with another method: 405 with Allow (unknown paths: 404).
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    SendError(res, 405, "method not allowed; use GET");
  };
  for (const char* path :
       {"/metrics", "/v1/latency", "/v1/targets",
        R"(/v1/targets/([^/]+)/stats)", R"(/v1/targets/([^/]+)/history)",
        "/v1/watch", "/healthz", "/readyz", "/",
        R"(/assets/([A-Za-z0-9._-]+))"}) {
    server.Post(path, not_allowed);
    server.Put(path, not_allowed);
    server.Delete(path, not_allowed);
    server.Patch(path, not_allowed);
    server.Options(path, not_allowed);
  }
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route already wrote its JSON error
    SendError(res, res.status, DefaultReason(res.status));
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SendError(res, 500, "internal error");
      });
}

}  // namespace latency
