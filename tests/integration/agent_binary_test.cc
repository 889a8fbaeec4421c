// Starts the real latency-agent binary and talks to it over TCP, with the
// project's own stubs and with buf curl (a client nobody here wrote) through
// server reflection alone.
#include <signal.h>

#include <thread>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "tests/testing/agent_process.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::RunCommand;
using ::latency::testing::StartAgent;
using ::testing::HasSubstr;

class AgentBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::optional<AgentProcess> agent =
        StartAgent({"--drain_timeout=1s", "--max_message_bytes=65536"}, &error);
    ASSERT_TRUE(agent.has_value()) << error;
    agent_.emplace(std::move(*agent));
    stub_ = v1::EchoService::NewStub(grpc::CreateChannel(
        agent_->address(), grpc::InsecureChannelCredentials()));
  }

  std::optional<AgentProcess> agent_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
};

TEST_F(AgentBinaryTest, EchoesOverTcp) {
  v1::EchoRequest request;
  request.set_sequence(9);
  request.set_payload("hello");
  v1::EchoResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  ASSERT_TRUE(stub_->Echo(&context, request, &response).ok());
  EXPECT_EQ(response.sequence(), 9u);
  EXPECT_EQ(response.payload(), "hello");
  EXPECT_GT(response.agent_receive_time_ns(), 0);
  EXPECT_LE(response.agent_receive_time_ns(), response.agent_send_time_ns());
}

TEST_F(AgentBinaryTest, OversizedRequestThenNormalRequest) {
  v1::EchoRequest big;
  big.set_payload(std::string(1 << 20, 'x'));
  v1::EchoResponse response;
  grpc::ClientContext big_context;
  EXPECT_EQ(stub_->Echo(&big_context, big, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext context;
  EXPECT_TRUE(stub_->Echo(&context, v1::EchoRequest(), &response).ok());
}

TEST_F(AgentBinaryTest, SigtermDuringCallsDrainsAndExitsZero) {
  // Keep a stream open and unary calls flowing while SIGTERM arrives.
  grpc::ClientContext stream_context;
  auto stream = stub_->EchoStream(&stream_context);
  v1::EchoResponse response;
  ASSERT_TRUE(stream->Write(v1::EchoRequest()));
  ASSERT_TRUE(stream->Read(&response));

  std::atomic<bool> stop{false};
  std::thread caller([&] {
    while (!stop) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
      v1::EchoResponse r;
      stub_->Echo(&context, v1::EchoRequest(), &r);
    }
  });
  agent_->process.Signal(SIGTERM);
  // Drain timeout is 1 s; allow a loaded machine plenty more.
  std::optional<int> code = agent_->process.Wait(absl::Seconds(20));
  stop = true;
  caller.join();
  ASSERT_TRUE(code.has_value()) << "agent did not exit after SIGTERM";
  EXPECT_EQ(*code, 0) << agent_->process.Output();
  EXPECT_THAT(agent_->process.Output(), HasSubstr("latency-agent stopped"));
}

TEST(AgentBinaryFlagsTest, VersionAndHelp) {
  auto version = RunCommand({testing::AgentBinaryPath(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.output, HasSubstr("latency-agent "));
  auto help = RunCommand({testing::AgentBinaryPath(), "--help"});
  for (const char* flag : {"--listen", "--max_message_bytes", "--log_level",
                           "--log_format", "--drain_timeout"}) {
    EXPECT_THAT(help.output, HasSubstr(flag));
  }
}

TEST(AgentBinaryFlagsTest, BadFlagValuesFailWithTheirName) {
  auto bad_level = RunCommand({testing::AgentBinaryPath(), "--log_level=loud"});
  EXPECT_NE(bad_level.exit_code, 0);
  EXPECT_THAT(bad_level.output, HasSubstr("--log_level"));
  auto bad_listen = RunCommand({testing::AgentBinaryPath(), "--listen=nope"});
  EXPECT_NE(bad_listen.exit_code, 0);
  EXPECT_THAT(bad_listen.output, HasSubstr("--listen"));
}

TEST(AgentBinaryFlagsTest, JsonLogsAreOneObjectPerLine) {
  std::string error;
  std::optional<AgentProcess> agent = StartAgent({"--log_format=json"}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  std::string output = agent->process.Output();
  std::string first_line = output.substr(0, output.find('\n'));
  EXPECT_THAT(first_line, ::testing::StartsWith("{\"time\":"));
  EXPECT_THAT(first_line, HasSubstr("\"logger\":\"agent\""));
}

// buf curl talks Go gRPC and learns the schema only through reflection.
class BufCurlTest : public AgentBinaryTest {
 protected:
  testing::CommandResult Buf(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {LATENCY_BUF_BINARY, "curl", "--protocol",
                                     "grpc", "--http2-prior-knowledge"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }
  std::string Url(const std::string& method = "") {
    return "http://" + agent_->address() + (method.empty() ? "" : "/" + method);
  }
};

TEST_F(BufCurlTest, ListsServicesThroughReflection) {
  auto result = Buf({"--list-services", Url()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("latency.v1.EchoService"));
  EXPECT_THAT(result.output, HasSubstr("grpc.health.v1.Health"));
}

TEST_F(BufCurlTest, CallsEcho) {
  auto result = Buf({"-d", R"({"sequence":"77","payload":"aGVsbG8="})",
                     Url("latency.v1.EchoService/Echo")});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  v1::EchoResponse response;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(result.output, &response)
          .ok())
      << result.output;
  EXPECT_EQ(response.sequence(), 77u);
  EXPECT_EQ(response.payload(), "hello");
  EXPECT_LE(response.agent_receive_time_ns(), response.agent_send_time_ns());
  EXPECT_GT(response.agent_receive_time_ns(), 0);
}

TEST_F(BufCurlTest, CallsHealthCheck) {
  auto result = Buf({"-d", "{}", Url("grpc.health.v1.Health/Check")});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("\"SERVING\""));
  auto echo_service = Buf({"-d", R"({"service":"latency.v1.EchoService"})",
                           Url("grpc.health.v1.Health/Check")});
  ASSERT_EQ(echo_service.exit_code, 0) << echo_service.output;
  EXPECT_THAT(echo_service.output, HasSubstr("\"SERVING\""));
}

TEST_F(BufCurlTest, CallsGetAgentInfo) {
  auto result = Buf({Url("latency.v1.EchoService/GetAgentInfo")});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  v1::GetAgentInfoResponse info;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(result.output, &info).ok())
      << result.output;
  EXPECT_EQ(info.max_message_bytes(), 65536u);
  EXPECT_THAT(info.icmp_echo_state(), HasSubstr("icmp_echo_ignore_all"));
}

}  // namespace
}  // namespace latency
