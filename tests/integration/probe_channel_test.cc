// The prober's channel settings against a real agent on loopback: its
// keepalive pings must not get the connection closed by the agent.
#include "absl/strings/str_cat.h"
#include "agent/agent_server.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "server/prober/echo_client.h"
#include "server/prober/resolver.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;

TEST(ProbeChannelTuningTest, ConnectTimeoutCoversAHandshakeWithinTheTimeout) {
  // 100 ms interval, 1 s timeout (the 150 ms path): an attempt may
  // take several RTTs of up to the timeout, never gRPC's 100 ms minimum.
  ProbeChannelTuning t =
      TuneProbeChannel(absl::Milliseconds(100), absl::Seconds(1));
  EXPECT_EQ(t.min_connect_timeout_ms, 4000);
  EXPECT_EQ(t.initial_backoff_ms, 100);
  EXPECT_EQ(t.max_backoff_ms, 100);
  EXPECT_EQ(t.keepalive_time_ms, 1000);
  EXPECT_EQ(t.keepalive_timeout_ms, 1000);
}

TEST(ProbeChannelTuningTest, KeepaliveFollowsIntervalAndTimeoutWithFloors) {
  ProbeChannelTuning slow =
      TuneProbeChannel(absl::Seconds(5), absl::Seconds(3));
  EXPECT_EQ(slow.keepalive_time_ms, 5000);
  EXPECT_EQ(slow.keepalive_timeout_ms, 3000);
  EXPECT_EQ(slow.max_backoff_ms, 5000);
  EXPECT_EQ(slow.min_connect_timeout_ms, 12'000);
  // Short timeouts keep 1 s floors: TCP_USER_TIMEOUT under a few RTOs would
  // drop a healthy connection for one lost segment.
  ProbeChannelTuning fast =
      TuneProbeChannel(absl::Milliseconds(10), absl::Milliseconds(50));
  EXPECT_EQ(fast.keepalive_time_ms, 1000);
  EXPECT_EQ(fast.keepalive_timeout_ms, 1000);
  EXPECT_EQ(fast.min_connect_timeout_ms, 1000);
  EXPECT_EQ(fast.max_backoff_ms, 100);
}

TEST(ProbeChannelTest, AgentAcceptsTheProbersKeepalivePings) {
  AgentOptions options;
  options.listen = "127.0.0.1:0";
  options.drain_timeout = absl::Milliseconds(100);
  auto agent = AgentServer::Start(options, RealClockInstance());
  ASSERT_THAT(agent, IsOk());
  // Unary probes: between them the connection has no call open, and pings
  // go every second.
  std::shared_ptr<grpc::Channel> channel =
      MakeProbeChannel(absl::StrCat("ipv4:127.0.0.1:", (*agent)->port()),
                       absl::Milliseconds(100), absl::Seconds(1));
  auto stub = v1::EchoService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::EchoRequest request;
  v1::EchoResponse response;
  ASSERT_TRUE(stub->Echo(&context, request, &response).ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // gRPC's server defaults answer the third early ping (about 4 s in) with
  // GOAWAY too_many_pings, and the channel leaves READY.
  EXPECT_FALSE(channel->WaitForStateChange(
      GRPC_CHANNEL_READY,
      std::chrono::system_clock::now() + std::chrono::seconds(7)))
      << "channel left READY: " << channel->GetState(false);
}

TEST(ProbeChannelTest, ResolvedAddressesBecomeAddressTargets) {
  EXPECT_EQ(GrpcTargetForAddress(*IpAddress::Parse("10.0.0.1"), 50051),
            "ipv4:10.0.0.1:50051");
  EXPECT_EQ(GrpcTargetForAddress(*IpAddress::Parse("::1"), 7), "ipv6:[::1]:7");
  EXPECT_EQ(GrpcTargetFor("agent.example", 50051),
            "dns:///agent.example:50051");
}

// The prober dials the address it resolved and names the host as the
// authority: TLS must check the agent's certificate against that name.
TEST(ProbeChannelTest, TlsChecksTheCertificateAgainstTheAuthority) {
  std::string error;
  std::optional<testing::TestPki> pki = testing::TestPki::Create(&error);
  if (!pki) GTEST_SKIP() << "no test PKI: " << error;
  AgentOptions options;
  options.listen = "127.0.0.1:0";
  options.drain_timeout = absl::Milliseconds(100);
  // SANs IP:127.0.0.1 and DNS:localhost.
  options.tls =
      ServerTlsFiles("--tls_", pki->Cert("server"), pki->Key("server"), "");
  options.tls_poll_interval = absl::ZeroDuration();
  auto agent = AgentServer::Start(options, RealClockInstance());
  ASSERT_THAT(agent, IsOk());
  auto credentials = MakeChannelCredentials(
      ClientTlsFiles("--probe_tls_", true, pki->Cert("ca"), "", ""));
  ASSERT_THAT(credentials, IsOk());
  std::string address =
      GrpcTargetForAddress(*IpAddress::Parse("127.0.0.1"), (*agent)->port());
  auto echo = [&](const std::string& authority) {
    auto channel = MakeProbeChannel(address, absl::Seconds(1), absl::Seconds(1),
                                    *credentials, authority);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::EchoRequest request;
    v1::EchoResponse response;
    return v1::EchoService::NewStub(channel)
        ->Echo(&context, request, &response)
        .error_code();
  };
  EXPECT_EQ(echo(absl::StrCat("localhost:", (*agent)->port())),
            grpc::StatusCode::OK);
  EXPECT_EQ(echo(""), grpc::StatusCode::OK);  // the IP SAN
  EXPECT_EQ(echo(absl::StrCat("other.example:", (*agent)->port())),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace latency
