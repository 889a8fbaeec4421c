#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "agent/agent_server.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace latency {
namespace {

using ::latency::testing::FakeClock;
using ::latency::testing::IsOk;
using ::latency::testing::StatusIs;
using ::testing::HasSubstr;

std::string AllByteValues() {
  std::string payload;
  for (int i = 0; i < 256; ++i) payload.push_back(static_cast<char>(i));
  return payload;
}

std::string WriteTempFile(const std::string& contents) {
  char path[] = "/tmp/latency-sysctl-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << contents;
  return path;
}

class EchoServiceTest : public ::testing::Test {
 protected:
  void StartAgent(Clock& clock, AgentOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.hostname = "test-host";
    auto agent = AgentServer::Start(options, clock);
    ASSERT_THAT(agent, IsOk());
    agent_ = std::move(*agent);
    tcp_channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(agent_->port()),
                            grpc::InsecureChannelCredentials());
    stub_ = v1::EchoService::NewStub(agent_->InProcessChannel());
  }

  std::unique_ptr<AgentServer> agent_;
  std::shared_ptr<grpc::Channel> tcp_channel_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
};

TEST_F(EchoServiceTest, UnaryEchoesPayloadByteForByte) {
  StartAgent(RealClockInstance());
  v1::EchoRequest request;
  request.set_sequence(42);
  request.set_payload(AllByteValues());
  request.set_client_send_time_ns(123456789);
  v1::EchoResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Echo(&context, request, &response).ok());
  EXPECT_EQ(response.sequence(), 42u);
  EXPECT_EQ(response.payload(), AllByteValues());
  EXPECT_EQ(response.client_send_time_ns(), 123456789);
  EXPECT_EQ(response.agent_hostname(), "test-host");
  EXPECT_FALSE(response.agent_version().empty());
}

TEST_F(EchoServiceTest, UnaryTimestampsLieWithinTheCall) {
  // Agent and test share one monotonic clock, so the agent's stamps must fall
  // between the client's send and receive, receive before send.
  StartAgent(RealClockInstance());
  for (int i = 0; i < 20; ++i) {
    v1::EchoRequest request;
    request.set_sequence(i);
    v1::EchoResponse response;
    grpc::ClientContext context;
    int64_t before = RealClockInstance().MonotonicNanos();
    ASSERT_TRUE(stub_->Echo(&context, request, &response).ok());
    int64_t after = RealClockInstance().MonotonicNanos();
    EXPECT_LE(before, response.agent_receive_time_ns());
    EXPECT_LE(response.agent_receive_time_ns(), response.agent_send_time_ns());
    EXPECT_LE(response.agent_send_time_ns(), after);
  }
}

