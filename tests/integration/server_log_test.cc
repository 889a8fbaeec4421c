// What README promises latency-server's log says, read from the real
// binary's output: state transitions (not every probe) and the 1-minute
// summary, the warnings for a token file every user may read and for a
// token without TLS, and the ICMP permission message naming both fixes.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/test_pki.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::ServerProcess;
using ::latency::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(30);

TEST(ServerLogTest, StateTransitionsAndTheMinuteSummary) {
  std::string error;
  std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  std::optional<ServerProcess> server =
      testing::StartServer({absl::StrCat("--target=lo=127.0.0.1:", agent->port),
                            "--interval=200ms", "--report_interval=1s"},
                           &error);
  ASSERT_TRUE(server.has_value()) << error;
  Subprocess& log = server->process;
  EXPECT_TRUE(log.WaitForOutput("target lo icmp: unknown -> ok", kWait))
      << log.Output();
  EXPECT_TRUE(log.WaitForOutput("target lo grpc: unknown -> ok", kWait))
      << log.Output();
  std::optional<std::string> summary = log.WaitForOutput("1m: lo |", kWait);
  ASSERT_TRUE(summary.has_value()) << log.Output();
  EXPECT_THAT(*summary, HasSubstr("| icmp ok p50="));
  EXPECT_THAT(*summary, HasSubstr("| grpc ok p50="));
  EXPECT_THAT(*summary, HasSubstr(" ms loss="));

  // The agent dies: one warning with the cause, not a line per probe.
  agent.reset();  // SIGKILL
  // (Through "degraded" first when a failure lands before the third.)
  std::optional<std::string> down =
      log.WaitForOutput(" -> down (UNAVAILABLE", kWait);
  ASSERT_TRUE(down.has_value()) << log.Output();
  EXPECT_THAT(*down, HasSubstr("target lo grpc: "));
  EXPECT_THAT(*down, HasSubstr("warning"));
  // Transitions only: probes at 200 ms, yet few lines about this target's
  // gRPC probe (unknown -> ok, ok -> degraded maybe, -> down).
  std::string output = log.Output();
  size_t lines = 0;
  for (size_t at = output.find("target lo grpc: "); at != std::string::npos;
       at = output.find("target lo grpc: ", at + 1)) {
    ++lines;
  }
  EXPECT_LE(lines, 4u) << output;
}

// Starts the server with a token file of `mode`; returns its output once
// it serves.
std::string OutputWithToken(mode_t mode, std::string* error) {
  std::string path = ::testing::TempDir() + "/server_log_test.token";
  unlink(path.c_str());
  if (!testing::WriteFile(path, "token-0123456789\n") ||
      chmod(path.c_str(), mode) != 0) {
    *error = "cannot write " + path;
    return "";
  }
  std::optional<ServerProcess> server =
      testing::StartServer({"--target=lo=127.0.0.1:1", "--report_interval=0",
                            "--auth_token_file=" + path},
                           error);
  if (!server) return "";
  return server->process.Output();
}

TEST(ServerLogTest, WarnsAboutAWorldReadableTokenAndATokenWithoutTls) {
  std::string error;
  std::string open = OutputWithToken(0644, &error);
  ASSERT_FALSE(open.empty()) << error;
  EXPECT_THAT(open, HasSubstr("is accessible to every user (mode 644); "
                              "chmod o-rwx it"));
  EXPECT_THAT(open, HasSubstr("--auth_token_file without TLS on every query "
                              "surface: the token crosses the network in "
                              "clear text"));

  std::string closed = OutputWithToken(0640, &error);
  ASSERT_FALSE(closed.empty()) << error;
  EXPECT_THAT(closed, Not(HasSubstr("accessible to every user")));
  EXPECT_THAT(closed, HasSubstr("--auth_token_file without TLS"));
}

// Without CAP_NET_RAW and outside ping_group_range (uid/gid nobody; the
// default range is "1 0"), the server says so and names both fixes.
TEST(ServerLogTest, IcmpPermissionMessageNamesBothFixes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  std::ifstream range_file("/proc/sys/net/ipv4/ping_group_range");
  int64_t low = 0, high = 0;
  range_file >> low >> high;
  if (low <= 65534 && 65534 <= high) {
    GTEST_SKIP() << "ping_group_range " << low << " " << high
                 << " admits gid 65534 here";
  }
  std::optional<Subprocess> server =
      Subprocess::Start({"setpriv", "--reuid=65534", "--regid=65534",
                         "--clear-groups", testing::ServerBinaryPath(),
                         "--target=lo=127.0.0.1:1", "--grpc_listen=127.0.0.1:0",
                         "--http_listen=127.0.0.1:0", "--report_interval=0"});
  ASSERT_TRUE(server.has_value());
  std::optional<std::string> line =
      server->WaitForOutput("cannot open an ICMP socket", kWait);
  ASSERT_TRUE(line.has_value()) << server->Output();
  EXPECT_THAT(*line, HasSubstr("must include group 65534"));
  EXPECT_THAT(*line, HasSubstr("raw: Operation not permitted (needs "
                               "CAP_NET_RAW)"));
  EXPECT_THAT(*line, HasSubstr("sysctl -w net.ipv4.ping_group_range="));
  EXPECT_THAT(*line, HasSubstr("or grant CAP_NET_RAW"));
  // And it still serves (gRPC probes, queries) without ICMP.
  ASSERT_TRUE(server->WaitForOutput("HTTP gateway on port", kWait))
      << server->Output();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(20)), 0) << server->Output();
}

}  // namespace
}  // namespace latency
