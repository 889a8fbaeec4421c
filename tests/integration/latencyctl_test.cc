// latencyctl as a user runs it: the real binary against a real agent and
// server (or a listener that never answers), driven by signals the way a
// terminal and Ctrl-C drive it.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::CliBinaryPath;
using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::latency::testing::Subprocess;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;

// Bounds far above what the behaviour needs (milliseconds), far below the
// hangs they catch (forever, or 1 h).
constexpr absl::Duration kPrompt = absl::Seconds(10);
constexpr absl::Duration kStartup = absl::Seconds(30);

// A TCP port that accepts connections in the kernel and never says a word:
// gRPC's handshake never completes, so calls wait until their deadline.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(fd_, 16);
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { close(fd_); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::optional<Subprocess> StartCli(std::vector<std::string> args) {
  args.insert(args.begin(), CliBinaryPath());
  return Subprocess::Start(args);
}

TEST(LatencyctlEchoTest, StreamModeHasADeadline) {
  SilentListener silent;
  CommandResult r =
      RunCommand({CliBinaryPath(), "echo", silent.address(), "--mode=stream",
                  "--count=2", "--timeout=500ms", "--interval=1ms"},
                 kStartup);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("seq=1 error: DEADLINE_EXCEEDED"));
  EXPECT_THAT(r.output, HasSubstr("seq=2 error: DEADLINE_EXCEEDED"));
  EXPECT_THAT(r.output, HasSubstr("2 sent, 0 received"));
}

TEST(LatencyctlEchoTest, SigtermEndsAStreamWaitingForItsReply) {
  SilentListener silent;
  std::optional<Subprocess> cli = StartCli(
      {"echo", silent.address(), "--mode=stream", "--count=1", "--timeout=1h"});
  ASSERT_TRUE(cli.has_value());
  ASSERT_TRUE(cli->WaitForOutput("ECHO ", kStartup)) << cli->Output();
  cli->Signal(SIGTERM);
  std::optional<int> code = cli->Wait(kPrompt);
  ASSERT_TRUE(code.has_value()) << "still waiting after SIGTERM:\n"
                                << cli->Output();
  EXPECT_THAT(cli->Output(), HasSubstr("echo statistics"));
}

TEST(LatencyctlEchoTest, CtrlCEndsALongInterval) {
  std::string error;
  std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  std::optional<Subprocess> cli =
      StartCli({"echo", agent->address(), "--count=0", "--interval=1h"});
  ASSERT_TRUE(cli.has_value());
  ASSERT_TRUE(cli->WaitForOutput("seq=1 rtt=", kStartup)) << cli->Output();
  cli->Signal(SIGINT);
  std::optional<int> code = cli->Wait(kPrompt);
  ASSERT_TRUE(code.has_value()) << "still sleeping after SIGINT:\n"
                                << cli->Output();
  EXPECT_EQ(*code, 0) << cli->Output();
  EXPECT_THAT(cli->Output(), HasSubstr("1 sent, 1 received"));
}

TEST(LatencyctlEchoTest, EveryEchoFailingOnAReachableAgentExitsOne) {
  std::string error;
  std::optional<AgentProcess> agent =
      testing::StartAgent({"--max_message_bytes=1024"}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  CommandResult r =
      RunCommand({CliBinaryPath(), "echo", agent->address(), "--count=2",
                  "--interval=1ms", "--payload_bytes=4096"},
                 kStartup);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("seq=2 error: RESOURCE_EXHAUSTED"));
}

// One agent and a server probing it plus a target that is always down.
class LatencyctlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
    ASSERT_TRUE(agent.has_value()) << error;
    agent_.emplace(std::move(*agent));
    std::optional<ServerProcess> server = testing::StartServer(
        {absl::StrCat("--target=lo=", agent_->address()),
         "--target=bad=127.0.0.1:1", "--interval=100ms", "--report_interval=0"},
        &error);
    ASSERT_TRUE(server.has_value()) << error;
    server_.emplace(std::move(*server));
  }

  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), CliBinaryPath());
    args.push_back("--server=" + server_->grpc_address());
    return RunCommand(args, kStartup);
  }

  std::optional<AgentProcess> agent_;
  std::optional<ServerProcess> server_;
};

TEST_F(LatencyctlServerTest, StatusExitCodeFollowsOnlyTheTargetAskedAbout) {
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cli({"status", "bad"}).exit_code == 1;
      },
      kStartup));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cli({"status", "lo"}).exit_code == 0;
      },
      kStartup))
      << Cli({"status", "lo"}).output;
  // Without a name the overall status counts, and "bad" is down.
  EXPECT_EQ(Cli({"status"}).exit_code, 1);
}

