// HttpFront on a real loopback socket against clients that misbehave the
// way hostile or broken ones do: trickled headers, idle and unread
// connections, too many connections, oversized headers, floods that fill the
// queue. The handler here is a stub that answers with the request's path,
// so each test sees exactly what the front passed on. Timeouts are short
// and every wait is bounded generously (a loaded 2-core machine).
#include "server/api/http_front.h"

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/raw_tcp.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::RawTcp;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kPatience = absl::Seconds(10);

std::string PathOf(const std::string& request) {
  size_t start = request.find(' ') + 1;
  return request.substr(start, request.find(' ', start) - start);
}

std::string Ok(absl::string_view body) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                      "\r\n\r\n", body);
}

// /parts' length: 30 MB, several times what socket buffers hold, and read
// within a minute under TSan.
constexpr int kBodyParts = 120;

// A body of `parts` parts of 256 KB ('a', 'b', ...), counting what it made.
class PartsBody final : public HttpBody {
 public:
  static constexpr size_t kPartBytes = 256 * 1024;
  PartsBody(int parts, std::atomic<int>* made) : parts_(parts), made_(made) {}
  bool Next(std::string& out) override {
    out.append(kPartBytes, static_cast<char>('a' + next_ % 26));
    ++*made_;
    return ++next_ < parts_;
  }

 private:
  const int parts_;
  std::atomic<int>* made_;
  int next_ = 0;
};

class HttpFrontTest : public ::testing::Test {
 protected:
  void Start() {
    auto front = HttpFront::Start(
        "127.0.0.1", 0, options_,
        [this](const HttpExchange& exchange) {
          const std::string path = PathOf(exchange.bytes);
          if (path == "/block") {
            std::unique_lock<std::mutex> lock(mu_);
            ++blocked_;
            released_cv_.wait(lock, [this] { return released_; });
          }
          if (path == "/big") return HttpReply{Ok(std::string(64 << 20, 'x'))};
          if (path == "/pieces") {
            // Headers first, then 300 pieces of 10 KB: a, b, c, ...
            HttpReply reply(
                "HTTP/1.1 200 OK\r\nContent-Length: 3072000\r\n\r\n");
            for (int i = 0; i < 300; ++i) {
              reply.more.emplace_back(10240, static_cast<char>('a' + i % 26));
            }
            return reply;
          }
          if (path == "/parts") {
            // Made as the client reads.
            constexpr int kParts = kBodyParts;
            HttpReply reply(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ",
                                         kParts * PartsBody::kPartBytes,
                                         "\r\n\r\n"));
            auto body = std::make_shared<PartsBody>(kParts, &parts_made_);
            {
              std::lock_guard<std::mutex> lock(mu_);
              body_ = body;
            }
            reply.body = std::move(body);
            return reply;
          }
          if (path == "/stream") {
            HttpReply reply("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            reply.stream = std::make_shared<HttpStream>([this] {
              std::lock_guard<std::mutex> lock(mu_);
              ++streams_closed_;
            });
            {
              std::lock_guard<std::mutex> lock(mu_);
              stream_ = reply.stream;
            }
            reply.stream->Push("first\n");
            return reply;
          }
          if (path == "/echo") {
            last_close_after_ = exchange.close_after;
            return HttpReply{Ok(exchange.bytes)};
          }
          // The stub's one header rule: the client may ask to close.
          return HttpReply{
              Ok(path), absl::StrContains(exchange.bytes, "Connection: close")};
        },
        [](absl::string_view line) {
          return absl::StartsWith(line, "GET /healthz ");
        },
        [](int status, absl::string_view message) {
          return absl::StrCat("{\"code\":", status, ",\"message\":\"", message,
                              "\"}");
        });
    ASSERT_THAT(front, IsOk());
    front_ = std::move(*front);
  }

  void TearDown() override {
    Release();
    if (front_ != nullptr) front_->Shutdown();
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    released_cv_.notify_all();
  }

  int Blocked() {
    std::lock_guard<std::mutex> lock(mu_);
    return blocked_;
  }

  // One GET on a fresh connection; the whole answer, or "" on timeout.
  std::string Get(const std::string& path, const char* source = nullptr) {
    RawTcp client(front_->port(), source);
    if (!client.ok()) return "";
    client.Send(absl::StrCat(
        "GET ", path, " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    return client.ReadUntilClose(kPatience);
  }

  HttpFrontOptions options_;
  std::unique_ptr<HttpFront> front_;
  std::mutex mu_;
  std::condition_variable released_cv_;
  bool released_ = false;
  int blocked_ = 0;
  std::atomic<bool> last_close_after_{false};
  std::shared_ptr<HttpStream> stream_;  // the latest /stream
  int streams_closed_ = 0;
  std::atomic<int> parts_made_{0};
  std::weak_ptr<HttpBody> body_;  // the latest /parts

  std::shared_ptr<HttpStream> LatestStream() {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_;
  }
  int StreamsClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_closed_;
  }
};

