#include "server/api/http_front.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "server/api/query_workers.h"

namespace latency {
namespace {

constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Deadlines are checked this often; timeouts are seconds, so this is fine.
constexpr int64_t kSweepNs = 100'000'000;
// An idle event stream gets an SSE comment this often, so proxies and
// clients see it alive.
constexpr int64_t kStreamHeartbeatNs = 15'000'000'000;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t AfterNs(int64_t now_ns, absl::Duration d) {
  return now_ns + absl::ToInt64Nanoseconds(d);
}

// The numeric address and port; an IPv4-mapped IPv6 peer reads as IPv4, so
// that a dual-stack listener counts one client as one address.
void NumericAddress(const sockaddr_storage& addr, std::string* ip, int* port) {
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &v4.sin_addr, host, sizeof(host));
    *port = ntohs(v4.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], host, sizeof(host));
    } else {
      inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof(host));
    }
    *port = ntohs(v6.sin6_port);
  }
  *ip = host;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// Where the header block ends (past its blank line), or npos. Bare LF line
// ends are accepted, as the handler's parser accepts them.
size_t HeaderEnd(const std::string& in) {
  size_t crlf = in.find("\r\n\r\n");
  size_t lf = in.find("\n\n");
  size_t end = std::string::npos;
  if (crlf != std::string::npos) end = crlf + 4;
  if (lf != std::string::npos) end = std::min(end, lf + 2);
  return end;
}

// Whether `line` is "METHOD SP TARGET SP HTTP/1.x" (RFC 9112 §3): a token,
// single spaces, no blanks in the target. cpp-httplib answers some other
// lines with a Content-Length it then does not send.
bool WellFormedRequestLine(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\r");
  const size_t method_end = line.find(' ');
  if (method_end == 0 || method_end == absl::string_view::npos) return false;
  for (char c : line.substr(0, method_end)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        !absl::StrContains("!#$%&'*+-.^_`|~", c)) {
      return false;
    }
  }
  absl::string_view rest = line.substr(method_end + 1);
  const size_t target_end = rest.find(' ');
  if (target_end == 0 || target_end == absl::string_view::npos) return false;
  for (char c : rest.substr(0, target_end)) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  absl::string_view version = rest.substr(target_end + 1);
  return version.size() == 8 && absl::StartsWith(version, "HTTP/1.") &&
         absl::ascii_isdigit(static_cast<unsigned char>(version[7]));
}

// What framing needs from the headers.
struct Framing {
  int lines = 0;
  bool chunked_or_unknown = false;  // Transfer-Encoding, or a bad length
  size_t content_length = 0;
};

Framing ParseFraming(absl::string_view head) {
  Framing framing;
  bool first = true;
  for (absl::string_view line : absl::StrSplit(head, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty()) continue;
    ++framing.lines;
    if (first) {
      first = false;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view name = line.substr(0, colon);
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      framing.chunked_or_unknown = true;
    } else if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t length = 0;
      if (!absl::SimpleAtoi(value, &length) ||
          (framing.content_length != 0 && framing.content_length != length)) {
        framing.chunked_or_unknown = true;
      } else {
        framing.content_length = static_cast<size_t>(
            std::min<uint64_t>(length, std::numeric_limits<size_t>::max()));
      }
    }
  }
  return framing;
}

}  // namespace

struct HttpFront::Connection {
  enum class State { kHandshake, kReading, kProcessing, kWriting };

  ~Connection() {
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) close(fd);
  }

  uint64_t id = 0;
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kReading;
  uint32_t interest = 0;
  int64_t deadline_ns = kNever;
  std::string in;
  bool peer_closed = false;  // read EOF: answer what is complete, then close
  std::string out;
  std::deque<std::string> out_more;  // the reply's further parts
  size_t out_done = 0;
  bool close_after = false;
  std::string peer_ip;
  int peer_port = 0;
  std::string local_ip;
  int local_port = 0;
  std::shared_ptr<HttpStream> stream;  // a streaming reply in progress
  std::shared_ptr<HttpBody> body;      // a pulled body's parts still to come
  int64_t last_write_ns = 0;
};

