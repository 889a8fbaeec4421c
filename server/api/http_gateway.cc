#include "server/api/http_gateway.h"

#include <httplib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/utf8.h"
#include "server/api/http_status.h"
#include "server/api/metrics_format.h"
#include "server/web/web_assets.h"

namespace latency {
namespace {

// The workers' nice value, above the probers' 0. A gRPC probe's RTT
// includes its threads' wake-ups, which otherwise queue behind busy HTTP
// workers under query load (BENCHMARKS.md, "Probe medians under query
// load"). Raising nice needs no privilege.
constexpr int kWorkerNice = 10;

// httplib's pool, with every worker thread lowered to kWorkerNice the first
// time it runs a task (Linux nice values are per thread).
class LowPriorityThreadPool final : public httplib::TaskQueue {
 public:
  explicit LowPriorityThreadPool(int threads) : pool_(threads) {}

  void enqueue(std::function<void()> task) override {
    pool_.enqueue([task = std::move(task)] {
      thread_local const bool lowered =
          setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWorkerNice) ==
          0;
      (void)lowered;  // a failure only costs the priority
      task();
    });
  }
  void shutdown() override { pool_.shutdown(); }
  void on_idle() override { pool_.on_idle(); }

 private:
  httplib::ThreadPool pool_;
};

constexpr char kJson[] = "application/json";
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
      auth_(options.auth) {
  if (tls_ == nullptr) {
    server_ = std::make_unique<httplib::Server>();
    return;
  }
  server_ =
      std::make_unique<httplib::SSLServer>([certs = tls_.get()](SSL_CTX& ctx) {
        return ConfigureServerSslContext(&ctx, certs);
      });
}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    const HttpGatewayOptions& options, const QueryHandler& query,
    HttpGatewayHooks hooks) {
  absl::StatusOr<std::pair<std::string, int>> address =
      SplitHostPort(options.listen);
  if (!address.ok()) return address.status();
  std::unique_ptr<HttpGateway> gateway(
      new HttpGateway(options, query, std::move(hooks)));
  httplib::Server& server = *gateway->server_;
  if (!server.is_valid()) {
    return absl::InvalidArgumentError(
        "--http_tls_cert: cannot set up TLS with this certificate and key");
  }
  int threads = options.threads;
  server.new_task_queue = [threads] {
    return new LowPriorityThreadPool(threads);
  };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(absl::ToChronoSeconds(options.read_timeout));
  server.set_write_timeout(absl::ToChronoSeconds(options.write_timeout));
  server.set_keep_alive_timeout(5);
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle
  // plus the client's delayed ACK stalls every keep-alive reply by ~40 ms.
  server.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second server
  // bind the same port and silently split the scrapes: address reuse only.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // httplib closes a keep-alive connection after 5 requests by default.
  server.set_keep_alive_max_count(1000);
  gateway->InstallRoutes();

  auto [host, port] = *address;
  if (port == 0) {
    gateway->port_ = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, port)) {
    gateway->port_ = port;
  }
  if (gateway->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--http_listen: cannot listen on ", options.listen,
                     " (address in use, or not an address of this host?)"));
  }
  gateway->thread_ =
      std::thread([raw = gateway.get()] { raw->server_->listen_after_bind(); });
  Logger("http")->info("HTTP gateway on port {} (listen {}, {}{})",
                       gateway->port_, options.listen,
                       options.tls ? "HTTPS" : "HTTP",
                       options.auth ? ", bearer token required" : "");
  return gateway;
}

HttpGateway::~HttpGateway() { Shutdown(); }

void HttpGateway::Shutdown() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

void HttpGateway::InstallRoutes() {
  httplib::Server& server = *server_;
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
  server.Get(
      "/metrics", [this](const httplib::Request& req, httplib::Response& res) {
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
        res.status = 200;
        const StoreView view = query_.Current();
        res.set_content(
            RenderPrometheus(*view.store, hooks_.gauges(), hooks_.counters_of,
                             openmetrics ? ExpositionFormat::kOpenMetrics
                                         : ExpositionFormat::kPrometheusText,
                             view.source),
            openmetrics ? kOpenMetrics : kPrometheusText);
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
  server.Get(
      "/readyz", [this](const httplib::Request&, httplib::Response& res) {
        bool ready = hooks_.ready();
        std::string problem =
            ready && hooks_.not_ready ? hooks_.not_ready() : std::string();
        res.status = ready && problem.empty() ? 200 : 503;
        res.set_content(!ready            ? "not ready: probers not running\n"
                        : problem.empty() ? "ready\n"
                                          : "not ready: " + problem + "\n",
                        "text/plain");
      });
  // Known paths with another method: 405 with Allow (unknown paths: 404).
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    SendError(res, 405, "method not allowed; use GET");
  };
  for (const char* path : {"/metrics", "/v1/latency", "/v1/targets",
                           R"(/v1/targets/([^/]+)/stats)", "/healthz",
                           "/readyz", "/", R"(/assets/([A-Za-z0-9._-]+))"}) {
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