// A streaming reply: pieces pushed from another thread reach the client as
// they come, Finish ends the connection after them, and the producer hears
// of the close once.
TEST_F(HttpFrontTest, AStreamDeliversPiecesUntilFinished) {
  Start();
  RawTcp client(front_->port());
  ASSERT_TRUE(client.ok());
  client.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("first\n", 1, kPatience), HasSubstr("first"));
  std::shared_ptr<HttpStream> stream = LatestStream();
  ASSERT_NE(stream, nullptr);
  std::thread producer([stream] {
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_TRUE(stream->Push(absl::StrCat("event ", i, "\n")));
    }
    stream->Finish();
  });
  const std::string rest = client.ReadUntilClose(kPatience);
  producer.join();
  EXPECT_THAT(rest, HasSubstr("event 0\nevent 1\nevent 2\nevent 3\nevent 4\n"));
  EXPECT_TRUE(WaitUntil([&] { return StreamsClosed() == 1; }, kPatience));
  EXPECT_FALSE(stream->Push("late"));
}

// A client that hangs up ends its stream (the producer is told, and its
// pushes fail); one that stops reading is cut off once it falls behind by
// the buffer bound, not buffered without end.
TEST_F(HttpFrontTest, AStreamEndsWhenItsClientLeavesOrFallsBehind) {
  Start();
  {
    RawTcp client(front_->port());
    ASSERT_TRUE(client.ok());
    client.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    ASSERT_THAT(client.ReadUntil("first\n", 1, kPatience), HasSubstr("first"));
  }  // closed
  std::shared_ptr<HttpStream> gone = LatestStream();
  EXPECT_TRUE(WaitUntil([&] { return StreamsClosed() == 1; }, kPatience));
  EXPECT_FALSE(gone->Push("anyone?"));

  RawTcp stalled(front_->port());
  ASSERT_TRUE(stalled.ok());
  stalled.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return LatestStream() != gone; }, kPatience));
  std::shared_ptr<HttpStream> slow = LatestStream();
  // Never read: socket buffers fill, then the stream's own bound trips.
  const std::string piece(64 * 1024, 'x');
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) refused = !slow->Push(piece);
  EXPECT_TRUE(refused);
  EXPECT_TRUE(WaitUntil([&] { return StreamsClosed() == 2; }, kPatience));
}

// At shutdown every open stream is told, so its producer stops.
TEST_F(HttpFrontTest, ShutdownClosesOpenStreams) {
  Start();
  RawTcp client(front_->port());
  ASSERT_TRUE(client.ok());
  client.Send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_THAT(client.ReadUntil("first\n", 1, kPatience), HasSubstr("first"));
  front_->Shutdown();
  EXPECT_EQ(StreamsClosed(), 1);
  EXPECT_FALSE(LatestStream()->Push("after"));
}

