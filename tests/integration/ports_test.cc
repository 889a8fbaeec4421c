// Two real processes asking for one port: the second must refuse to start
// with one friendly message and exit code, for every listener of the agent
// and the server, and print no raw gRPC-core error before it.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/agent_process.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

// Generous: a refused start takes milliseconds; a second process that does
// start is killed after this and fails the exit-code check.
constexpr absl::Duration kRefuseBound = absl::Seconds(20);

// What every refused listener prints, for `flag` and `port` on 127.0.0.1.
std::string Refusal(const std::string& flag, int port) {
  return absl::StrCat(flag, ": cannot listen on 127.0.0.1:", port, ": port ",
                      port, " is already in use");
}

// gRPC core logs as "E1129 14:40:59.123 ..." and dumps its error tree
// ("{created_time:...", "UNKNOWN:Address already in use").
void ExpectNoGrpcCoreDump(const std::string& output) {
  EXPECT_FALSE(std::regex_search(output, std::regex("(^|\n)[EIW][0-9]{4} ")))
      << output;
  EXPECT_THAT(output, Not(HasSubstr("created_time")));
  EXPECT_THAT(output, Not(HasSubstr("Failed to add")));
}

TEST(PortsTest, SecondAgentOnTheSamePortRefusesToStart) {
  std::string error;
  std::optional<AgentProcess> first = testing::StartAgent({}, &error);
  ASSERT_TRUE(first.has_value()) << error;
  CommandResult second = RunCommand(
      {testing::AgentBinaryPath(), absl::StrCat("--listen=", first->address())},
      kRefuseBound);
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_THAT(second.output, HasSubstr(Refusal("--listen", first->port)));
  ExpectNoGrpcCoreDump(second.output);
}

class ServerPortsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::optional<ServerProcess> server = testing::StartServer(
        {"--target=127.0.0.1:1", "--report_interval=0"}, &error);
    ASSERT_TRUE(server.has_value()) << error;
    first_.emplace(std::move(*server));
  }

  CommandResult StartSecond(const std::string& grpc_listen,
                            const std::string& http_listen) {
    return RunCommand({testing::ServerBinaryPath(), "--target=127.0.0.1:1",
                       "--report_interval=0", "--grpc_listen=" + grpc_listen,
                       "--http_listen=" + http_listen},
                      kRefuseBound);
  }

  std::optional<ServerProcess> first_;
};

TEST_F(ServerPortsTest, SecondServerOnTheSameHttpPortRefusesToStart) {
  CommandResult second =
      StartSecond("127.0.0.1:0", absl::StrCat("127.0.0.1:", first_->http_port));
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_THAT(second.output,
              HasSubstr(Refusal("--http_listen", first_->http_port)));
  ExpectNoGrpcCoreDump(second.output);
}

TEST_F(ServerPortsTest, SecondServerOnTheSameGrpcPortRefusesToStart) {
  CommandResult second = StartSecond(first_->grpc_address(), "127.0.0.1:0");
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_THAT(second.output,
              HasSubstr(Refusal("--grpc_listen", first_->grpc_port)));
  ExpectNoGrpcCoreDump(second.output);
}

TEST_F(ServerPortsTest, AgentOnTheServersHttpPortRefusesToStart) {
  CommandResult agent =
      RunCommand({testing::AgentBinaryPath(),
                  absl::StrCat("--listen=127.0.0.1:", first_->http_port)},
                 kRefuseBound);
  EXPECT_EQ(agent.exit_code, 1) << agent.output;
  EXPECT_THAT(agent.output, HasSubstr(Refusal("--listen", first_->http_port)));
  ExpectNoGrpcCoreDump(agent.output);
}

}  // namespace
}  // namespace latency