bool HttpStream::Push(std::string piece) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || finished_) return false;
  queued_bytes_ += piece.size();
  if (queued_bytes_ > kMaxBufferedBytes) {
    // The client does not keep up: cut it off rather than buffer on.
    closed_ = true;
    queued_.clear();
  } else {
    queued_.push_back(std::move(piece));
  }
  if (wake_) wake_();  // under mu_: Close cannot return while it runs
  return !closed_;
}

void HttpStream::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  finished_ = true;
  if (wake_) wake_();
}

void HttpStream::Attach(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = std::move(wake);
}

bool HttpStream::Take(std::deque<std::string>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::string& piece : queued_) out.push_back(std::move(piece));
  queued_.clear();
  queued_bytes_ = 0;
  return finished_ || closed_;
}

void HttpStream::Close() {
  std::function<void()> on_close;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    wake_ = nullptr;
    queued_.clear();
    on_close.swap(on_close_);
  }
  if (on_close) on_close();
}

HttpFront::HttpFront(const HttpFrontOptions& options, Handler handler,
                     InlinePredicate inline_request, ErrorBody error_body)
    : options_(options),
      handler_(std::move(handler)),
      inline_request_(std::move(inline_request)),
      error_body_(std::move(error_body)) {}

absl::StatusOr<std::unique_ptr<HttpFront>> HttpFront::Start(
    const std::string& host, int port, const HttpFrontOptions& options,
    Handler handler, InlinePredicate inline_request, ErrorBody error_body) {
  std::unique_ptr<HttpFront> front(new HttpFront(options, std::move(handler),
                                                 std::move(inline_request),
                                                 std::move(error_body)));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                  &hints, &found) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", host, "'"));
  }
  for (addrinfo* ai = found; ai != nullptr && front->listen_fd_ < 0;
       ai = ai->ai_next) {
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0) continue;
    // Address reuse only: SO_REUSEPORT would let a second server bind the
    // same port and silently split the scrapes.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        listen(fd, SOMAXCONN) == 0) {
      front->listen_fd_ = fd;
    } else {
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (front->listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port,
                     " (address in use, or not an address of this host?)"));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(front->listen_fd_, reinterpret_cast<sockaddr*>(&bound),
              &bound_len);
  std::string ignored;
  NumericAddress(bound, &ignored, &front->port_);

  front->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  front->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (front->epoll_fd_ < 0 || front->wake_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("HTTP gateway: epoll/eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  epoll_ctl(front->epoll_fd_, EPOLL_CTL_ADD, front->listen_fd_, &ev);
  ev.data.u64 = kWakeId;
  epoll_ctl(front->epoll_fd_, EPOLL_CTL_ADD, front->wake_fd_, &ev);

  for (int i = 0; i < std::max(1, options.workers); ++i) {
    front->workers_.emplace_back([raw = front.get()] { raw->WorkerLoop(); });
  }
  front->loop_ = std::thread([raw = front.get()] { raw->Loop(); });
  return front;
}

HttpFront::~HttpFront() {
  Shutdown();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void HttpFront::Shutdown() {
  stopping_ = true;
  if (loop_.joinable()) {
    Wake();
    loop_.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_stop_ = true;
    queue_.clear();  // their connections are closed
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void HttpFront::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // a full counter already wakes the loop
}

void HttpFront::Loop() {
  // Below the probers, like the workers: under a query flood the loop is
  // busy too, and a probe's thread wake-ups must not queue behind it.
  // Health checks still answer at once: nothing on the loop blocks.
  LowerToQueryPriority();
  std::vector<epoll_event> events(256);
  while (!stopping_) {
    int n = epoll_wait(epoll_fd_, events.data(),
                       static_cast<int>(events.size()), kSweepNs / 1'000'000);
    const int64_t now_ns = MonotonicNs();
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kListenId) {
        AcceptAll(now_ns);
      } else if (id == kWakeId) {
        uint64_t count;
        while (read(wake_fd_, &count, sizeof(count)) > 0) {
        }
        DeliverCompletions(now_ns);
        PumpStreams(now_ns, /*heartbeat=*/false);
      } else if (auto it = connections_.find(id); it != connections_.end()) {
        OnEvent(*it->second, events[i].events, now_ns);
      }
    }
    ExpireDeadlines(now_ns);
  }
  // Closing the listening socket first stops new connections at once.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  close(listen_fd_);
  listen_fd_ = -1;
  for (uint64_t id : streams_) {
    if (auto it = connections_.find(id); it != connections_.end()) {
      it->second->stream->Close();
    }
  }
  streams_.clear();
  connections_.clear();
  per_client_.clear();
}

void HttpFront::AcceptAll(int64_t now_ns) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        // The backlog keeps the connection; stop polling the listener
        // for a moment rather than spin on it.
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        listen_paused_ = true;
        listen_resume_ns_ = now_ns + kSweepNs;
        if (now_ns - last_refusal_log_ns_ > 60'000'000'000) {
          last_refusal_log_ns_ = now_ns;
          Logger("http")->warn(
              "HTTP gateway: cannot accept connections: {} (raise the file "
              "descriptor limit, or lower --http_max_connections)",
              std::strerror(errno));
        }
      }
      return;
    }
    std::string ip;
    int port = 0;
    NumericAddress(peer, &ip, &port);
    int& from_client = per_client_[ip];
    const bool over_total =
        static_cast<int>(connections_.size()) >= options_.max_connections;
    if (over_total || from_client >= options_.max_connections_per_client) {
      if (from_client == 0) per_client_.erase(ip);
      ++refused_connections_;
      if (options_.tls == nullptr) {
        const std::string busy = ErrorResponse(
            503, over_total ? "too many connections to this server"
                            : "too many connections from your address");
        ssize_t sent = send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        (void)sent;  // best effort: the client may not be reading
      }
      close(fd);
      if (now_ns - last_refusal_log_ns_ > 60'000'000'000) {
        last_refusal_log_ns_ = now_ns;
        Logger("http")->warn(
            "HTTP gateway: refusing connections from {}: {} open (limits: "
            "--http_max_connections={}, --http_max_connections_per_client={})",
            ip, over_total ? connections_.size() : size_t(from_client),
            options_.max_connections, options_.max_connections_per_client);
      }
      continue;
    }
    ++from_client;
    int yes = 1;
    // Headers and body may go out in separate writes: no Nagle delay.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto conn = std::make_unique<Connection>();
    conn->id = next_id_++;
    conn->fd = fd;
    conn->peer_ip = std::move(ip);
    conn->peer_port = port;
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    NumericAddress(local, &conn->local_ip, &conn->local_port);
    conn->deadline_ns = AfterNs(now_ns, options_.request_timeout);
    if (options_.tls != nullptr) {
      conn->ssl = SSL_new(options_.tls);
      if (conn->ssl == nullptr || SSL_set_fd(conn->ssl, fd) != 1) {
        ERR_clear_error();
        if (--per_client_[conn->peer_ip] == 0) per_client_.erase(conn->peer_ip);
        continue;  // conn's destructor closes fd
      }
      SSL_set_mode(conn->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      conn->state = Connection::State::kHandshake;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = conn->id;
    conn->interest = EPOLLIN;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(conn->id, std::move(conn));
  }
}

