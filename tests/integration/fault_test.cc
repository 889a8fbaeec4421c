// Abuse and failure against the real binaries: malformed HTTP by the
// thousand, garbage and oversized gRPC, slow clients, kill -9 of the agent,
// SIGTERM under load. The server must keep answering, stay bounded in
// memory and exit cleanly.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.grpc.pb.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;

// Resident set size of a process in KiB (VmRSS), 0 when unreadable.
int64_t RssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// Whether `reply` holds a whole response (headers plus Content-Length body).
bool ResponseComplete(const std::string& reply) {
  size_t end = reply.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  size_t length_at = reply.find("Content-Length: ");
  if (length_at == std::string::npos || length_at > end) return true;
  size_t length = std::strtoul(reply.c_str() + length_at + 16, nullptr, 10);
  return reply.size() >= end + 4 + length;
}

// Sends `bytes` on a fresh loopback connection and returns what comes back
// before the server closes or 2 s pass. With `half_close` the client shuts
// its sending side right after the request.
std::string RawExchange(int port, const std::string& bytes,
                        bool half_close = true) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0) {
      if (half_close) shutdown(fd, SHUT_WR);
      char buffer[4096];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        reply.append(buffer, n);
        if (ResponseComplete(reply)) break;  // keep-alive: don't wait for close
      }
    }
  }
  close(fd);
  return reply;
}

// Well-formed requests, then cut, mutated and nonsense variants.
std::string MutatedRequest(std::mt19937& random, int i) {
  static const std::string kValid[] = {
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /v1/targets/lo/stats?window=5m HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /metrics?format=prometheus HTTP/1.1\r\nAccept: text/plain\r\n\r\n",
      "POST /v1/targets HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
  };
  std::string request = kValid[i % 4];
  switch (i % 6) {
    case 0:  // truncated anywhere
      request.resize(random() % request.size());
      break;
    case 1:  // random byte flips
      for (int k = 0; k < 4; ++k)
        request[random() % request.size()] = static_cast<char>(random());
      break;
    case 2:  // absurd header
      request.insert(request.find("\r\n") + 2,
                     "X-Big: " + std::string(20000, 'a') + "\r\n");
      break;
    case 3:  // lying Content-Length
      request =
          "POST /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\nabc";
      break;
    case 4:  // binary noise
      request.assign(64 + random() % 512, '\0');
      for (char& c : request) c = static_cast<char>(random());
      break;
    default:  // path traversal and encoding games
      request =
          "GET /v1/targets/%2e%2e%2f%00/stats?window=%ff HTTP/1.1\r\n\r\n";
  }
  return request;
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
    ASSERT_TRUE(agent.has_value()) << error;
    agent_.emplace(std::move(*agent));
    std::optional<ServerProcess> server = testing::StartServer(
        {absl::StrCat("--target=lo=127.0.0.1:", agent_->port),
         "--interval=200ms", "--report_interval=0"},
        &error);
    ASSERT_TRUE(server.has_value()) << error;
    server_.emplace(std::move(*server));
  }

  bool MetricsAnswer() {
    auto r = RunCommand({"curl", "-s", "-m", "5", "-o", "/dev/null", "-w",
                         "%{http_code}", server_->http_url("/metrics")});
    return r.output == "200";
  }

  std::optional<AgentProcess> agent_;
  std::optional<ServerProcess> server_;
};

TEST_F(FaultTest, TenThousandMalformedHttpRequests) {
  std::mt19937 random(42);
  std::map<std::string, int> replies;  // status line prefix -> count
  int64_t rss_after_warmup = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string reply =
        RawExchange(server_->http_port, MutatedRequest(random, i));
    replies[reply.empty() ? "closed" : reply.substr(0, 12)]++;
    if (i == 999) rss_after_warmup = RssKib(server_->process.pid());
  }
  for (const auto& [prefix, count] : replies) {
    std::cout << "  " << prefix << ": " << count << "\n";
  }
  int server_errors = 0;
  for (const auto& [prefix, count] : replies) {
    if (prefix.rfind("HTTP/1.1 5", 0) == 0) server_errors += count;
  }
  int64_t rss_end = RssKib(server_->process.pid());
  EXPECT_TRUE(MetricsAnswer());
  // The client half-closes after each request, and cpp-httplib then often
  // closes without answering; what matters is that garbage never reaches a
  // 5xx, never kills the server and never bloats it.
  EXPECT_EQ(server_errors, 0);
  EXPECT_GT(replies["HTTP/1.1 400"], 0);
  ASSERT_GT(rss_after_warmup, 0);
  EXPECT_LT(rss_end, rss_after_warmup + 16 * 1024)
      << "RSS grew from " << rss_after_warmup << " KiB to " << rss_end
      << " KiB";
}