TEST_F(HttpFrontTest, TrickledHeadersAreCutOffAtTheRequestTimeout) {
  options_.request_timeout = absl::Seconds(1);
  Start();
  RawTcp slow(front_->port());
  ASSERT_TRUE(slow.ok());
  slow.Send("GET /slow HTTP/1.1\r\n");
  // A byte every 200 ms: no read ever waits long, the request never ends.
  std::string answer;
  for (int i = 0; i < 50 && answer.empty(); ++i) {
    slow.Send("X");
    answer = slow.ReadUntil("}", 1, absl::Milliseconds(200));
  }
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 408 "));
  EXPECT_THAT(answer, HasSubstr("request not complete within 1s"));
  EXPECT_TRUE(slow.ClosedByPeer(kPatience));
  EXPECT_EQ(front_->timed_out(), 1u);
}

TEST_F(HttpFrontTest, IdleKeepAliveConnectionsAreClosed) {
  options_.idle_timeout = absl::Seconds(1);
  Start();
  RawTcp client(front_->port());
  ASSERT_TRUE(client.ok());
  client.Send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("/a", 1, kPatience), StartsWith("HTTP/1.1 200"));
  EXPECT_TRUE(client.ClosedByPeer(kPatience));
  EXPECT_EQ(front_->timed_out(), 1u);
}

TEST_F(HttpFrontTest, PerClientCapRefusesTheExtraConnectionOnly) {
  options_.max_connections_per_client = 3;
  Start();
  std::vector<std::unique_ptr<RawTcp>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawTcp>(front_->port()));
    ASSERT_TRUE(held.back()->ok());
  }
  std::string refused = Get("/x");
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(refused, HasSubstr("too many connections from your address"));
  EXPECT_EQ(front_->refused_connections(), 1u);
  // Another address is still served, and so is this one once one closes.
  EXPECT_THAT(Get("/other", "127.0.0.2"), HasSubstr("\r\n\r\n/other"));
  held.pop_back();
  EXPECT_TRUE(WaitUntil(
      [&] { return Get("/again").find("/again") != std::string::npos; },
      kPatience));
}

TEST_F(HttpFrontTest, TotalCapRefusesEveryAddress) {
  options_.max_connections = 2;
  Start();
  RawTcp first(front_->port(), "127.0.0.3");
  RawTcp second(front_->port(), "127.0.0.4");
  ASSERT_TRUE(first.ok() && second.ok());
  std::string refused = Get("/x", "127.0.0.5");
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(refused, HasSubstr("too many connections to this server"));
}

