// SIGHUP reloads latency-server's configuration in place: a good file swaps
// the targets without dropping the listening sockets; a bad one changes
// nothing and the log says why.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.pb.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;

std::vector<std::string> TargetNames(const ServerProcess& server) {
  auto r = RunCommand({"curl", "-s", server.http_url("/v1/targets")});
  v1::ListTargetsResponse response;
  if (!google::protobuf::util::JsonStringToMessage(r.output, &response).ok()) {
    return {};
  }
  std::vector<std::string> names;
  for (const auto& target : response.targets()) names.push_back(target.name());
  return names;
}

// Probes of `target` (ICMP) counted over the last hour; 0 when unknown.
uint64_t IcmpSent(const ServerProcess& server, const std::string& target) {
  auto r = RunCommand({"curl", "-s",
                       server.http_url(absl::StrCat("/v1/targets/", target,
                                                    "/stats?window=1h"))});
  v1::GetTargetStatsResponse response;
  if (!google::protobuf::util::JsonStringToMessage(r.output, &response).ok()) {
    return 0;
  }
  for (const auto& probe : response.probes()) {
    if (probe.kind() == v1::PROBE_KIND_ICMP) return probe.sent();
  }
  return 0;
}

TEST(ReloadTest, SighupAppliesAGoodConfigAndKeepsTheOldOneOnABadOne) {
  char path[] = "/tmp/latency-reload-XXXXXX.textproto";
  close(mkstemps(path, 10));
  auto write_config = [&](const std::string& text) {
    std::ofstream(path) << text;
  };
  write_config(R"(targets { name: "one" host: "127.0.0.1" grpc_port: 1 }
                  defaults { interval_ms: 200 })");
  std::string error;
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--config=", path), "--report_interval=0"}, &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_THAT(TargetNames(*server), ::testing::ElementsAre("one"));

  // Some history for "one", which the reload must keep (its settings do
  // not change). Without carry-over it would restart from 0.
  ASSERT_TRUE(WaitUntil([&] { return IcmpSent(*server, "one") >= 10; },
                        absl::Seconds(30)));
  uint64_t sent_before = IcmpSent(*server, "one");

  write_config(R"(targets { name: "one" host: "127.0.0.1" grpc_port: 1 }
                  targets { name: "two" host: "::1" grpc_port: 1 }
                  defaults { interval_ms: 200 })");
  server->process.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil([&] { return TargetNames(*server).size() == 2; },
                        absl::Seconds(30)))
      << server->process.Output();
  EXPECT_GE(IcmpSent(*server, "one"), sent_before);
  EXPECT_THAT(server->process.Output(),
              HasSubstr("configuration reloaded: 2 targets"));
  // Housekeeping has looked at the new session once "two" logs its first
  // transition (targets in order, one pass); "one" kept its status across
  // the reload, so it must not log "unknown -> ..." a second time.
  ASSERT_TRUE(
      server->process
          .WaitForOutput("target two icmp: unknown -> ", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  std::string log = server->process.Output();
  size_t first = log.find("target one icmp: unknown -> ");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("target one icmp: unknown -> ", first + 1),
            std::string::npos)
      << log;

  write_config(R"(targets { name: "one" host: "127.0.0.1" bogus_field: 1 })");
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(
      server->process
          .WaitForOutput("configuration reload failed", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  EXPECT_THAT(server->process.Output(), HasSubstr("bogus_field"));
  EXPECT_THAT(TargetNames(*server), ::testing::ElementsAre("one", "two"));
  // Still serving and probing.
  auto metrics = RunCommand({"curl", "-s", server->http_url("/metrics")});
  EXPECT_THAT(metrics.output, HasSubstr("\"target\":\"one\""));
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  unlink(path);
}

}  // namespace
}  // namespace latency