TEST_F(FaultTest, CompleteButBadRequestsGetTheirStatus) {
  // Without the half-close, every complete bad request gets its 4xx.
  const std::pair<std::string, std::string> kCases[] = {
      {"\x16\x03\x01garbage\r\n\r\n", "HTTP/1.1 400"},
      {"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 404"},
      {"DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 405"},
      {"GET /v1/targets/lo/stats?window=9y HTTP/1.1\r\nConnection: "
       "close\r\n\r\n",
       "HTTP/1.1 400"},
      // cpp-httplib drains a declared body before answering 413.
      {"POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: "
       "100000\r\n\r\n" +
           std::string(100000, 'b'),
       "HTTP/1.1 413"},
  };
  for (int round = 0; round < 20; ++round) {
    for (const auto& [request, status] : kCases) {
      std::string reply =
          RawExchange(server_->http_port, request, /*half_close=*/false);
      EXPECT_EQ(reply.substr(0, 12), status) << request;
    }
  }
}

TEST_F(FaultTest, GarbageAndHugeAndSlowGrpc) {
  // Not HTTP/2 at all, and a valid preface followed by junk frames.
  RawExchange(server_->grpc_port, std::string(4096, '\x7f'));
  RawExchange(server_->grpc_port,
              std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                  std::string(1000, '\xff'));
  // A request far over the 64 KiB limit gets RESOURCE_EXHAUSTED.
  auto stub = v1::LatencyService::NewStub(grpc::CreateChannel(
      server_->grpc_address(), grpc::InsecureChannelCredentials()));
  v1::GetTargetStatsRequest huge;
  huge.set_target(std::string(1 << 20, 'x'));
  v1::GetTargetStatsResponse response;
  grpc::ClientContext huge_context;
  EXPECT_EQ(stub->GetTargetStats(&huge_context, huge, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Slow clients: connections that send half a preface and stall.
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server_->grpc_port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
        0) {
      send(fd, "PRI * HTTP/2.0\r\n", 16, MSG_NOSIGNAL);
    }
    slow.push_back(fd);
  }
  // Everyone else is still served while they hang.
  v1::GetLatencyRequest request;
  v1::GetLatencyResponse latency;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  EXPECT_TRUE(stub->GetLatency(&context, request, &latency).ok());
  EXPECT_TRUE(MetricsAnswer());
  for (int fd : slow) close(fd);
}

TEST_F(FaultTest, AgentKillNineThenRestartRecoversWithoutServerRestart) {
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = RunCommand({"curl", "-s", server_->http_url("/metrics")});
        return absl::StrContains(r.output, "\"grpc_status\":\"ok\"");
      },
      absl::Seconds(30)));
  int port = agent_->port;
  agent_->process.Signal(SIGKILL);
  agent_->process.Wait(absl::Seconds(10));
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = RunCommand({"curl", "-s", server_->http_url("/metrics")});
        return absl::StrContains(r.output, "\"grpc_status\":\"down\"") &&
               absl::StrContains(r.output, "\"icmp_status\":\"ok\"");
      },
      absl::Seconds(30)));
  std::optional<testing::Subprocess> restarted = testing::Subprocess::Start(
      {testing::AgentBinaryPath(), absl::StrCat("--listen=127.0.0.1:", port)});
  ASSERT_TRUE(restarted.has_value());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = RunCommand({"curl", "-s", server_->http_url("/metrics")});
        return absl::StrContains(r.output, "\"grpc_status\":\"ok\"");
      },
      absl::Seconds(30)))
      << server_->process.Output();
}

TEST_F(FaultTest, SigtermUnderLoadDrainsAndExitsZero) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      auto stub = v1::LatencyService::NewStub(grpc::CreateChannel(
          server_->grpc_address(), grpc::InsecureChannelCredentials()));
      while (!stop) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(2));
        if (t % 2 == 0) {
          v1::ListTargetsResponse r;
          stub->ListTargets(&context, {}, &r);
        } else {
          RawExchange(server_->http_port, "GET /metrics HTTP/1.1\r\n\r\n");
        }
      }
    });
  }
  // An open Watch stream must not hold shutdown up either.
  auto stub = v1::LatencyService::NewStub(grpc::CreateChannel(
      server_->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_context;
  auto watch = stub->Watch(&watch_context, v1::WatchRequest());
  v1::WatchResponse first;
  ASSERT_TRUE(watch->Read(&first));

  server_->process.Signal(SIGTERM);
  std::optional<int> code = server_->process.Wait(absl::Seconds(20));
  stop = true;
  for (auto& thread : load) thread.join();
  ASSERT_TRUE(code.has_value()) << "server did not exit after SIGTERM";
  EXPECT_EQ(*code, 0) << server_->process.Output();
  EXPECT_THAT(server_->process.Output(), HasSubstr("latency-server stopped"));
}

}  // namespace
}  // namespace latency
