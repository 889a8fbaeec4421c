// SIGHUP reloads latency-server's configuration in place: a good file swaps
// the targets without dropping the listening sockets; a bad one changes
// nothing and the log says why.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.grpc.pb.h"
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
  ASSERT_TRUE(WaitUntil([&] { return IcmpSent(*server, "one") >= 20; },
                        absl::Seconds(30)));
  uint64_t sent_before = IcmpSent(*server, "one");
  absl::Time reload_start = absl::Now();

  write_config(R"(targets { name: "one" host: "127.0.0.1" grpc_port: 1 }
                  targets { name: "two" host: "::1" grpc_port: 1 }
                  defaults { interval_ms: 200 })");
  server->process.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil([&] { return TargetNames(*server).size() == 2; },
                        absl::Seconds(30)))
      << server->process.Output();
  // Kept, not restarted: more probes than a series started at the SIGHUP
  // could have sent since (one per 200 ms, plus one in flight), however
  // slow this machine was; a restarted series fails this.
  uint64_t sent_after = IcmpSent(*server, "one");
  int64_t fresh_max =
      (absl::Now() - reload_start) / absl::Milliseconds(200) + 2;
  EXPECT_GE(sent_after, sent_before);
  EXPECT_GT(static_cast<int64_t>(sent_after), fresh_max)
      << "sent before " << sent_before;
  EXPECT_THAT(server->process.Output(),
              HasSubstr("configuration reloaded: 2 targets"));
  // The new session's status log carries on from the old one: "one" kept
  // its series, so it logs no second "unknown -> ok".
  ASSERT_TRUE(
      server->process
          .WaitForOutput("target two icmp: unknown -> ", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  std::string output = server->process.Output();
  size_t first = output.find("target one icmp: unknown -> ");
  ASSERT_NE(first, std::string::npos) << output;
  EXPECT_EQ(output.find("target one icmp: unknown -> ", first + 1),
            std::string::npos)
      << output;

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

// Occurrences of `needle` in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// A server whose targets are DIR/*.json, re-read every 200 ms.
std::optional<ServerProcess> StartWithFileSd(const std::string& dir,
                                             std::string* error) {
  return testing::StartServer(
      {absl::StrCat("--file_sd=", dir, "/*.json"), "--file_sd_refresh=200ms",
       "--interval=200ms", "--report_interval=0"},
      error);
}

// file_sd: the targets follow a directory of Prometheus target files with
// no restart and no SIGHUP. A new file adds its targets while an unchanged
// target keeps its series; a half-written file keeps its last targets; a
// removed file takes its targets away.
TEST(ReloadTest, FileSdTargetsFollowTheFiles) {
  char dir[] = "/tmp/latency-file-sd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // As the tools that write such files do: a temp file renamed into place.
  auto write_file = [&](const std::string& name, const std::string& text) {
    std::string path = absl::StrCat(dir, "/", name);
    std::ofstream(path + ".tmp") << text;
    ASSERT_EQ(rename((path + ".tmp").c_str(), path.c_str()), 0);
  };
  write_file("a.json",
             R"([{"targets": ["one=127.0.0.1:1"], "labels": {"az": "a"}}])");
  std::string error;
  std::optional<ServerProcess> server = StartWithFileSd(dir, &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_THAT(TargetNames(*server), ::testing::ElementsAre("one"));
  auto prometheus = RunCommand(
      {"curl", "-s", server->http_url("/metrics?format=prometheus")});
  EXPECT_THAT(prometheus.output, HasSubstr("az=\"a\""));

  ASSERT_TRUE(WaitUntil([&] { return IcmpSent(*server, "one") >= 10; },
                        absl::Seconds(30)));
  uint64_t sent_before = IcmpSent(*server, "one");
  absl::Time change = absl::Now();
  write_file("b.json", R"([{"targets": ["two=[::1]:1"]}])");
  EXPECT_TRUE(WaitUntil([&] { return TargetNames(*server).size() == 2; },
                        absl::Seconds(30)))
      << server->process.Output();
  // "one" was kept, not restarted (see the SIGHUP test above).
  uint64_t sent_after = IcmpSent(*server, "one");
  int64_t fresh_max = (absl::Now() - change) / absl::Milliseconds(200) + 2;
  EXPECT_GE(sent_after, sent_before);
  EXPECT_GT(static_cast<int64_t>(sent_after), fresh_max)
      << "sent before " << sent_before;
  EXPECT_THAT(server->process.Output(),
              HasSubstr("file_sd: 2 targets from 2 files"));

  write_file("b.json", R"([{"targets": ["two=[::1]:1", )");
  ASSERT_TRUE(
      server->process
          .WaitForOutput("keeping its last 1 targets", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  EXPECT_THAT(TargetNames(*server), ::testing::ElementsAre("one", "two"));

  ASSERT_EQ(unlink(absl::StrCat(dir, "/a.json").c_str()), 0);
  EXPECT_TRUE(WaitUntil(
      [&] { return TargetNames(*server) == std::vector<std::string>{"two"}; },
      absl::Seconds(30)))
      << server->process.Output();
  // The broken file's error is logged once, not every refresh.
  EXPECT_EQ(Count(server->process.Output(), "keeping its last 1 targets"), 1)
      << server->process.Output();

  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  unlink(absl::StrCat(dir, "/b.json").c_str());
  rmdir(dir);
}

// A server whose targets all come from discovery may have none: at start
// (an empty directory, a service with no endpoints yet) and later (the last
// file removed). It starts, answers every surface with an empty fleet, and
// probes targets when they come.
TEST(ReloadTest, DiscoveryMayFindNoTargets) {
  char dir[] = "/tmp/latency-file-sd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string file = absl::StrCat(dir, "/a.json");
  std::string error;
  std::optional<ServerProcess> server = StartWithFileSd(dir, &error);
  ASSERT_TRUE(server.has_value()) << error;
  auto empty_fleet = [&] {
    EXPECT_THAT(TargetNames(*server), ::testing::IsEmpty());
    auto metrics = RunCommand(
        {"curl", "-s", "-w", " %{http_code}", server->http_url("/metrics")});
    EXPECT_THAT(metrics.output, HasSubstr("\"target_count\":0"));
    EXPECT_THAT(metrics.output, ::testing::EndsWith(" 200"));
    auto prometheus =
        RunCommand({"curl", "-s", "-w", " %{http_code}",
                    server->http_url("/metrics?format=prometheus")});
    EXPECT_THAT(prometheus.output, HasSubstr("# TYPE latency_status gauge"));
    EXPECT_THAT(prometheus.output, ::testing::EndsWith(" 200"));
    auto watch = RunCommand({"curl", "-s", "-w", " %{http_code}",
                             server->http_url("/v1/targets/x/stats")});
    EXPECT_THAT(watch.output, ::testing::EndsWith(" 404"));
  };
  empty_fleet();

  std::ofstream(file + ".tmp") << R"([{"targets": ["one=127.0.0.1:1"]}])";
  ASSERT_EQ(rename((file + ".tmp").c_str(), file.c_str()), 0);
  EXPECT_TRUE(WaitUntil([&] { return IcmpSent(*server, "one") >= 2; },
                        absl::Seconds(30)))
      << server->process.Output();

  ASSERT_EQ(unlink(file.c_str()), 0);
  EXPECT_TRUE(WaitUntil([&] { return TargetNames(*server).empty(); },
                        absl::Seconds(30)))
      << server->process.Output();
  empty_fleet();
  EXPECT_THAT(server->process.Output(),
              ::testing::Not(HasSubstr("reload failed")));
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  rmdir(dir);
}

// --file_sd and --dns_sd are repeatable like --target: every value counts,
// not only the last.
TEST(ReloadTest, RepeatedDiscoveryFlagsAllCount) {
  char dir[] = "/tmp/latency-file-sd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string a = absl::StrCat(dir, "/a.json");
  const std::string b = absl::StrCat(dir, "/b.yml");
  std::ofstream(a) << R"([{"targets": ["one=127.0.0.1:1"]}])";
  std::ofstream(b) << "- targets: ['two=127.0.0.2:1']\n";
  std::string error;
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--file_sd=", a), absl::StrCat("--file_sd=", b),
       // getaddrinfo answers a dotted quad itself: no DNS needed here.
       "--dns_sd=a:127.0.0.3:1", "--dns_sd=a:127.0.0.4:1",
       "--report_interval=0"},
      &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_THAT(TargetNames(*server), ::testing::UnorderedElementsAre(
                                        "one", "two", "127.0.0.3", "127.0.0.4"))
      << server->process.Output();
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  unlink(a.c_str());
  unlink(b.c_str());
  rmdir(dir);
}

// A reload that adds a target leaves an unchanged gRPC target's probing
// alone: same channel (no new connection, so no state changes logged and
// no probe timing a TCP set-up), counters carried on, no cancelled call
// recorded as a failure, no second "unknown -> ok".
TEST(ReloadTest, AddingATargetKeepsAnUnchangedTargetsChannel) {
  std::string error;
  std::optional<testing::AgentProcess> agent = testing::StartAgent({}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  char path[] = "/tmp/latency-reload-XXXXXX.textproto";
  close(mkstemps(path, 10));
  const std::string lo = absl::StrCat(
      "targets { name: \"lo\" host: \"127.0.0.1\" grpc_port: ", agent->port,
      " probe { icmp_enabled: false } }\n");
  std::ofstream(path) << lo << "defaults { interval_ms: 50 }\n";
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--config=", path), "--report_interval=0"}, &error);
  ASSERT_TRUE(server.has_value()) << error;
  ASSERT_TRUE(
      server->process
          .WaitForOutput("target lo grpc: unknown -> ok", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  absl::SleepFor(absl::Milliseconds(300));
  // Failed gRPC probes of lo, over every result but ok.
  auto failed = [&] {
    auto r = RunCommand(
        {"curl", "-s", server->http_url("/metrics?format=prometheus")});
    double sum = 0;
    for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
      if (absl::StartsWith(line, "latency_probes_total{") &&
          absl::StrContains(line, "target=\"lo\"") &&
          absl::StrContains(line, "kind=\"grpc\"") &&
          !absl::StrContains(line, "result=\"ok\"")) {
        double value = 0;
        if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
          sum += value;
        }
      }
    }
    return sum;
  };
  const std::string changes_series =
      "latency_grpc_channel_state_changes_total{";
  auto changes = [&] {
    auto r = RunCommand(
        {"curl", "-s", server->http_url("/metrics?format=prometheus")});
    for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
      if (absl::StartsWith(line, changes_series) &&
          absl::StrContains(line, "target=\"lo\"")) {
        double value = -1;
        if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
          return value;
        }
      }
    }
    return -1.0;
  };
  const double changes_before = changes();
  const double failed_before = failed();
  const int channel_lines =
      Count(server->process.Output(), "target lo gRPC channel");
  ASSERT_GE(changes_before, 1) << server->process.Output();

  std::ofstream(path) << lo
                      << "targets { name: \"more\" host: \"127.0.0.1\" "
                         "grpc_port: 1 probe { icmp_enabled: false } }\n"
                      << "defaults { interval_ms: 50 }\n";
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(
      server->process
          .WaitForOutput("target more grpc: unknown -> ", absl::Seconds(30))
          .has_value())
      << server->process.Output();
  absl::SleepFor(absl::Milliseconds(500));  // ~10 more probes of lo
  const std::string output = server->process.Output();
  EXPECT_EQ(Count(output, "target lo gRPC channel"), channel_lines) << output;
  EXPECT_EQ(Count(output, "target lo grpc: unknown -> "), 1) << output;
  EXPECT_THAT(output, HasSubstr("1 kept its probing"));
  EXPECT_EQ(changes(), changes_before);
  EXPECT_EQ(failed(), failed_before) << output;
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  unlink(path);
}

// Highest sequence seen per probe kind on a Watch of `target`, reading
// until every kind in `kinds` reached `at_least` (or the stream ended).
struct Sequences {
  uint64_t icmp = 0;
  uint64_t grpc = 0;
  bool ended = false;
};
Sequences WatchSequences(v1::LatencyService::Stub& stub,
                         const std::string& target, uint64_t at_least) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  v1::WatchRequest request;
  request.set_target(target);
  auto stream = stub.Watch(&context, request);
  Sequences seen;
  bool icmp_seen = false, grpc_seen = false;
  v1::WatchResponse response;
  while (!(icmp_seen && grpc_seen && seen.icmp >= at_least &&
           seen.grpc >= at_least)) {
    if (!stream->Read(&response)) {
      seen.ended = true;
      return seen;
    }
    uint64_t& max =
        response.sample().kind() == v1::PROBE_KIND_ICMP ? seen.icmp : seen.grpc;
    (response.sample().kind() == v1::PROBE_KIND_ICMP ? icmp_seen : grpc_seen) =
        true;
    max = std::max(max, response.sample().sequence());
  }
  context.TryCancel();
  return seen;
}

// The probers themselves carry on through a reload that adds a target: an
// unchanged target's probe sequences continue (its ICMP and gRPC probers
// were not rebuilt, so nothing in flight was dropped and its timetable did
// not restart), and a removed target leaves the APIs.
TEST(ReloadTest, AddingATargetKeepsAnUnchangedTargetsProbers) {
  std::string error;
  std::optional<testing::AgentProcess> agent = testing::StartAgent({}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  char path[] = "/tmp/latency-reload-XXXXXX.textproto";
  close(mkstemps(path, 10));
  const std::string lo = absl::StrCat(
      "targets { name: \"lo\" host: \"127.0.0.1\" grpc_port: ", agent->port,
      " }\n");
  const std::string defaults = "defaults { interval_ms: 50 }\n";
  std::ofstream(path) << lo << defaults;
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--config=", path), "--report_interval=0"}, &error);
  ASSERT_TRUE(server.has_value()) << error;
  auto stub = v1::LatencyService::NewStub(grpc::CreateChannel(
      server->grpc_address(), grpc::InsecureChannelCredentials()));
  Sequences before = WatchSequences(*stub, "lo", 20);
  ASSERT_FALSE(before.ended) << server->process.Output();

  std::ofstream(path) << lo
                      << "targets { name: \"more\" host: \"127.0.0.1\" "
                         "grpc_port: 1 }\n"
                      << defaults;
  const absl::Time reload_start = absl::Now();
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return TargetNames(*server).size() == 2; },
                        absl::Seconds(30)))
      << server->process.Output();
  Sequences after = WatchSequences(*stub, "lo", 0);
  ASSERT_FALSE(after.ended) << server->process.Output();
  // Probers started at the SIGHUP could not have numbered more probes than
  // this, however slow the machine; kept ones continue past `before`.
  const int64_t fresh_max =
      (absl::Now() - reload_start) / absl::Milliseconds(50) + 2;
  EXPECT_GT(after.icmp, before.icmp);
  EXPECT_GT(after.grpc, before.grpc);
  EXPECT_GT(static_cast<int64_t>(after.icmp), fresh_max);
  EXPECT_GT(static_cast<int64_t>(after.grpc), fresh_max);

  // Removing "more" takes it out of the APIs; lo still carries on.
  std::ofstream(path) << lo << defaults;
  server->process.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil([&] { return TargetNames(*server).size() == 1; },
                        absl::Seconds(30)))
      << server->process.Output();
  EXPECT_THAT(TargetNames(*server), ::testing::ElementsAre("lo"));
  Sequences last = WatchSequences(*stub, "lo", 0);
  ASSERT_FALSE(last.ended) << server->process.Output();
  EXPECT_GT(last.grpc, after.grpc);
  EXPECT_GT(last.icmp, after.icmp);
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(absl::Seconds(20)), 0);
  unlink(path);
}

}  // namespace
}  // namespace latency
