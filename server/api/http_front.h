#ifndef LATENCY_SERVER_API_HTTP_FRONT_H_
#define LATENCY_SERVER_API_HTTP_FRONT_H_

#include <openssl/ssl.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace latency {

struct HttpFrontOptions {
  // Open connections in all, and from one client address; a connection
  // over either limit gets 503 (plaintext) and is closed.
  int max_connections = 512;
  int max_connections_per_client = 64;
  // From a request's first byte (a connection's accept, TLS handshake
  // included, for the first request) to its last: a client that trickles
  // its headers is cut off here, however often it sends a byte.
  absl::Duration request_timeout = absl::Seconds(5);
  // A keep-alive connection waiting for its next request.
  absl::Duration idle_timeout = absl::Seconds(5);
  // A reply the client does not read within this is dropped with the
  // connection.
  absl::Duration write_timeout = absl::Seconds(5);
  size_t max_header_bytes = 16 * 1024;  // request line + headers; else 431
  int max_header_lines = 100;           // else 431
  // Bodies up to this are read with the request; a larger one is not read
  // (the handler sees its headers only and answers 413) and the connection
  // closes after the reply.
  size_t max_body_bytes = 4096;
  int workers = 4;       // threads running the handler, at nice 10
  int max_queued = 256;  // complete requests waiting for a worker; else 503
  // HTTPS with this context (not owned; outlives the front). Null: HTTP.
  SSL_CTX* tls = nullptr;
};

// One complete request as it arrived, for the handler.
struct HttpExchange {
  std::string bytes;  // request line, headers and (when it fit) the body
  // The connection closes after this reply: the client half-closed, or its
  // body was not read (too large, chunked).
  bool close_after = false;
  std::string peer_ip;
  int peer_port = 0;
  std::string local_ip;
  int local_port = 0;
};

// HttpStream is a reply that goes on after its headers: a server-sent event
// stream. A producer on any thread Push()es pieces; the front's loop writes
// them as the client reads. Bounded: a client that falls more than
// kMaxBufferedBytes behind is cut off rather than buffered without end. The
// connection closes when the producer calls Finish (after what is
// buffered), when the client goes away, or at shutdown; then `on_close`
// (set by the producer before the reply is handed over) runs once, on the
// loop thread, and Push returns false from then on.
class HttpStream {
 public:
  static constexpr size_t kMaxBufferedBytes = 1 << 20;

  explicit HttpStream(std::function<void()> on_close = {})
      : on_close_(std::move(on_close)) {}
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // Queues `piece`; false when the stream is closed (or just overran).
  bool Push(std::string piece);
  // No more pieces: the connection closes once the queued ones are sent.
  void Finish();

 private:
  friend class HttpFront;
  // The front's side (loop thread).
  void Attach(std::function<void()> wake);
  // Moves the queued pieces to `out`; true when the stream is finished
  // (closed or overrun too), after them.
  bool Take(std::deque<std::string>& out);
  // Ends the stream from the front's side and runs on_close once.
  void Close();

  std::mutex mu_;
  std::deque<std::string> queued_;
  size_t queued_bytes_ = 0;
  bool finished_ = false;
  bool closed_ = false;
  std::function<void()> wake_;
  std::function<void()> on_close_;
};

// HttpBody is a reply's body made in parts as the client reads it: the front
// asks a worker for the next part only once everything before it is written.
// A large body (the Prometheus text of 100k targets is hundreds of MB) is then
// never held whole, and a client that reads slowly or not at all costs a
// socket and one part, never a worker thread. Next runs on a worker, one call
// at a time per body.
class HttpBody {
 public:
  virtual ~HttpBody() = default;
  // Appends the next part (already framed for the wire: chunked, say) to
  // `out`; false when that was the last.
  virtual bool Next(std::string& out) = 0;
};

struct HttpReply {
  HttpReply() = default;
  explicit HttpReply(std::string response, bool close_after = false)
      : bytes(std::move(response)), close(close_after) {}

  std::string bytes;   // the HTTP/1.1 response, or its first part
  bool close = false;  // close the connection once it is written
  // Further parts, in order: a large body (Prometheus text of many targets)
  // in pieces, so it never needs one contiguous buffer (whose doubling
  // growth alone would take twice its size) and each piece is freed once
  // sent.
  std::deque<std::string> more;
  // Set for a streaming reply: after `bytes` (its headers), the stream's
  // pieces until it ends; the connection closes after it.
  std::shared_ptr<HttpStream> stream;
  // Set for a pulled body: after `bytes` and `more`, its parts, each made
  // once the one before is written; the connection stays open after it
  // (unless `close`).
  std::shared_ptr<HttpBody> body;
};