// `latencyctl health` is the containers' HEALTHCHECK: the standard gRPC
// health check of a server or an agent, exit 0 when SERVING and 2 when
// nothing answers (a port that accepts and stays silent included).
TEST_F(LatencyctlServerTest, HealthChecksServerAndAgentWithoutCurl) {
  CommandResult server = Cli({"health"});
  EXPECT_EQ(server.exit_code, 0) << server.output;
  EXPECT_THAT(server.output, HasSubstr(": SERVING"));
  CommandResult agent = RunCommand(
      {CliBinaryPath(), "health", agent_->address(), "--output=json"},
      kStartup);
  EXPECT_EQ(agent.exit_code, 0) << agent.output;
  EXPECT_THAT(agent.output, HasSubstr("\"status\":\"SERVING\""));
  CommandResult refused = RunCommand(
      {CliBinaryPath(), "health", "127.0.0.1:1", "--timeout=2s"}, kStartup);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("UNAVAILABLE"));
  SilentListener silent;
  CommandResult hung = RunCommand(
      {CliBinaryPath(), "health", silent.address(), "--timeout=1s"}, kStartup);
  EXPECT_EQ(hung.exit_code, 2) << hung.output;
  EXPECT_THAT(hung.output, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(LatencyctlServerTest, WatchReconnectsWhenTheServerReloads) {
  // A reload that changes the targets restarts probing and ends every Watch
  // stream (one that changes nothing keeps them open).
  char path[] = "/tmp/latencyctl-watch-XXXXXX.textproto";
  close(mkstemps(path, 10));
  auto write_config = [&](const std::string& extra) {
    std::ofstream(path) << "targets { name: \"lo\" host: \"127.0.0.1\" "
                        << "grpc_port: " << agent_->port << " }\n"
                        << extra << "defaults { interval_ms: 100 }\n";
  };
  write_config("");
  std::string error;
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--config=", path), "--report_interval=0"}, &error);
  ASSERT_TRUE(server.has_value()) << error;
  std::optional<Subprocess> cli =
      StartCli({"watch", "lo", "--server=" + server->grpc_address()});
  ASSERT_TRUE(cli.has_value());
  ASSERT_TRUE(cli->WaitForOutput("  lo  ", kStartup)) << cli->Output();
  write_config("targets { name: \"more\" host: \"127.0.0.1\" grpc_port: 1 }\n");
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(cli->WaitForOutput("reconnected", kStartup)) << cli->Output();
  // Samples keep coming after the reload, and nothing called it unreachable.
  size_t before = cli->Output().size();
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(cli->Output().substr(before), "  lo  "); },
      kStartup))
      << cli->Output();
  EXPECT_THAT(cli->Output(), ::testing::Not(HasSubstr("cannot reach")));
  EXPECT_FALSE(cli->Wait(absl::ZeroDuration()).has_value());
  cli->Signal(SIGINT);
  EXPECT_EQ(cli->Wait(kPrompt), 0) << cli->Output();
  unlink(path);
}

TEST_F(LatencyctlServerTest, SighupEndsWatchLikeAClosedTerminal) {
  std::optional<Subprocess> cli =
      StartCli({"watch", "--server=" + server_->grpc_address()});
  ASSERT_TRUE(cli.has_value());
  ASSERT_TRUE(cli->WaitForOutput("TIME", kStartup)) << cli->Output();
  cli->Signal(SIGHUP);
  EXPECT_EQ(cli->Wait(kPrompt), 128 + SIGHUP) << cli->Output();
}

// --help as a new user reads it: the source file relative to the project,
// never the build machine's checkout path, and defaults that are the real
// ones (no "0" standing for "1s").
TEST(HelpTest, EveryBinaryShowsRealDefaultsAndNoBuildPaths) {
  struct Case {
    std::string binary, flags_file;
  };
  for (const Case& c : {Case{testing::AgentBinaryPath(), "agent/main.cc"},
                        Case{testing::ServerBinaryPath(), "server/main.cc"},
                        Case{CliBinaryPath(), "cli/main.cc"}}) {
    CommandResult r = RunCommand({c.binary, "--help"}, kStartup);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("Flags from " + c.flags_file + ":"))
        << r.output;
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("work/"))) << r.output;
  }
  CommandResult server = RunCommand({testing::ServerBinaryPath(), "--help"});
  EXPECT_THAT(server.output,
              ::testing::Not(::testing::ContainsRegex("default: 0;")))
      << server.output;
  CommandResult cli = RunCommand({CliBinaryPath(), "--help"});
  EXPECT_THAT(cli.output, HasSubstr("default: \"1m\""));
}

// A two-member mesh on loopback: two real servers (different --source)
// probe one real agent and a port nobody answers; `latencyctl matrix` asks
// both at once and prints one row per source.
TEST(LatencyctlMatrixTest, TwoServersOneRowEach) {
  std::string error;
  std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  std::vector<ServerProcess> servers;
  for (const char* source : {"zone-a", "zone-b"}) {
    std::optional<ServerProcess> server = testing::StartServer(
        {absl::StrCat("--target=lo=", agent->address()),
         "--target=gone=127.0.0.1:1", "--interval=100ms", "--report_interval=0",
         absl::StrCat("--source=", source)},
        &error);
    ASSERT_TRUE(server.has_value()) << error;
    servers.push_back(std::move(*server));
  }
  std::vector<std::string> args = {CliBinaryPath(), "matrix", "--kind=grpc",
                                   servers[0].grpc_address(),
                                   servers[1].grpc_address()};
  CommandResult r;
  // Until both servers have a gRPC RTT for lo and call `gone` down.
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = RunCommand(args, kStartup);
        return absl::StrContains(r.output, "down\nzone-b") &&
               absl::EndsWith(r.output, "down\n") &&
               !absl::StrContains(r.output, "unknown");
      },
      kStartup))
      << r.output;
  std::vector<std::string> lines = absl::StrSplit(r.output, '\n');
  ASSERT_GE(lines.size(), 4u) << r.output;
  EXPECT_THAT(lines[1],
              ::testing::MatchesRegex("SOURCE \\\\ TARGET +lo +gone"));
  EXPECT_THAT(lines[2],
              ::testing::MatchesRegex("zone-a +[0-9]+\\.[0-9]{3} +down"));
  EXPECT_THAT(lines[3],
              ::testing::MatchesRegex("zone-b +[0-9]+\\.[0-9]{3} +down"));
  EXPECT_EQ(r.exit_code, 1) << r.output;  // gone is down

  args.push_back("--output=json");
  r = RunCommand(args, kStartup);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 4) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(absl::StrCat("{\"source\":\"zone-b\",\"server\":\"",
                                     servers[1].grpc_address(),
                                     "\",\"target\":\"lo\"")));
}

}  // namespace
}  // namespace latency