void HttpFront::OnEvent(Connection& conn, uint32_t events, int64_t now_ns) {
  switch (conn.state) {
    case Connection::State::kHandshake:
      ContinueHandshake(conn, now_ns);
      return;
    case Connection::State::kReading:
      ReadRequest(conn, now_ns);
      return;
    case Connection::State::kWriting:
      // A stream's client sends nothing more: a hang-up ends it.
      if (conn.stream != nullptr &&
          (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        Close(conn);
        return;
      }
      WriteReply(conn, now_ns);
      return;
    case Connection::State::kProcessing:
      // Nothing is polled while a worker answers; only errors arrive, and
      // a client that is gone needs no reply.
      if (events & (EPOLLHUP | EPOLLERR)) Close(conn);
      return;
  }
}

void HttpFront::ContinueHandshake(Connection& conn, int64_t now_ns) {
  int result = SSL_accept(conn.ssl);
  if (result == 1) {
    conn.state = Connection::State::kReading;
    SetInterest(conn, EPOLLIN);
    ReadRequest(conn, now_ns);  // the client's first bytes may be buffered
    return;
  }
  switch (SSL_get_error(conn.ssl, result)) {
    case SSL_ERROR_WANT_READ:
      SetInterest(conn, EPOLLIN);
      return;
    case SSL_ERROR_WANT_WRITE:
      SetInterest(conn, EPOLLOUT);
      return;
    default:
      ERR_clear_error();
      Close(conn);
  }
}

void HttpFront::ReadRequest(Connection& conn, int64_t now_ns) {
  char buf[16384];
  // Stop reading once more than a whole request could be buffered; the
  // rest waits in the socket for the next request.
  const size_t enough =
      options_.max_header_bytes + options_.max_body_bytes + sizeof(buf);
  while (conn.in.size() < enough) {
    ssize_t n;
    if (conn.ssl != nullptr) {
      n = SSL_read(conn.ssl, buf, sizeof(buf));
      if (n <= 0) {
        int error = SSL_get_error(conn.ssl, static_cast<int>(n));
        if (error == SSL_ERROR_WANT_READ) break;
        if (error == SSL_ERROR_WANT_WRITE) {
          SetInterest(conn, EPOLLOUT);
          break;
        }
        ERR_clear_error();
        conn.peer_closed = true;
        break;
      }
    } else {
      n = recv(conn.fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        Close(conn);
        return;
      }
      if (n == 0) {
        conn.peer_closed = true;
        break;
      }
    }
    // A request's clock starts at its first byte (a keep-alive wait ends).
    if (conn.in.empty()) {
      conn.deadline_ns = AfterNs(now_ns, options_.request_timeout);
    }
    conn.in.append(buf, static_cast<size_t>(n));
  }
  TryDispatch(conn, now_ns);
}

void HttpFront::TryDispatch(Connection& conn, int64_t now_ns) {
  const size_t header_end = HeaderEnd(conn.in);
  if (header_end == std::string::npos ||
      header_end > options_.max_header_bytes) {
    if (conn.in.size() > options_.max_header_bytes ||
        header_end != std::string::npos) {
      Reject(conn, 431,
             absl::StrCat("request line and headers exceed ",
                          options_.max_header_bytes, " bytes"),
             now_ns);
    } else if (conn.peer_closed) {
      Close(conn);
    }
    return;
  }
  if (!WellFormedRequestLine(
          absl::string_view(conn.in).substr(0, conn.in.find('\n')))) {
    Reject(conn, 400,
           "malformed request line (want METHOD SP TARGET SP HTTP/1.1)",
           now_ns);
    return;
  }
  const Framing framing =
      ParseFraming(absl::string_view(conn.in).substr(0, header_end));
  if (framing.lines > options_.max_header_lines + 1) {
    Reject(
        conn, 431,
        absl::StrCat("more than ", options_.max_header_lines, " header lines"),
        now_ns);
    return;
  }
  HttpExchange exchange;
  size_t consumed;
  if (framing.chunked_or_unknown ||
      framing.content_length > options_.max_body_bytes) {
    // The body is not read: the reply is the last on this connection.
    exchange.close_after = true;
    consumed = header_end;
  } else {
    consumed = header_end + framing.content_length;
    if (conn.in.size() < consumed) {
      if (conn.peer_closed) Close(conn);
      return;  // the body is still coming
    }
  }
  exchange.bytes = conn.in.substr(0, consumed);
  conn.in.erase(0, consumed);
  exchange.close_after = exchange.close_after || conn.peer_closed;
  exchange.peer_ip = conn.peer_ip;
  exchange.peer_port = conn.peer_port;
  exchange.local_ip = conn.local_ip;
  exchange.local_port = conn.local_port;
  conn.close_after = exchange.close_after;
  conn.state = Connection::State::kProcessing;
  conn.deadline_ns = kNever;  // the handler's time is not the client's
  SetInterest(conn, 0);

  const absl::string_view request_line =
      absl::string_view(exchange.bytes).substr(0, exchange.bytes.find('\n'));
  if (inline_request_ && inline_request_(request_line)) {
    StartReply(conn, handler_(exchange), now_ns);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(queue_.size()) < options_.max_queued) {
      queue_.push_back(Task{conn.id, std::move(exchange), nullptr});
      work_ready_.notify_one();
      return;
    }
  }
  ++refused_requests_;
  Reject(conn, 503,
         absl::StrCat("server busy: ", options_.max_queued,
                      " requests already waiting; retry shortly"),
         now_ns);
}