TEST_F(EchoServiceTest, StampsComeFromTheInjectedClock) {
  FakeClock clock(/*start_ns=*/5'000'000'000);
  StartAgent(clock);
  clock.Advance(absl::Milliseconds(250));
  v1::EchoResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Echo(&context, v1::EchoRequest(), &response).ok());
  EXPECT_EQ(response.agent_receive_time_ns(), 5'250'000'000);
  EXPECT_EQ(response.agent_send_time_ns(), 5'250'000'000);
}

TEST_F(EchoServiceTest, StreamAnswersInOrderWithPipelinedRequests) {
  StartAgent(RealClockInstance());
  // TCP, not in-process: the in-process transport completes a write only when
  // the peer reads it, so pipelining would deadlock there.
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  grpc::ClientContext context;
  auto stream = stub->EchoStream(&context);
  constexpr int kCount = 200;
  // Write everything first so requests queue up inside the agent.
  for (int i = 0; i < kCount; ++i) {
    v1::EchoRequest request;
    request.set_sequence(i);
    request.set_payload(std::string(i % 64, static_cast<char>('a' + i % 26)));
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  int64_t previous_send = 0;
  for (int i = 0; i < kCount; ++i) {
    v1::EchoResponse response;
    ASSERT_TRUE(stream->Read(&response)) << "missing reply " << i;
    EXPECT_EQ(response.sequence(), static_cast<uint64_t>(i));
    EXPECT_EQ(response.payload(),
              std::string(i % 64, static_cast<char>('a' + i % 26)));
    EXPECT_LE(response.agent_receive_time_ns(), response.agent_send_time_ns());
    EXPECT_LE(previous_send, response.agent_receive_time_ns());
    previous_send = response.agent_send_time_ns();
  }
  v1::EchoResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(EchoServiceTest, OversizedRequestIsRejectedAndTheNextSucceeds) {
  AgentOptions options;
  options.max_message_bytes = 4096;
  StartAgent(RealClockInstance(), options);
  auto stub = v1::EchoService::NewStub(tcp_channel_);

  v1::EchoRequest big;
  big.set_payload(std::string(64 * 1024, 'x'));
  v1::EchoResponse response;
  grpc::ClientContext big_context;
  grpc::Status status = stub->Echo(&big_context, big, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();

  v1::EchoRequest small;
  small.set_sequence(7);
  small.set_payload(std::string(1024, 'y'));
  grpc::ClientContext small_context;
  ASSERT_TRUE(stub->Echo(&small_context, small, &response).ok());
  EXPECT_EQ(response.sequence(), 7u);
  EXPECT_EQ(response.payload().size(), 1024u);
}

TEST_F(EchoServiceTest, AgentInfoFollowsTheIcmpSysctl) {
  std::string path = WriteTempFile("0\n");
  AgentOptions options;
  options.icmp_echo_sysctl_path = path;
  options.max_message_bytes = 8192;
  FakeClock clock(/*start_ns=*/7'000'000'000);
  StartAgent(clock, options);
  clock.Advance(absl::Milliseconds(1500));  // uptime counts from Start

  v1::GetAgentInfoResponse info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetAgentInfo(&context, {}, &info).ok());
  }
  EXPECT_TRUE(info.icmp_echo_enabled());
  EXPECT_EQ(info.icmp_echo_state(), "net.ipv4.icmp_echo_ignore_all=0");
  EXPECT_EQ(info.hostname(), "test-host");
  EXPECT_EQ(info.max_message_bytes(), 8192u);
  EXPECT_EQ(info.uptime_ms(), 1500);

  std::ofstream(path) << "1\n";
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetAgentInfo(&context, {}, &info).ok());
  }
  EXPECT_FALSE(info.icmp_echo_enabled());
  unlink(path.c_str());
}

TEST(ReadIcmpEchoSettingTest, ExplainsWhatItCouldNotRead) {
  IcmpEchoSetting missing = ReadIcmpEchoSetting("/nonexistent/sysctl");
  EXPECT_FALSE(missing.enabled);
  EXPECT_THAT(missing.state, HasSubstr("cannot read /nonexistent/sysctl"));

  std::string path = WriteTempFile("banana");
  IcmpEchoSetting garbage = ReadIcmpEchoSetting(path);
  EXPECT_FALSE(garbage.enabled);
  EXPECT_THAT(garbage.state, HasSubstr("unexpected value 'banana'"));
  unlink(path.c_str());
}

// NOT_SERVING on shutdown: HealthWatchSeesNotServingOnShutdown.
TEST_F(EchoServiceTest, HealthServesTheAgentAndItsServiceAndNothingElse) {
  StartAgent(RealClockInstance());
  auto health = grpc::health::v1::Health::NewStub(tcp_channel_);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    request.set_service("latency.v1.EchoService");
    grpc::ClientContext context;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    request.set_service("no.such.Service");
    grpc::ClientContext context;
    EXPECT_EQ(health->Check(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(EchoServiceTest, HealthWatchSeesNotServingOnShutdown) {
  StartAgent(RealClockInstance());
  auto health = grpc::health::v1::Health::NewStub(tcp_channel_);
  grpc::ClientContext context;
  auto watch = health->Watch(&context, {});
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  std::thread stopper([this] { agent_->Shutdown(); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stopper.join();
}

TEST_F(EchoServiceTest, ShutdownEndsOpenStreamsWithinTheDrainTimeout) {
  AgentOptions options;
  options.drain_timeout = absl::Milliseconds(200);
  StartAgent(RealClockInstance(), options);
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  grpc::ClientContext context;
  auto stream = stub->EchoStream(&context);
  v1::EchoResponse response;
  ASSERT_TRUE(stream->Write(v1::EchoRequest()));
  ASSERT_TRUE(stream->Read(&response));

  // The client never half-closes; Shutdown must still return once the
  // drain timeout cancels the stream, and the client must see the end.
  // Waiting for the stream without a deadline would hang here: the upper
  // bound is the drain timeout plus slack for a loaded machine.
  absl::Time start = absl::Now();
  agent_->Shutdown();
  absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Milliseconds(200) + absl::Seconds(10));
  // It did wait for the open stream, up to the drain timeout.
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_FALSE(stream->Read(&response));
}

TEST(ValidateAgentOptionsTest, NamesTheBadFlag) {
  AgentOptions options;
  options.listen = "50051";
  EXPECT_THAT(ValidateAgentOptions(options),
              StatusIs(absl::StatusCode::kInvalidArgument, "--listen"));
  options = AgentOptions();
  options.max_message_bytes = 10;
  EXPECT_THAT(
      ValidateAgentOptions(options),
      StatusIs(absl::StatusCode::kInvalidArgument, "--max_message_bytes"));
  EXPECT_THAT(ValidateAgentOptions(AgentOptions()), IsOk());
}

TEST(AgentServerTest, ReportsAPortInUse) {
  AgentOptions options;
  options.listen = "127.0.0.1:0";
  auto first = AgentServer::Start(options, RealClockInstance());
  ASSERT_THAT(first, IsOk());
  AgentOptions second;
  second.listen = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_THAT(AgentServer::Start(second, RealClockInstance()),
              StatusIs(absl::StatusCode::kUnavailable, "cannot listen"));
}

// An echo keyed by its client_send_time_ns.
v1::EchoRequest Request(int64_t key) {
  v1::EchoRequest request;
  request.set_sequence(static_cast<uint64_t>(key));
  request.set_payload("pppp");
  request.set_client_send_time_ns(key);
  return request;
}

// With --wire_stamps (CAP_NET_RAW; CI runs as root) each reply on a TCP
// connection carries the wire holds of that connection's earlier echoes.
class WireHoldsTest : public EchoServiceTest {
 protected:
  void SetUp() override {
    AgentOptions options;
    options.wire_stamps = true;
    options.listen = "127.0.0.1:0";
    auto agent = AgentServer::Start(options, RealClockInstance());
    if (!agent.ok() && geteuid() != 0) {
      GTEST_SKIP() << "no CAP_NET_RAW: " << agent.status();
    }
    ASSERT_THAT(agent, IsOk());
    agent_ = std::move(*agent);
    tcp_channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(agent_->port()),
                            grpc::InsecureChannelCredentials());
  }
};

TEST_F(WireHoldsTest, UnaryRepliesCarryTheEarlierEchoesHolds) {
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  const int64_t first = RealClockInstance().MonotonicNanos();
  std::vector<v1::EchoResponse> responses;
  for (int64_t key = first; key < first + 3; ++key) {
    grpc::ClientContext context;
    v1::EchoResponse response;
    ASSERT_TRUE(stub->Echo(&context, Request(key), &response).ok());
    EXPECT_TRUE(response.wire_stamps());
    if (key > first) {
      // The previous echo's hold, shorter than this whole call.
      ASSERT_EQ(response.wire_holds_size(), 1);
      EXPECT_EQ(response.wire_holds(0).client_send_time_ns(), key - 1);
      EXPECT_GT(response.wire_holds(0).hold_ns(), 0);
      EXPECT_LT(response.wire_holds(0).hold_ns(), 1'000'000'000);
    } else {
      EXPECT_EQ(response.wire_holds_size(), 0);
    }
  }
}

TEST_F(WireHoldsTest, StreamRepliesCarryTheEarlierEchoesHolds) {
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  grpc::ClientContext context;
  auto stream = stub->EchoStream(&context);
  const int64_t first = RealClockInstance().MonotonicNanos();
  for (int64_t key = first; key < first + 3; ++key) {
    ASSERT_TRUE(stream->Write(Request(key)));
    v1::EchoResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_TRUE(response.wire_stamps());
    if (key > first) {
      ASSERT_EQ(response.wire_holds_size(), 1);
      EXPECT_EQ(response.wire_holds(0).client_send_time_ns(), key - 1);
      EXPECT_GT(response.wire_holds(0).hold_ns(), 0);
    }
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(WireHoldsTest, AnotherConnectionGetsOnlyItsOwnHolds) {
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  grpc::ChannelArguments args;
  args.SetInt("latency.test.unique", 1);  // a channel of its own
  auto other = v1::EchoService::NewStub(
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(agent_->port()),
                                grpc::InsecureChannelCredentials(), args));
  const int64_t key = RealClockInstance().MonotonicNanos();
  v1::EchoResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Echo(&context, Request(key), &response).ok());
  }
  {
    grpc::ClientContext context;
    ASSERT_TRUE(other->Echo(&context, Request(key + 1), &response).ok());
    EXPECT_EQ(response.wire_holds_size(), 0);
  }
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Echo(&context, Request(key + 2), &response).ok());
    ASSERT_EQ(response.wire_holds_size(), 1);
    EXPECT_EQ(response.wire_holds(0).client_send_time_ns(), key);
  }
}

// Two echoes: neither reply claims wire stamps or carries holds.
void ExpectRepliesWithoutWireStamps(v1::EchoService::Stub& stub,
                                    int64_t first_key) {
  for (int64_t key = first_key; key < first_key + 2; ++key) {
    grpc::ClientContext context;
    v1::EchoResponse response;
    ASSERT_TRUE(stub.Echo(&context, Request(key), &response).ok());
    EXPECT_FALSE(response.wire_stamps());
    EXPECT_EQ(response.wire_holds_size(), 0);
  }
}

// Under TLS a tap sees only encrypted records: --wire_stamps then opens none
// (it starts without CAP_NET_RAW too) and replies do not claim stamps, so
// the server takes handler stamps at once instead of waiting for holds.
TEST_F(EchoServiceTest, WireStampsAreOffUnderTls) {
  std::string error;
  std::optional<testing::TestPki> pki = testing::TestPki::Create(&error);
  ASSERT_TRUE(pki.has_value()) << error;
  AgentOptions options;
  options.wire_stamps = true;
  options.tls.cert = pki->Cert("server");
  options.tls.key = pki->Key("server");
  StartAgent(RealClockInstance(), options);
  std::ifstream ca_file(pki->Cert("ca"));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(ca_file), {});
  auto stub = v1::EchoService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(agent_->port()),
                          grpc::SslCredentials(ssl)));
  ExpectRepliesWithoutWireStamps(*stub, 2'000'000'000);
}

TEST_F(EchoServiceTest, WithoutWireStampsRepliesSayNothingOfThem) {
  StartAgent(RealClockInstance());
  auto stub = v1::EchoService::NewStub(tcp_channel_);
  ExpectRepliesWithoutWireStamps(*stub, 1'000'000'000);
}

}  // namespace
}  // namespace latency