// HttpFront owns a listening socket and every connection on it, in one
// event loop (epoll), and hands only complete requests to a small pool of
// workers. A slow or hostile client costs a socket and a buffer, never a
// thread: headers that trickle in are cut off at request_timeout, idle
// keep-alive connections at idle_timeout, clients that do not read their
// reply at write_timeout, and connections are capped in all and per client
// address. Health checks (see `inline_request`) are answered on the loop
// itself, so they answer while every worker is busy. The loop speaks TLS
// (OpenSSL, non-blocking) when options.tls is set.
//
// It parses only what it needs to frame a request (the blank line, Content-
// Length, Transfer-Encoding); the handler parses the request itself.
class HttpFront {
 public:
  using Handler = std::function<HttpReply(const HttpExchange&)>;
  // True for a request line the loop may answer itself (cheap handlers).
  using InlinePredicate = std::function<bool(absl::string_view request_line)>;
  // The JSON body of an error the front answers itself (408, 431, 503).
  using ErrorBody =
      std::function<std::string(int http_status, absl::string_view message)>;

  // Binds host:port (port 0 picks one) and starts serving.
  static absl::StatusOr<std::unique_ptr<HttpFront>> Start(
      const std::string& host, int port, const HttpFrontOptions& options,
      Handler handler, InlinePredicate inline_request, ErrorBody error_body);
  ~HttpFront();

  int port() const { return port_; }
  // Stops accepting, closes every connection, waits for the workers.
  void Shutdown();

  // Connections refused over a limit, requests refused with a full queue,
  // and connections cut off by a timeout, since start.
  uint64_t refused_connections() const { return refused_connections_.load(); }
  uint64_t refused_requests() const { return refused_requests_.load(); }
  uint64_t timed_out() const { return timed_out_.load(); }

 private:
  struct Connection;
  struct Completion {
    uint64_t connection;
    HttpReply reply;
  };
  struct Task {
    uint64_t connection;
    HttpExchange exchange;
    // Set when the task is the next part of this reply body, not a request.
    std::shared_ptr<HttpBody> body;
  };

  HttpFront(const HttpFrontOptions& options, Handler handler,
            InlinePredicate inline_request, ErrorBody error_body);

  void Loop();
  void AcceptAll(int64_t now_ns);
  void OnEvent(Connection& conn, uint32_t events, int64_t now_ns);
  void ContinueHandshake(Connection& conn, int64_t now_ns);
  void ReadRequest(Connection& conn, int64_t now_ns);
  void TryDispatch(Connection& conn, int64_t now_ns);
  void StartReply(Connection& conn, HttpReply reply, int64_t now_ns);
  void Reject(Connection& conn, int http_status, absl::string_view message,
              int64_t now_ns);
  void WriteReply(Connection& conn, int64_t now_ns);
  // Hands the connection's body to a worker for its next part.
  void RequestBodyPart(Connection& conn);
  void DeliverCompletions(int64_t now_ns);
  // Writes what the open streams have queued; keeps idle ones alive.
  void PumpStreams(int64_t now_ns, bool heartbeat);
  void ExpireDeadlines(int64_t now_ns);
  void SetInterest(Connection& conn, uint32_t events);
  void Close(Connection& conn);
  std::string ErrorResponse(int http_status, absl::string_view message) const;
  void WorkerLoop();
  void Wake();

  const HttpFrontOptions options_;
  const Handler handler_;
  const InlinePredicate inline_request_;
  const ErrorBody error_body_;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  bool listen_paused_ = false;  // out of file descriptors: retry shortly
  int64_t listen_resume_ns_ = 0;
  int64_t last_refusal_log_ns_ = 0;

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, int> per_client_;
  std::vector<uint64_t> streams_;  // connections with a streaming reply
  uint64_t next_id_ = 2;           // 0: the listening socket, 1: the wake-up fd
  int64_t next_sweep_ns_ = 0;

  std::mutex mu_;  // guards the fields below
  std::condition_variable work_ready_;
  std::deque<Task> queue_;
  std::vector<Completion> completions_;
  bool workers_stop_ = false;

  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> refused_connections_{0};
  std::atomic<uint64_t> refused_requests_{0};
  std::atomic<uint64_t> timed_out_{0};
  std::thread loop_;
  std::vector<std::thread> workers_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_HTTP_FRONT_H_