void HttpFront::Reject(Connection& conn, int http_status,
                       absl::string_view message, int64_t now_ns) {
  conn.in.clear();
  StartReply(conn, HttpReply{ErrorResponse(http_status, message), true},
             now_ns);
}

void HttpFront::StartReply(Connection& conn, HttpReply reply, int64_t now_ns) {
  conn.out = std::move(reply.bytes);
  conn.out_more = std::move(reply.more);
  conn.body = std::move(reply.body);
  conn.out_done = 0;
  conn.close_after = conn.close_after || reply.close;
  conn.state = Connection::State::kWriting;
  conn.deadline_ns = AfterNs(now_ns, options_.write_timeout);
  if (reply.stream != nullptr) {
    conn.stream = std::move(reply.stream);
    conn.close_after = true;  // the stream ends with the connection
    conn.stream->Attach([this] { Wake(); });
    streams_.push_back(conn.id);
  }
  WriteReply(conn, now_ns);
}

void HttpFront::WriteReply(Connection& conn, int64_t now_ns) {
  for (;;) {
    if (conn.out_done == conn.out.size()) {
      if (conn.out_more.empty() && conn.stream != nullptr &&
          !conn.stream->Take(conn.out_more) && conn.out_more.empty()) {
        // All sent; wait for the producer (or a hang-up), no deadline.
        conn.last_write_ns = now_ns;
        conn.deadline_ns = kNever;
        SetInterest(conn, EPOLLRDHUP);
        return;
      }
      if (conn.out_more.empty() && conn.body != nullptr) {
        RequestBodyPart(conn);
        return;
      }
      if (conn.out_more.empty()) break;
      conn.out = std::move(conn.out_more.front());  // frees the sent part
      conn.out_more.pop_front();
      conn.out_done = 0;
      continue;
    }
    const size_t left =
        std::min<size_t>(conn.out.size() - conn.out_done, INT_MAX);
    const char* data = conn.out.data() + conn.out_done;
    ssize_t n;
    if (conn.ssl != nullptr) {
      n = SSL_write(conn.ssl, data, static_cast<int>(left));
      if (n <= 0) {
        int error = SSL_get_error(conn.ssl, static_cast<int>(n));
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
          SetInterest(conn, error == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
          if (conn.deadline_ns == kNever) {
            conn.deadline_ns = AfterNs(now_ns, options_.write_timeout);
          }
          return;
        }
        ERR_clear_error();
        Close(conn);
        return;
      }
    } else {
      n = send(conn.fd, data, left, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          SetInterest(conn, EPOLLOUT);
          // A stream's client must keep reading too.
          if (conn.deadline_ns == kNever) {
            conn.deadline_ns = AfterNs(now_ns, options_.write_timeout);
          }
          return;
        }
        Close(conn);
        return;
      }
    }
    conn.out_done += static_cast<size_t>(n);
  }
  // A large reply's last part gives its memory back.
  if (conn.out.capacity() > 64 * 1024) {
    std::string().swap(conn.out);
  } else {
    conn.out.clear();
  }
  if (conn.close_after) {
    if (conn.ssl != nullptr) SSL_shutdown(conn.ssl);  // close_notify, once
    Close(conn);
    return;
  }
  conn.state = Connection::State::kReading;
  conn.deadline_ns =
      AfterNs(now_ns, conn.in.empty() ? options_.idle_timeout
                                      : options_.request_timeout);
  SetInterest(conn, EPOLLIN);
  // A pipelined request may be buffered already, here or inside TLS.
  if (!conn.in.empty() || (conn.ssl != nullptr && SSL_pending(conn.ssl) > 0)) {
    ReadRequest(conn, now_ns);
  }
}

