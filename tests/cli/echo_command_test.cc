#include "cli/echo_command.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent_server.h"
#include "cli/latencyctl.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace latency {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(SummarizeTest, CountsAndStatistics) {
  std::vector<EchoReply> replies(4);
  replies[0] = {1, true, 1'000'000, 0, "", "h"};
  replies[1] = {2, true, 3'000'000, 0, "", "h"};
  replies[2] = {3, false, 0, 0, "DEADLINE_EXCEEDED", ""};
  replies[3] = {4, true, 2'000'000, 0, "", "h"};
  EchoSummary summary = Summarize(replies);
  EXPECT_EQ(summary.sent, 4);
  EXPECT_EQ(summary.received, 3);
  EXPECT_DOUBLE_EQ(*summary.min_ms, 1.0);
  EXPECT_DOUBLE_EQ(*summary.avg_ms, 2.0);
  EXPECT_DOUBLE_EQ(*summary.max_ms, 3.0);
  EXPECT_NEAR(*summary.stddev_ms, 0.8165, 1e-4);
  EXPECT_EQ(FormatSummary("a:1", summary),
            "--- a:1 echo statistics ---\n4 sent, 3 received, 25.0% loss\n"
            "rtt min/avg/max/stddev = 1.000/2.000/3.000/0.816 ms\n");
}

TEST(SummarizeTest, NoReplyMeansNoNumbers) {
  EchoSummary summary = Summarize({{1, false, 0, 0, "UNAVAILABLE", ""}});
  EXPECT_FALSE(summary.min_ms.has_value());
  EXPECT_FALSE(summary.avg_ms.has_value());
  EXPECT_THAT(FormatSummary("a:1", summary), Not(HasSubstr("rtt")));
}

TEST(FormatReplyLineTest, OkAndError) {
  EXPECT_EQ(FormatReplyLine({7, true, 1'234'000, 4'000, "", "h1"}),
            "seq=7 rtt=1.234 ms agent=0.004 ms network=1.230 ms host=h1");
  EXPECT_EQ(FormatReplyLine({8, false, 0, 0, "UNAVAILABLE: down", ""}),
            "seq=8 error: UNAVAILABLE: down");
}

class RunEchoTest : public ::testing::TestWithParam<bool> {};

TEST_P(RunEchoTest, EchoesARealAgent) {
  AgentOptions agent_options;
  agent_options.listen = "127.0.0.1:0";
  auto agent = AgentServer::Start(agent_options, RealClockInstance());
  ASSERT_THAT(agent, testing::IsOk());
  EchoOptions options;
  options.agent = "127.0.0.1:" + std::to_string((*agent)->port());
  options.count = 3;
  options.interval = absl::ZeroDuration();
  options.payload_bytes = 100;
  options.stream = GetParam();
  std::ostringstream out;
  int code = RunEcho(
      options,
      grpc::CreateChannel(options.agent, grpc::InsecureChannelCredentials()),
      RealClockInstance(), out);
  EXPECT_EQ(code, 0) << out.str();
  EXPECT_THAT(out.str(), HasSubstr("seq=3 rtt="));
  EXPECT_THAT(out.str(), HasSubstr("3 sent, 3 received, 0.0% loss"));
}

INSTANTIATE_TEST_SUITE_P(UnaryAndStream, RunEchoTest, ::testing::Bool());

TEST(RunEchoNoAgentTest, UnreachableAgentExitsTwo) {
  EchoOptions options;
  options.agent = "127.0.0.1:1";  // nothing listens on port 1 here
  options.count = 2;
  options.interval = absl::ZeroDuration();
  options.timeout = absl::Milliseconds(500);
  std::ostringstream out;
  int code = RunEcho(
      options,
      grpc::CreateChannel(options.agent, grpc::InsecureChannelCredentials()),
      RealClockInstance(), out);
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out.str(), HasSubstr("seq=1 error: UNAVAILABLE"));
  EXPECT_THAT(out.str(), HasSubstr("2 sent, 0 received, 100.0% loss"));
}

TEST(RunEchoJsonTest, OneObjectPerEchoThenTheSummary) {
  AgentOptions agent_options;
  agent_options.listen = "127.0.0.1:0";
  auto agent = AgentServer::Start(agent_options, RealClockInstance());
  ASSERT_THAT(agent, testing::IsOk());
  EchoOptions options;
  options.agent = "127.0.0.1:" + std::to_string((*agent)->port());
  options.count = 2;
  options.interval = absl::Milliseconds(1);
  options.json = true;
  std::ostringstream out;
  EXPECT_EQ(RunEcho(options,
                    grpc::CreateChannel(options.agent,
                                        grpc::InsecureChannelCredentials()),
                    RealClockInstance(), out),
            0);
  std::vector<std::string> lines =
      absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  for (const std::string& line : lines) {
    google::protobuf::Struct parsed;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok())
        << line;
  }
  EXPECT_THAT(lines[0], HasSubstr("\"seq\":1"));
  EXPECT_THAT(lines[0], HasSubstr("\"error\":null"));
  EXPECT_THAT(lines[2], HasSubstr("\"received\":2"));
}

// An agent that remembers the metadata keys of every call.
class RecordingEchoService final : public v1::EchoService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoRequest* request,
                                 v1::EchoResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [key, value] : context->client_metadata()) {
        keys_.emplace_back(key.data(), key.size());
      }
    }
    response->set_sequence(request->sequence());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::vector<std::string> keys() {
    absl::MutexLock lock(&mu_);
    return keys_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

TEST(EchoTokenTest, NeverSendsTheQueryTokenToAnAgent) {
  RecordingEchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  std::string token = ::testing::TempDir() + "/echo_command_test.token";
  std::ofstream(token) << "secret\n";
  CliConfig config;
  config.token_file = token;
  config.count = 2;
  config.interval = absl::Milliseconds(1);
  std::ostringstream out, err;
  EXPECT_EQ(RunLatencyctl({"echo", "127.0.0.1:" + std::to_string(port)}, config,
                          out, err, nullptr),
            0)
      << out.str() << err.str();
  EXPECT_THAT(err.str(), HasSubstr("echo does not send the --auth_token_file "
                                   "token"));
  std::vector<std::string> keys = service.keys();
  EXPECT_FALSE(keys.empty());
  EXPECT_THAT(keys, ::testing::Not(::testing::Contains("authorization")));
  server->Shutdown();
}

// An agent that fails the echo with sequence 2 and answers the others.
class FailsSecondEcho final : public v1::EchoService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const v1::EchoRequest* request,
                                 v1::EchoResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->sequence() == 2) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "flaky"));
      return reactor;
    }
    response->set_sequence(request->sequence());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// README: exit 1 when some echo failed (0: all answered, 2: none).
TEST(RunEchoPartialTest, SomeEchoesFailedExitsOne) {
  FailsSecondEcho service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  EchoOptions options;
  options.agent = "127.0.0.1:" + std::to_string(port);
  options.count = 3;
  options.interval = absl::ZeroDuration();
  std::ostringstream out;
  int code = RunEcho(
      options,
      grpc::CreateChannel(options.agent, grpc::InsecureChannelCredentials()),
      RealClockInstance(), out);
  EXPECT_EQ(code, 1) << out.str();
  EXPECT_THAT(out.str(), HasSubstr("seq=2 error: UNAVAILABLE: flaky"));
  EXPECT_THAT(out.str(), HasSubstr("3 sent, 2 received, 33.3% loss"));
  server->Shutdown();
}

}  // namespace
}  // namespace latency
