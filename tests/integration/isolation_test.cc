// "A dead or hung target does not delay another", with real processes and
// sockets instead of a fake EchoClient: a latency-agent stopped with SIGSTOP
// (the kernel still completes TCP handshakes, nothing ever answers) and a
// blackholed port (a listener whose accept queue is full: SYNs are dropped)
// beside a live agent. Two real probers run in the same window, one probing
// the live agent alone and one probing it next to the dead ones; the live
// target's probes must all be sent on schedule and answered, with an RTT
// that did not move by anything near a probe timeout. Bounds are loose on
// purpose (loaded 2-core machine): the failure they catch is a probe
// waiting behind a dead target, which costs a whole timeout (300 ms).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_app.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::IsOk;
using ::latency::testing::WaitUntil;

constexpr absl::Duration kInterval = absl::Milliseconds(100);
constexpr absl::Duration kTimeout = absl::Milliseconds(300);
constexpr size_t kLiveSamples = 40;

// A TCP port on 127.0.0.1 that never answers a connection: listening with
// a backlog of 0, its accept queue filled by our own connections, so the
// kernel drops every further SYN (the client keeps retransmitting).
class BlackholePort {
 public:
  BlackholePort() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener_, 0) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    // Fill the accept queue (backlog 0 holds one; take a few to be sure).
    for (int i = 0; i < 4; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(fd);
    }
  }
  ~BlackholePort() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

// Samples of one target and kind from a store, thread-safely.
class Collector {
 public:
  Collector(ResultStore& store, int target) : store_(store), target_(target) {
    id_ = store_.Subscribe([this](const Sample& sample) {
      if (sample.target_index != target_ || sample.kind != ProbeKind::kGrpc) {
        return;
      }
      absl::MutexLock lock(&mu_);
      samples_.push_back(sample);
    });
  }
  ~Collector() { store_.Unsubscribe(id_); }
  std::vector<Sample> Samples() {
    absl::MutexLock lock(&mu_);
    return samples_;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return samples_.size();
  }

 private:
  ResultStore& store_;
  const int target_;
  int id_ = -1;
  absl::Mutex mu_;
  std::vector<Sample> samples_ ABSL_GUARDED_BY(mu_);
};

TargetSpec GrpcTarget(const std::string& name, int port) {
  TargetSpec spec;
  spec.name = name;
  spec.host = "127.0.0.1";
  spec.grpc_port = static_cast<uint16_t>(port);
  spec.interval = kInterval;
  spec.timeout = kTimeout;
  spec.icmp_enabled = false;
  return spec;
}

absl::StatusOr<std::unique_ptr<ServerApp>> StartProber(
    std::vector<TargetSpec> targets) {
  ServerOptions options;
  options.targets = std::move(targets);
  options.report_interval = absl::ZeroDuration();
  options.grpc_listen = "";
  options.http_listen = "";
  return ServerApp::Start(options, RealClockInstance());
}

int64_t Median(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(IsolationTest, StoppedAndBlackholedAgentsDoNotDelayALiveOne) {
  std::string error;
  std::optional<AgentProcess> live = testing::StartAgent({}, &error);
  ASSERT_TRUE(live.has_value()) << error;
  std::optional<AgentProcess> stopped = testing::StartAgent({}, &error);
  ASSERT_TRUE(stopped.has_value()) << error;
  stopped->process.Signal(SIGSTOP);
  BlackholePort hole;
  ASSERT_GT(hole.port(), 0);

  auto alone = StartProber({GrpcTarget("live", live->port)});
  ASSERT_THAT(alone, IsOk());
  auto beside = StartProber({GrpcTarget("stopped", stopped->port),
                             GrpcTarget("hole", hole.port()),
                             GrpcTarget("live", live->port)});
  ASSERT_THAT(beside, IsOk());
  Collector alone_live((*alone)->store(), 0);
  Collector stopped_samples((*beside)->store(), 0);
  Collector hole_samples((*beside)->store(), 1);
  Collector beside_live((*beside)->store(), 2);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return alone_live.size() >= kLiveSamples &&
               beside_live.size() >= kLiveSamples;
      },
      absl::Seconds(60)));
  std::vector<Sample> a = alone_live.Samples();
  std::vector<Sample> b = beside_live.Samples();
  stopped->process.Signal(SIGCONT);

  // The dead targets really were dead, and probed all along.
  for (Collector* dead : {&stopped_samples, &hole_samples}) {
    std::vector<Sample> samples = dead->Samples();
    EXPECT_GE(samples.size(), kLiveSamples / 2);
    for (const Sample& s : samples) {
      EXPECT_FALSE(s.ok()) << "a dead target answered";
    }
  }

  // Every live probe beside them was sent on schedule (sequence without
  // gaps: none skipped; send lag far below a timeout) and answered; the
  // first may race the connection.
  for (const std::vector<Sample>* live_samples : {&a, &b}) {
    int failed = 0;
    int late = 0;
    for (size_t i = 0; i < live_samples->size(); ++i) {
      const Sample& s = (*live_samples)[i];
      EXPECT_EQ(s.sequence, (*live_samples)[0].sequence + i);
      if (i > 0 && !s.ok()) ++failed;
      if (s.sent_ns - s.scheduled_ns > 50'000'000) ++late;
    }
    EXPECT_LE(late, static_cast<int>(live_samples->size() / 10))
        << "probes sent more than 50 ms after their schedule";
    EXPECT_EQ(failed, 0) << (live_samples == &b ? "beside dead targets"
                                                : "alone");
  }
  auto rtts = [](const std::vector<Sample>& samples) {
    std::vector<int64_t> out;
    for (size_t i = 1; i < samples.size(); ++i) {
      if (samples[i].ok()) out.push_back(*samples[i].rtt_ns);
    }
    return out;
  };
  std::vector<int64_t> rtt_alone = rtts(a);
  std::vector<int64_t> rtt_beside = rtts(b);
  ASSERT_FALSE(rtt_alone.empty());
  ASSERT_FALSE(rtt_beside.empty());
  int64_t median_alone = Median(rtt_alone);
  int64_t median_beside = Median(rtt_beside);
  std::cout << "live target gRPC median: alone " << median_alone / 1000
            << " us, beside a stopped and a blackholed agent "
            << median_beside / 1000 << " us\n";
  // Waiting behind a dead target would cost a timeout (300 ms); loopback
  // noise on a loaded machine stays far below 30 ms.
  EXPECT_LT(median_beside, median_alone + 30'000'000);
  int slow = 0;
  for (int64_t rtt : rtt_beside) slow += rtt > 150'000'000 ? 1 : 0;
  EXPECT_LE(slow, static_cast<int>(rtt_beside.size() / 10))
      << "probes beside dead targets took more than half a timeout";
}

}  // namespace
}  // namespace latency