void HttpFront::RequestBodyPart(Connection& conn) {
  // As while a request is answered: nothing to write, nothing polled, and
  // the worker's time is not the client's.
  conn.state = Connection::State::kProcessing;
  conn.deadline_ns = kNever;
  SetInterest(conn, 0);
  std::lock_guard<std::mutex> lock(mu_);
  // Never refused for a full queue: the reply is under way, and there is
  // at most one such task per connection.
  queue_.push_back(Task{conn.id, HttpExchange(), std::move(conn.body)});
  work_ready_.notify_one();
}

void HttpFront::DeliverCompletions(int64_t now_ns) {
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(completions_);
  }
  for (Completion& completion : done) {
    auto it = connections_.find(completion.connection);
    if (it == connections_.end()) continue;  // the client went away
    Connection& conn = *it->second;
    if (conn.state != Connection::State::kProcessing) continue;
    StartReply(conn, std::move(completion.reply), now_ns);
  }
}

void HttpFront::PumpStreams(int64_t now_ns, bool heartbeat) {
  // Copied: writing may close (and unlist) a connection.
  const std::vector<uint64_t> ids = streams_;
  for (uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& conn = *it->second;
    // Only streams waiting for data; the others are mid-write (EPOLLOUT).
    if (conn.interest != EPOLLRDHUP) continue;
    if (heartbeat && now_ns - conn.last_write_ns >= kStreamHeartbeatNs) {
      conn.out = ":\n\n";  // an SSE comment
      conn.out_done = 0;
    }
    WriteReply(conn, now_ns);
  }
}

