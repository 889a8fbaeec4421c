// latency-server's probers against real sockets: ICMP to 127.0.0.1 and ::1
// (raw as root, or datagram when ping_group_range allows) and gRPC to a real
// agent on loopback. Assertions count samples, never time them; with a
// 150 ms probe timeout on a loaded 2-core machine (ctest -j2, TSan) a rare
// loopback probe can time out, so outcomes are counted against bounds that
// still catch a prober whose probes fail (at most a third may fail).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/agent_server.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "latency/v1/latency.grpc.pb.h"
#include "server/server_app.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::WaitUntil;

constexpr absl::Duration kInterval = absl::Milliseconds(200);

// Failed samples of `samples` from index `from` on.
int Failures(const std::vector<Sample>& samples, size_t from = 0) {
  int failed = 0;
  for (size_t i = from; i < samples.size(); ++i) {
    if (!samples[i].ok()) ++failed;
  }
  return failed;
}

// At most a third failed: a rare timeout on a loaded machine, not a
// prober whose probes fail.
bool MostlyOk(const std::vector<Sample>& samples, size_t from = 0) {
  return 3 * Failures(samples, from) <= static_cast<int>(samples.size() - from);
}

// Runs a fixture helper and stops the test when it failed or skipped:
// GTEST_SKIP and ASSERT_* inside a helper only return from the helper.
#define RUN_OR_STOP(call)          \
  do {                             \
    ASSERT_NO_FATAL_FAILURE(call); \
    if (IsSkipped()) return;       \
  } while (0)

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

// An echo service that counts how the prober calls it: unary Echo calls
// (answered, so a fallback to unary would look healthy) and streams opened.
// With stall_after >= 0, the first stream to answer that many requests
// stops answering (it still reads, and drops what it reads), as a hung
// agent stream would; later streams answer normally.
class CountingEchoService final : public v1::EchoService::CallbackService {
 public:
  explicit CountingEchoService(int stall_after = -1)
      : stall_after_(stall_after) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoRequest* request,
                                 v1::EchoResponse* response) override {
    ++unary_calls_;
    Fill(*request, response);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerBidiReactor<v1::EchoRequest, v1::EchoResponse>* EchoStream(
      grpc::CallbackServerContext*) override {
    ++streams_;
    return new Stream(this);
  }

  int unary_calls() const { return unary_calls_; }
  int streams() const { return streams_; }
  bool stalled() const { return stalled_; }

 private:
  static void Fill(const v1::EchoRequest& request, v1::EchoResponse* response) {
    response->set_sequence(request.sequence());
    response->set_client_send_time_ns(request.client_send_time_ns());
    response->set_agent_receive_time_ns(RealClockInstance().MonotonicNanos());
    response->set_agent_send_time_ns(RealClockInstance().MonotonicNanos());
  }

  // Whether the calling stream is the one to stall (true once).
  bool TakeStall() {
    bool expected = false;
    return stall_after_ >= 0 &&
           stalled_.compare_exchange_strong(expected, true);
  }

  // Read, answer, read again: one request at a time, so Finish never races
  // a write.
  class Stream final
      : public grpc::ServerBidiReactor<v1::EchoRequest, v1::EchoResponse> {
   public:
    explicit Stream(CountingEchoService* service) : service_(service) {
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      if (!stalling_ && replies_ == service_->stall_after_) {
        stalling_ = service_->TakeStall();
      }
      if (stalling_) {
        StartRead(&request_);  // never answers again
        return;
      }
      ++replies_;
      Fill(request_, &response_);
      StartWrite(&response_);
    }
    void OnWriteDone(bool ok) override {
      if (ok) StartRead(&request_);
    }
    void OnCancel() override {}
    void OnDone() override { delete this; }

   private:
    CountingEchoService* const service_;
    bool stalling_ = false;
    int replies_ = 0;
    v1::EchoRequest request_;
    v1::EchoResponse response_;
  };

  const int stall_after_;
  std::atomic<bool> stalled_{false};
  std::atomic<int> unary_calls_{0};
  std::atomic<int> streams_{0};
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

  void StartServer(std::vector<TargetSpec> targets,
                   int max_concurrent_streams = 100) {
    bool needs_icmp = false;
    for (const TargetSpec& t : targets) needs_icmp |= t.icmp_enabled;
    ServerOptions options;
    options.targets = std::move(targets);
    options.report_interval = absl::ZeroDuration();
    options.grpc_listen = "127.0.0.1:0";
    options.http_listen = "127.0.0.1:0";
    options.max_concurrent_streams = max_concurrent_streams;
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

  // Serves a CountingEchoService (echo_service_) on 127.0.0.1 instead of
  // the real agent. The fixture owns it: its streams' callbacks read it
  // until TearDown's Shutdown returns, after the test body's locals are gone.
  void StartEchoServer(int stall_after = -1) {
    echo_service_ = std::make_unique<CountingEchoService>(stall_after);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &echo_port_);
    builder.RegisterService(echo_service_.get());
    echo_server_ = builder.BuildAndStart();
    ASSERT_NE(echo_server_, nullptr);
    ASSERT_GT(echo_port_, 0);
  }
  TargetSpec StreamTarget() {
    TargetSpec target = Target("stream", "127.0.0.1", true);
    target.grpc_port = static_cast<uint16_t>(echo_port_);
    target.grpc_mode = GrpcProbeMode::kStream;
    target.icmp_enabled = false;
    return target;
  }
  void TearDown() override {
    app_.reset();
    // A deadline: past it, calls still open (a stalled stream) are
    // cancelled rather than waited for.
    if (echo_server_) {
      echo_server_->Shutdown(std::chrono::system_clock::now() +
                             std::chrono::seconds(5));
    }
  }

  std::unique_ptr<AgentServer> agent_;
  // Declared before the server it serves, so destroyed after it.
  std::unique_ptr<CountingEchoService> echo_service_;
  std::unique_ptr<grpc::Server> echo_server_;
  int echo_port_ = 0;
  std::unique_ptr<ServerApp> app_;
};