TEST_F(HttpFrontTest, OversizedHeadersGet431) {
  options_.max_header_bytes = 1024;
  options_.max_header_lines = 10;
  Start();
  {
    RawTcp client(front_->port());
    client.Send(absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(2000, 'a')));
    std::string answer = client.ReadUntilClose(kPatience);
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 431 "));
    EXPECT_THAT(answer, HasSubstr("exceed 1024 bytes"));
  }
  {
    RawTcp client(front_->port());
    std::string request = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 11; ++i) absl::StrAppend(&request, "H", i, ": v\r\n");
    client.Send(absl::StrCat(request, "\r\n"));
    std::string answer = client.ReadUntilClose(kPatience);
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 431 "));
    EXPECT_THAT(answer, HasSubstr("more than 10 header lines"));
  }
  // Ten lines are fine.
  RawTcp client(front_->port());
  std::string request = "GET /ten HTTP/1.1\r\n";
  for (int i = 0; i < 10; ++i) absl::StrAppend(&request, "H", i, ": v\r\n");
  client.Send(absl::StrCat(request, "\r\n"));
  EXPECT_THAT(client.ReadUntil("/ten", 1, kPatience),
              StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpFrontTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  RawTcp client(front_->port());
  client.Send(
      "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string answers = client.ReadUntil("\r\n\r\n/3", 1, kPatience);
  size_t one = answers.find("\r\n\r\n/1");
  size_t two = answers.find("\r\n\r\n/2");
  size_t health = answers.find("\r\n\r\n/healthz");
  size_t three = answers.find("\r\n\r\n/3");
  ASSERT_NE(three, std::string::npos) << answers;
  EXPECT_LT(one, two);
  EXPECT_LT(two, health);
  EXPECT_LT(health, three);
}

TEST_F(HttpFrontTest, BodiesWithinTheLimitArriveWholeLargerOnesClose) {
  options_.max_body_bytes = 16;
  Start();
  RawTcp client(front_->port());
  // The body arrives after the headers, in two parts.
  client.Send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234");
  absl::SleepFor(absl::Milliseconds(100));
  client.Send("56789");
  std::string answer = client.ReadUntil("0123456789", 1, kPatience);
  EXPECT_THAT(answer, HasSubstr("\r\n\r\n0123456789"));
  EXPECT_FALSE(last_close_after_);
  // Over the limit: headers only, and the connection's last reply.
  client.Send("POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
  std::string last = client.ReadUntilClose(kPatience);
  EXPECT_THAT(last, HasSubstr("Content-Length: 17\r\n\r\n"));
  EXPECT_TRUE(last_close_after_);
}

TEST_F(HttpFrontTest, ReplyInPiecesArrivesWholeAndInOrder) {
  Start();
  RawTcp client(front_->port());
  client.Send("GET /pieces HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
  std::string answer = client.ReadUntil("\r\n\r\n/next", 1, kPatience);
  size_t body = answer.find("\r\n\r\n") + 4;
  ASSERT_GE(answer.size(), body + 3072000) << answer.substr(0, 200);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(answer[body + static_cast<size_t>(i) * 10240],
              static_cast<char>('a' + i % 26))
        << "piece " << i;
  }
  EXPECT_EQ(answer.substr(body + 3072000, 17), "HTTP/1.1 200 OK\r\n");
}

// A pulled body is made as the client reads it: while the client reads
// nothing only what the sockets' buffers hold is made (a few MB of 100), and
// once it reads, the whole body arrives in order and the connection goes on
// to the next request.
TEST_F(HttpFrontTest, APulledBodyIsMadeOnlyAsTheClientReads) {
  Start();
  RawTcp client(front_->port());
  int small = 64 * 1024;
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  client.Send("GET /parts HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return parts_made_ >= 2; }, kPatience));
  absl::SleepFor(absl::Milliseconds(500));
  // Loopback send buffers grow to a few MB (tcp_wmem); 40 parts are 10 MB.
  EXPECT_LT(parts_made_.load(), 40);
  std::string answer = client.ReadUntil("\r\n\r\n/next", 1, kPatience);
  const size_t body = answer.find("\r\n\r\n") + 4;
  const size_t length = kBodyParts * PartsBody::kPartBytes;
  ASSERT_GE(answer.size(), body + length) << answer.substr(0, 200);
  for (size_t i = 0; i < kBodyParts; ++i) {
    ASSERT_EQ(answer[body + i * PartsBody::kPartBytes],
              static_cast<char>('a' + i % 26))
        << "part " << i;
    ASSERT_EQ(answer[body + (i + 1) * PartsBody::kPartBytes - 1],
              static_cast<char>('a' + i % 26))
        << "part " << i;
  }
  EXPECT_EQ(answer.substr(body + length), Ok("/next"));
  EXPECT_EQ(parts_made_.load(), kBodyParts);
}

// A client that stops reading a pulled body holds no worker (the only one
// answers others meanwhile), is dropped at the write timeout, and the body
// is released with it.
TEST_F(HttpFrontTest, AStalledPulledBodyHoldsNoWorkerAndIsReleased) {
  options_.workers = 1;
  options_.write_timeout = absl::Seconds(1);
  Start();
  std::weak_ptr<HttpBody> body;
  {
    RawTcp stalled(front_->port());
    stalled.Send("GET /parts HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(WaitUntil([&] { return parts_made_ >= 2; }, kPatience));
    {
      std::lock_guard<std::mutex> lock(mu_);
      body = body_;
    }
    EXPECT_THAT(Get("/meanwhile"), HasSubstr("\r\n\r\n/meanwhile"));
    EXPECT_TRUE(WaitUntil([&] { return front_->timed_out() == 1; }, kPatience));
  }
  EXPECT_TRUE(WaitUntil([&] { return body.expired(); }, kPatience));
  EXPECT_LT(parts_made_.load(), kBodyParts);
}

TEST_F(HttpFrontTest, HalfClosedClientStillGetsItsReply) {
  Start();
  RawTcp client(front_->port());
  client.Send("GET /half HTTP/1.0\r\n\r\n");
  client.ShutdownWrite();
  EXPECT_THAT(client.ReadUntilClose(kPatience), HasSubstr("\r\n\r\n/half"));
}

TEST_F(HttpFrontTest, HealthAnswersWhileEveryWorkerIsBusyAndFullQueueGets503) {
  options_.workers = 1;
  options_.max_queued = 1;
  Start();
  RawTcp busy(front_->port());
  busy.Send("GET /block HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(WaitUntil([&] { return Blocked() == 1; }, kPatience));
  RawTcp queued(front_->port());
  queued.Send("GET /queued HTTP/1.1\r\n\r\n");
  absl::SleepFor(absl::Milliseconds(200));
  std::string refused = Get("/refused");
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(refused, HasSubstr("server busy"));
  EXPECT_EQ(front_->refused_requests(), 1u);
  EXPECT_THAT(Get("/healthz"), HasSubstr("\r\n\r\n/healthz"));
  Release();
  EXPECT_THAT(busy.ReadUntil("/block", 1, kPatience), HasSubstr("/block"));
  EXPECT_THAT(queued.ReadUntil("/queued", 1, kPatience), HasSubstr("/queued"));
}

TEST_F(HttpFrontTest, ClientThatDoesNotReadIsDroppedAtTheWriteTimeout) {
  options_.write_timeout = absl::Seconds(1);
  Start();
  RawTcp sink(front_->port());
  sink.Send("GET /big HTTP/1.1\r\n\r\n");  // 64 MB, never read
  EXPECT_TRUE(WaitUntil([&] { return front_->timed_out() == 1; }, kPatience));
  EXPECT_THAT(Get("/meanwhile"), HasSubstr("\r\n\r\n/meanwhile"));
}

TEST_F(HttpFrontTest, MalformedRequestLinesGet400AndClose) {
  Start();
  for (const char* line :
       {"HEAD\t\t/ HTTP/1.1", "GET  / HTTP/1.1", "GET / HTTP/2.0", "GET /",
        "G(T / HTTP/1.1", "", "GET /a b HTTP/1.1"}) {
    RawTcp client(front_->port());
    client.Send(absl::StrCat(line, "\r\nHost: t\r\n\r\n"));
    std::string answer = client.ReadUntilClose(kPatience);
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 400 Bad Request\r\n")) << line;
    EXPECT_THAT(answer, HasSubstr("malformed request line")) << line;
  }
  EXPECT_THAT(Get("/fine"), HasSubstr("\r\n\r\n/fine"));
}

TEST_F(HttpFrontTest, GarbageIsRefusedAndTheLoopKeepsServing) {
  Start();
  for (int i = 0; i < 50; ++i) {
    RawTcp client(front_->port());
    client.Send(std::string(
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 16));
    client.ReadUntil("HTTP/1.1 ", 1, kPatience);
  }
  EXPECT_THAT(Get("/after"), HasSubstr("\r\n\r\n/after"));
}

TEST(HttpFrontStartTest, PortInUseIsAClearError) {
  auto handler = [](const HttpExchange&) { return HttpReply{}; };
  auto body = [](int, absl::string_view) { return std::string(); };
  auto first = HttpFront::Start("127.0.0.1", 0, HttpFrontOptions(), handler,
                                nullptr, body);
  ASSERT_THAT(first, IsOk());
  auto second = HttpFront::Start("127.0.0.1", (*first)->port(),
                                 HttpFrontOptions(), handler, nullptr, body);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("address in use"));
}

}  // namespace
}  // namespace latency
