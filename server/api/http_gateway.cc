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

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// `message` may echo what the client sent (a format, a target): JSON must
// stay UTF-8 whatever the bytes were.
void SendError(httplib::Response& res, int code, absl::string_view message) {
  v1::ErrorResponse error;
  error.set_code(code);
  error.set_error(ToValidUtf8(message));
  res.status = code;
  res.set_content(ToJson(error), kJson);
}

template <typename Response>
void SendResult(httplib::Response& res,
                const absl::StatusOr<Response>& result) {
  if (!result.ok()) {
    SendError(res, HttpStatusFor(result.status().code()),
              result.status().message());
    return;
  }
  res.status = 200;
  res.set_content(ToJson(*result), kJson);
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

}  // namespace

bool WantsPrometheus(const std::string& accept, const std::string& format) {
  if (format == "prometheus" || format == "openmetrics") return true;
  if (format == "json") return false;
  return absl::StrContains(accept, "text/plain") ||
         absl::StrContains(accept, "application/openmetrics-text");
}

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
    // Deny by default: every path but the health endpoints, known or not.
    server.set_pre_routing_handler([this](const httplib::Request& req,
                                          httplib::Response& res) {
      if (req.path == "/healthz" || req.path == "/readyz" ||
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
        std::string format = req.get_param_value("format");
        if (!format.empty() && format != "json" && format != "prometheus" &&
            format != "openmetrics") {
          SendError(res, 400,
                    "format: want json or prometheus, got '" + format + "'");
          return;
        }
        if (WantsPrometheus(req.get_header_value("Accept"), format)) {
          res.status = 200;
          res.set_content(RenderPrometheus(*query_.Current().store,
                                           hooks_.gauges(), hooks_.counters_of),
                          kPrometheusText);
          return;
        }
        SendResult(res, query_.GetLatency(v1::GetLatencyRequest()));
      });
  server.Get("/v1/latency",
             [this](const httplib::Request& req, httplib::Response& res) {
               v1::GetLatencyRequest request;
               request.set_target(req.get_param_value("target"));
               SendResult(res, query_.GetLatency(request));
             });
  server.Get(
      "/v1/targets", [this](const httplib::Request&, httplib::Response& res) {
        SendResult(
            res, absl::StatusOr<v1::ListTargetsResponse>(query_.ListTargets()));
      });
  server.Get(R"(/v1/targets/([^/]+)/stats)", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
    v1::GetTargetStatsRequest request;
    request.set_target(httplib::detail::decode_url(req.matches[1], false));
    request.set_window(req.get_param_value("window"));
    SendResult(res, query_.GetTargetStats(request));
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get(
      "/readyz", [this](const httplib::Request&, httplib::Response& res) {
        bool ready = hooks_.ready();
        res.status = ready ? 200 : 503;
        res.set_content(ready ? "ready\n" : "not ready: probers not running\n",
                        "text/plain");
      });
  // Known paths with another method: 405 with Allow (unknown paths: 404).
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    SendError(res, 405, "method not allowed; use GET");
  };
  for (const char* path :
       {"/metrics", "/v1/latency", "/v1/targets",
        R"(/v1/targets/([^/]+)/stats)", "/healthz", "/readyz"}) {
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