TEST_F(ServerProbingTest, IcmpAndGrpcSamplesEveryIntervalWithKernelStamps) {
  RUN_OR_STOP(StartAgent());
  RUN_OR_STOP(StartServer(
      {Target("v4", "127.0.0.1", true), Target("v6", "::1", false)}));
  Collector collector(app_->store());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return collector.Of(0, ProbeKind::kIcmp).size() >= 6 &&
               collector.Of(1, ProbeKind::kIcmp).size() >= 6 &&
               collector.Of(0, ProbeKind::kGrpc).size() >= 6;
      },
      absl::Seconds(30)));

  int failed = 0;
  for (int target : {0, 1}) {
    std::vector<Sample> icmp = collector.Of(target, ProbeKind::kIcmp);
    EXPECT_TRUE(MostlyOk(icmp)) << Failures(icmp) << " of " << icmp.size();
    failed += Failures(icmp);
    // The kernel turns receive stamping on a moment after the first socket
    // in the machine asks for it (a deferred static key), so the first
    // replies may carry only a TX stamp; from the first fully stamped one
    // on, every one is.
    bool kernel_stamped = false;
    for (size_t i = 0; i < icmp.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("target ", target, " icmp #", i));
      if (icmp[i].ok()) {
        EXPECT_GT(*icmp[i].rtt_ns, 0);
        EXPECT_LT(*icmp[i].rtt_ns, 150'000'000);  // within the timeout
        kernel_stamped = kernel_stamped ||
                         icmp[i].timestamp_source == TimestampSource::kKernel;
        EXPECT_EQ(icmp[i].timestamp_source, kernel_stamped
                                                ? TimestampSource::kKernel
                                                : TimestampSource::kMixed);
      } else {
        EXPECT_EQ(icmp[i].result, SampleResult::kTimeout) << icmp[i].error;
      }
      if (i > 0) {
        // Fixed rate: scheduled times are exactly one interval apart.
        EXPECT_EQ(icmp[i].scheduled_ns - icmp[i - 1].scheduled_ns,
                  absl::ToInt64Nanoseconds(kInterval));
      }
    }
    EXPECT_TRUE(kernel_stamped);
  }
  std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
  // The first probe may race the connection.
  EXPECT_TRUE(MostlyOk(grpc, 1)) << Failures(grpc, 1) << " of " << grpc.size();
  failed += Failures(grpc, 1);
  for (size_t i = 1; i < grpc.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("grpc #", i));
    if (!grpc[i].ok()) continue;
    ASSERT_TRUE(grpc[i].agent_time_ns.has_value());
    EXPECT_GE(*grpc[i].agent_time_ns, 0);
    // The agent's stamps lie inside the client's RTT, so the network part
    // is positive (measured, not implied by the subtraction).
    EXPECT_GT(*grpc[i].network_rtt_ns(), 0);
  }
  if (failed == 0) {
    EXPECT_EQ(app_->store().TargetStatus(0), ProbeStatus::kOk);
    EXPECT_EQ(app_->store().Probe(1, ProbeKind::kIcmp).status,
              ProbeStatus::kOk);
  } else {  // a timeout's loss makes it degraded for a minute
    EXPECT_NE(app_->store().TargetStatus(0), ProbeStatus::kDown);
  }
}

