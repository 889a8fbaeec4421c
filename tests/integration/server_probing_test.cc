// latency-server's probers against real sockets: ICMP to 127.0.0.1 and ::1
// (raw as root, or datagram when ping_group_range allows) and gRPC to a real
// agent on loopback. Assertions count samples, never time them.
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "agent/agent_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_app.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::WaitUntil;

constexpr absl::Duration kInterval = absl::Milliseconds(200);

// Collects samples from the store, thread-safely.
class Collector {
 public:
  explicit Collector(ResultStore& store) : store_(store) {
    id_ = store_.Subscribe([this](const Sample& sample) {
      absl::MutexLock lock(&mu_);
      samples_.push_back(sample);
    });
  }
  ~Collector() { store_.Unsubscribe(id_); }

  std::vector<Sample> Of(int target, ProbeKind kind) {
    absl::MutexLock lock(&mu_);
    std::vector<Sample> out;
    for (const Sample& s : samples_) {
      if (s.target_index == target && s.kind == kind) out.push_back(s);
    }
    return out;
  }

 private:
  ResultStore& store_;
  int id_ = -1;
  absl::Mutex mu_;
  std::vector<Sample> samples_ ABSL_GUARDED_BY(mu_);
};

class ServerProbingTest : public ::testing::Test {
 protected:
  void StartAgent(int port = 0) {
    AgentOptions options;
    options.listen = absl::StrCat("127.0.0.1:", port);
    options.drain_timeout = absl::Milliseconds(100);
    auto agent = AgentServer::Start(options, RealClockInstance());
    ASSERT_THAT(agent, IsOk());
    agent_ = std::move(*agent);
  }

  void StartServer(std::vector<TargetSpec> targets) {
    bool needs_icmp = false;
    for (const TargetSpec& t : targets) needs_icmp |= t.icmp_enabled;
    ServerOptions options;
    options.targets = std::move(targets);
    options.report_interval = absl::ZeroDuration();
    options.grpc_listen = "127.0.0.1:0";
    options.http_listen = "127.0.0.1:0";
    auto app = ServerApp::Start(options, RealClockInstance());
    ASSERT_THAT(app, IsOk());
    app_ = std::move(*app);
    if (needs_icmp && !app_->icmp_available()) {
      GTEST_SKIP() << "no ICMP socket: run as root, or allow this group in "
                      "net.ipv4.ping_group_range";
    }
  }

  TargetSpec Target(const std::string& name, const std::string& host,
                    bool grpc) {
    TargetSpec spec;
    spec.name = name;
    spec.host = host;
    spec.grpc_port = static_cast<uint16_t>(agent_ ? agent_->port() : 1);
    spec.interval = kInterval;
    spec.timeout = absl::Milliseconds(150);
    spec.grpc_enabled = grpc;
    return spec;
  }

  std::unique_ptr<AgentServer> agent_;
  std::unique_ptr<ServerApp> app_;
};

TEST_F(ServerProbingTest, IcmpAndGrpcSamplesEveryIntervalWithKernelStamps) {
  StartAgent();
  StartServer({Target("v4", "127.0.0.1", true), Target("v6", "::1", false)});
  Collector collector(app_->store());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return collector.Of(0, ProbeKind::kIcmp).size() >= 6 &&
               collector.Of(1, ProbeKind::kIcmp).size() >= 6 &&
               collector.Of(0, ProbeKind::kGrpc).size() >= 6;
      },
      absl::Seconds(30)));

  for (int target : {0, 1}) {
    std::vector<Sample> icmp = collector.Of(target, ProbeKind::kIcmp);
    for (size_t i = 0; i < icmp.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("target ", target, " icmp #", i));
      ASSERT_EQ(icmp[i].result, SampleResult::kOk) << icmp[i].error;
      EXPECT_GT(*icmp[i].rtt_ns, 0);
      EXPECT_LT(*icmp[i].rtt_ns, 100'000'000);  // loopback: far below 100 ms
      EXPECT_EQ(icmp[i].timestamp_source, TimestampSource::kKernel);
      if (i > 0) {
        // Fixed rate: scheduled times are exactly one interval apart.
        EXPECT_EQ(icmp[i].scheduled_ns - icmp[i - 1].scheduled_ns,
                  absl::ToInt64Nanoseconds(kInterval));
      }
    }
  }
  std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
  // The first probe may race the connection; every later one succeeds.
  for (size_t i = 1; i < grpc.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("grpc #", i));
    ASSERT_EQ(grpc[i].result, SampleResult::kOk) << grpc[i].error;
    ASSERT_TRUE(grpc[i].agent_time_ns.has_value());
    EXPECT_GE(*grpc[i].agent_time_ns, 0);
    EXPECT_LE(*grpc[i].network_rtt_ns(), *grpc[i].rtt_ns);
  }
  EXPECT_EQ(app_->store().TargetStatus(0), ProbeStatus::kOk);
  EXPECT_EQ(app_->store().Probe(1, ProbeKind::kIcmp).status, ProbeStatus::kOk);
}

