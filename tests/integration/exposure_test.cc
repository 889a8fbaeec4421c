// Secure by default: the gRPC query API listens on loopback unless told
// otherwise, and a query surface reachable off-host without a token says so
// loudly at start-up.
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/subprocess.h"

namespace latency {
namespace {

using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ExposureTest, GrpcQueryApiDefaultsToLoopback) {
  CommandResult help = RunCommand({testing::ServerBinaryPath(), "--helpfull"});
  EXPECT_THAT(help.output, HasSubstr("default: \"127.0.0.1:50052\""));
}

TEST(ExposureTest, WarnsWhenASurfaceIsOpenOffHostWithoutAToken) {
  std::string error;
  std::optional<testing::ServerProcess> server =
      testing::StartServer({"--target=lo=127.0.0.1:1",
                            "--grpc_listen=0.0.0.0:0", "--report_interval=0"},
                           &error);
  ASSERT_TRUE(server.has_value()) << error;
  const std::string log = server->process.Output();
  EXPECT_THAT(log, HasSubstr("gRPC query API on 0.0.0.0:0 answers anyone who "
                             "can reach this host"));
  // The HTTP gateway stays on 127.0.0.1 here: no warning for it.
  EXPECT_THAT(log, Not(HasSubstr("HTTP gateway on 127.0.0.1:0 answers")));
}

TEST(ExposureTest, NoWarningOnLoopback) {
  std::string error;
  std::optional<testing::ServerProcess> server = testing::StartServer(
      {"--target=lo=127.0.0.1:1", "--report_interval=0"}, &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_THAT(server->process.Output(), Not(HasSubstr("answers anyone")));
}

}  // namespace
}  // namespace latency