// SIGHUP with unchanged settings (e.g. a certificate rotation): probers,
// channels, counters and subscriptions carry on; a change starts afresh.
TEST_F(ServerProbingTest, ReloadWithUnchangedSettingsRestartsNothing) {
  StartAgent();
  TargetSpec target = Target("a", "127.0.0.1", true);
  target.icmp_enabled = false;
  StartServer({target});
  bool closed = false;
  // The first configuration's store must outlive the collector subscribed
  // to it: the second reload replaces that store.
  std::shared_ptr<ResultStore> first_store = app_->Session()->store();
  ResultStore& store = *first_store;
  int id = store.Subscribe([](const Sample&) {}, [&closed] { closed = true; });
  Collector collector(store);
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(0, ProbeKind::kGrpc).size() >= 2; },
                absl::Seconds(30)));
  ASSERT_THAT(app_->ReloadTargets({target}, StatusThresholds()), IsOk());
  EXPECT_EQ(app_->Session()->store(), first_store);
  EXPECT_FALSE(closed);

  target.interval = 2 * kInterval;
  ASSERT_THAT(app_->ReloadTargets({target}, StatusThresholds()), IsOk());
  EXPECT_NE(app_->Session()->store(), first_store);
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
  RUN_OR_STOP(StartAgent());
  int port = agent_->port();
  RUN_OR_STOP(StartServer({Target("agent", "127.0.0.1", true)}));
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

  RUN_OR_STOP(StartAgent(port));
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
  // ICMP to the same host went on regardless of the agent.
  std::vector<Sample> icmp = collector.Of(0, ProbeKind::kIcmp);
  EXPECT_TRUE(MostlyOk(icmp)) << Failures(icmp) << " of " << icmp.size();
}

TEST_F(ServerProbingTest, StreamModeProbesOnOneLongLivedStream) {
  RUN_OR_STOP(StartAgent());
  TargetSpec target = Target("stream", "127.0.0.1", true);
  target.grpc_mode = GrpcProbeMode::kStream;
  target.icmp_enabled = false;
  RUN_OR_STOP(StartServer({target}));
  Collector collector(app_->store());
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(0, ProbeKind::kGrpc).size() >= 5; },
                absl::Seconds(30)));
  std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
  EXPECT_TRUE(MostlyOk(grpc, 1)) << Failures(grpc, 1) << " of " << grpc.size();
  for (size_t i = 1; i < grpc.size(); ++i) {
    if (grpc[i].ok()) {
      EXPECT_TRUE(grpc[i].agent_time_ns.has_value());
    }
  }
}

// Stream mode must probe on a stream: a silent fallback to unary calls
// would still give ok samples, so count the calls the agent sees.
TEST_F(ServerProbingTest, StreamModeNeverFallsBackToUnary) {
  RUN_OR_STOP(StartEchoServer());
  const CountingEchoService& service = *echo_service_;
  RUN_OR_STOP(StartServer({StreamTarget()}));
  Collector collector(app_->store());
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(0, ProbeKind::kGrpc).size() >= 8; },
                absl::Seconds(30)));
  int ok = 0;
  for (const Sample& s : collector.Of(0, ProbeKind::kGrpc)) ok += s.ok();
  EXPECT_GE(ok, 6);
  EXPECT_EQ(service.unary_calls(), 0);
  EXPECT_EQ(service.streams(), 1);  // one long-lived stream
}

// StreamEchoClient replaces a stream whose oldest probe is older than the
// timeout: the probes stuck on it fail, and probing goes on, answered, on
// a new stream of the same channel.
TEST_F(ServerProbingTest, AStalledStreamIsReplacedAndProbingRecovers) {
  RUN_OR_STOP(StartEchoServer(/*stall_after=*/3));
  const CountingEchoService& service = *echo_service_;
  RUN_OR_STOP(StartServer({StreamTarget()}));
  Collector collector(app_->store());
  // Recovered: a stream stalled, another was opened, some probes failed
  // and the latest 5 were answered.
  auto recovered = [&] {
    std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
    if (!service.stalled() || service.streams() < 2 || grpc.size() < 6) {
      return false;
    }
    bool any_failed = false;
    for (const Sample& s : grpc) any_failed |= !s.ok();
    for (size_t i = grpc.size() - 5; i < grpc.size(); ++i) {
      if (!grpc[i].ok()) return false;
    }
    return any_failed;
  };
  ASSERT_TRUE(WaitUntil(recovered, absl::Seconds(30)))
      << "streams opened: " << service.streams();
  EXPECT_GE(service.streams(), 2);
  EXPECT_EQ(service.unary_calls(), 0);
  std::vector<Sample> grpc = collector.Of(0, ProbeKind::kGrpc);
  int failed = 0;
  for (const Sample& s : grpc) failed += s.ok() ? 0 : 1;
  // The probes sent on the stalled stream before it was judged stuck:
  // at least one, at most a few intervals' worth (timeout 150 ms at 200
  // ms), plus a first probe that may race the connection.
  EXPECT_GE(failed, 1);
  EXPECT_LE(failed, 5);
}