void HttpFront::ExpireDeadlines(int64_t now_ns) {
  if (listen_paused_ && now_ns >= listen_resume_ns_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenId;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    listen_paused_ = false;
  }
  if (now_ns < next_sweep_ns_) return;
  next_sweep_ns_ = now_ns + kSweepNs;
  if (!streams_.empty()) PumpStreams(now_ns, /*heartbeat=*/true);
  std::vector<uint64_t> expired;
  for (const auto& [id, conn] : connections_) {
    if (conn->deadline_ns <= now_ns) expired.push_back(id);
  }
  for (uint64_t id : expired) {
    Connection& conn = *connections_.at(id);
    ++timed_out_;
    // An honest client that was merely slow learns why (plaintext only: a
    // TLS session may be mid-record). One non-blocking try, then close.
    if (conn.ssl == nullptr && conn.state == Connection::State::kReading &&
        !conn.in.empty()) {
      const std::string timeout = ErrorResponse(
          408, absl::StrCat("request not complete within ",
                            absl::FormatDuration(options_.request_timeout)));
      ssize_t sent = send(conn.fd, timeout.data(), timeout.size(),
                          MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)sent;
    }
    Close(conn);
  }
}

void HttpFront::SetInterest(Connection& conn, uint32_t events) {
  if (conn.interest == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = conn.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
  conn.interest = events;
}

void HttpFront::Close(Connection& conn) {
  if (conn.stream != nullptr) {
    conn.stream->Close();
    streams_.erase(std::remove(streams_.begin(), streams_.end(), conn.id),
                   streams_.end());
  }
  auto client = per_client_.find(conn.peer_ip);
  if (client != per_client_.end() && --client->second <= 0) {
    per_client_.erase(client);
  }
  connections_.erase(conn.id);  // closes the socket (epoll forgets it)
}

std::string HttpFront::ErrorResponse(int http_status,
                                     absl::string_view message) const {
  const std::string body = error_body_(http_status, message);
  return absl::StrCat("HTTP/1.1 ", http_status, " ", ReasonPhrase(http_status),
                      "\r\nContent-Type: application/json\r\nContent-Length: ",
                      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

void HttpFront::WorkerLoop() {
  LowerToQueryPriority();
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock,
                       [this] { return workers_stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    HttpReply reply;
    if (task.body != nullptr) {
      if (task.body->Next(reply.bytes)) reply.body = std::move(task.body);
    } else {
      reply = handler_(task.exchange);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      completions_.push_back(Completion{task.connection, std::move(reply)});
    }
    Wake();
  }
}

}  // namespace latency