// SIGHUP with unchanged settings (e.g. a certificate rotation): probers,
// channels, counters and subscriptions carry on; a change starts afresh.
TEST_F(ServerProbingTest, ReloadWithUnchangedSettingsRestartsNothing) {
  StartAgent();
  TargetSpec target = Target("a", "127.0.0.1", true);
  target.icmp_enabled = false;
  StartServer({target});
  bool closed = false;
  ResultStore& store = app_->store();
  int id = store.Subscribe([](const Sample&) {}, [&closed] { closed = true; });
  Collector collector(store);
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(0, ProbeKind::kGrpc).size() >= 2; },
                absl::Seconds(30)));
  std::shared_ptr<ProbingSession> before = app_->Session();

  ASSERT_THAT(app_->ReloadTargets({target}, StatusThresholds()), IsOk());
  EXPECT_EQ(app_->Session(), before);
  EXPECT_FALSE(closed);

  target.interval = 2 * kInterval;
  ASSERT_THAT(app_->ReloadTargets({target}, StatusThresholds()), IsOk());
  EXPECT_NE(app_->Session(), before);
  EXPECT_TRUE(closed);
  store.Unsubscribe(id);
}

// A name resolves on the session's resolver threads; gRPC then probes the
// address it resolved to (the one shown, the one ICMP would probe).
TEST_F(ServerProbingTest, ANamedTargetIsProbedAtItsResolvedAddress) {
  StartAgent();
  TargetSpec target = Target("named", "localhost", true);
  target.icmp_enabled = false;
  target.family = AddressFamily::kIpv4;
  StartServer({target});
  Collector collector(app_->store());
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
        return !grpc.empty() && grpc.back().ok();
      },
      absl::Seconds(30)));
  EXPECT_EQ(app_->Session()->AddressOf(0), "127.0.0.1");
}

TEST_F(ServerProbingTest, AgentDownWithinThreeProbesAndBackWithoutRestart) {
  StartAgent();
  int port = agent_->port();
  StartServer({Target("agent", "127.0.0.1", true)});
  Collector collector(app_->store());
  ResultStore& store = app_->store();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return store.Probe(0, ProbeKind::kGrpc).status == ProbeStatus::kOk;
      },
      absl::Seconds(30)));

  agent_->Shutdown();
  agent_.reset();
  size_t before_kill = collector.Of(0, ProbeKind::kGrpc).size();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return store.Probe(0, ProbeKind::kGrpc).status == ProbeStatus::kDown;
      },
      absl::Seconds(30)));
  // Down after at most down_after_failures (3) probes, plus one that may
  // have been in flight at the kill.
  EXPECT_LE(collector.Of(0, ProbeKind::kGrpc).size() - before_kill, 4u);
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).status, ProbeStatus::kOk);

  StartAgent(port);
  size_t before_restart = collector.Of(0, ProbeKind::kGrpc).size();
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
        return grpc.size() > before_restart && grpc.back().ok();
      },
      absl::Seconds(30)));
  // Reconnect backoff is capped at the interval: seen again within 3 probes.
  EXPECT_LE(collector.Of(0, ProbeKind::kGrpc).size() - before_restart, 3u);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return store.Probe(0, ProbeKind::kGrpc).status != ProbeStatus::kDown;
      },
      absl::Seconds(5)));
  std::vector<Sample> icmp = collector.Of(0, ProbeKind::kIcmp);
  for (const Sample& s : icmp) EXPECT_EQ(s.result, SampleResult::kOk);
}

TEST_F(ServerProbingTest, StreamModeProbesOnOneLongLivedStream) {
  StartAgent();
  TargetSpec target = Target("stream", "127.0.0.1", true);
  target.grpc_mode = GrpcProbeMode::kStream;
  target.icmp_enabled = false;
  StartServer({target});
  Collector collector(app_->store());
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(0, ProbeKind::kGrpc).size() >= 5; },
                absl::Seconds(30)));
  std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
  for (size_t i = 1; i < grpc.size(); ++i) {
    EXPECT_EQ(grpc[i].result, SampleResult::kOk) << grpc[i].error;
    EXPECT_TRUE(grpc[i].agent_time_ns.has_value());
  }
}

TEST_F(ServerProbingTest, ADeadAgentDoesNotDisturbALiveOne) {
  StartAgent();
  TargetSpec dead = Target("dead", "127.0.0.1", true);
  dead.grpc_port = 1;  // nothing listens: connection refused
  StartServer({dead, Target("live", "127.0.0.1", true)});
  Collector collector(app_->store());
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(1, ProbeKind::kGrpc).size() >= 6; },
                absl::Seconds(30)));
  std::vector<Sample> live = collector.Of(1, ProbeKind::kGrpc);
  for (size_t i = 1; i < live.size(); ++i) {
    EXPECT_EQ(live[i].result, SampleResult::kOk) << live[i].error;
  }
  std::vector<Sample> refused = collector.Of(0, ProbeKind::kGrpc);
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused.back().result, SampleResult::kUnreachable);
  EXPECT_THAT(refused.back().error, ::testing::HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace latency