TEST_F(ServerProbingTest, ADeadAgentDoesNotDisturbALiveOne) {
  RUN_OR_STOP(StartAgent());
  TargetSpec dead = Target("dead", "127.0.0.1", true);
  dead.grpc_port = 1;  // nothing listens: connection refused
  RUN_OR_STOP(StartServer({dead, Target("live", "127.0.0.1", true)}));
  Collector collector(app_->store());
  ASSERT_TRUE(
      WaitUntil([&] { return collector.Of(1, ProbeKind::kGrpc).size() >= 6; },
                absl::Seconds(30)));
  std::vector<Sample> live = collector.Of(1, ProbeKind::kGrpc);
  EXPECT_TRUE(MostlyOk(live, 1)) << Failures(live, 1) << " of " << live.size();
  std::vector<Sample> refused = collector.Of(0, ProbeKind::kGrpc);
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused.back().result, SampleResult::kUnreachable);
  EXPECT_THAT(refused.back().error, ::testing::HasSubstr("UNAVAILABLE"));
}

std::shared_ptr<grpc::Channel> QueryChannel(int port) {
  // A distinct channel argument gives each channel its own connection.
  static std::atomic<int> channels{0};
  grpc::ChannelArguments args;
  args.SetInt("latency.test.channel", ++channels);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

// README: --max_concurrent_streams limits the calls and streams one client
// connection may have open; more wait (they are not refused).
TEST_F(ServerProbingTest, CallsBeyondMaxConcurrentStreamsWait) {
  TargetSpec target = Target("t", "127.0.0.1", true);
  target.icmp_enabled = false;
  RUN_OR_STOP(StartServer({target}, /*max_concurrent_streams=*/2));
  std::shared_ptr<grpc::Channel> busy = QueryChannel(app_->grpc_port());
  auto stub = v1::LatencyService::NewStub(busy);
  grpc::ClientContext watch1, watch2;
  auto stream1 = stub->Watch(&watch1, v1::WatchRequest());
  auto stream2 = stub->Watch(&watch2, v1::WatchRequest());
  v1::WatchResponse sample;
  ASSERT_TRUE(stream1->Read(&sample));  // both streams are open
  ASSERT_TRUE(stream2->Read(&sample));

  // A third call on that connection waits: it cannot finish while both
  // streams stay open, however long it is given.
  v1::ListTargetsResponse list;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(500));
    EXPECT_EQ(stub->ListTargets(&context, {}, &list).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // Another connection is not limited by this one.
  {
    auto other = v1::LatencyService::NewStub(QueryChannel(app_->grpc_port()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    EXPECT_TRUE(other->ListTargets(&context, {}, &list).ok());
  }
  // One stream ends: the waiting call goes through.
  watch1.TryCancel();
  while (stream1->Read(&sample)) {
  }
  stream1->Finish();
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    EXPECT_TRUE(stub->ListTargets(&context, {}, &list).ok());
  }
  watch2.TryCancel();
  while (stream2->Read(&sample)) {
  }
  stream2->Finish();
}

// README: grpc.health.v1.Health is SERVING while the probers run; it turns
// NOT_SERVING when probing stops (shutdown), seen by a Watch.
TEST_F(ServerProbingTest, HealthTurnsNotServingWhenProbingStops) {
  TargetSpec target = Target("t", "127.0.0.1", true);
  target.icmp_enabled = false;
  RUN_OR_STOP(StartServer({target}));
  auto health =
      grpc::health::v1::Health::NewStub(QueryChannel(app_->grpc_port()));
  grpc::ClientContext context;
  auto watch = health->Watch(&context, {});
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  std::thread stopper([this] { app_->Shutdown(); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stopper.join();
}

}  // namespace
}  // namespace latency
