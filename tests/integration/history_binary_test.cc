// The stored history through the real binaries: a server stopped and started
// again answers the same past (GetHistory via latencyctl, the HTTP route),
// and bad history settings are refused at start.
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.pb.h"
#include "server/history/history_db.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::CliBinaryPath;
using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerBinaryPath;
using ::latency::testing::ServerProcess;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;

constexpr absl::Duration kStartup = absl::Seconds(30);

template <typename Message>
Message FromJson(const std::string& text) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status =
      google::protobuf::util::JsonStringToMessage(text, &message, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return message;
}

class HistoryBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "history-bin-XXXXXX";
    dir_ = mkdtemp(pattern.data());
    std::string error;
    std::optional<AgentProcess> agent = testing::StartAgent({}, &error);
    ASSERT_TRUE(agent.has_value()) << error;
    agent_.emplace(std::move(*agent));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::optional<ServerProcess> StartServer(std::string* error) {
    return testing::StartServer(
        {absl::StrCat("--target=lo=", agent_->address()), "--interval=100ms",
         "--report_interval=0", "--history_db=" + dir_ + "/history.db"},
        error);
  }
  CommandResult Cli(const ServerProcess& server,
                    std::vector<std::string> args) {
    args.insert(args.begin(), CliBinaryPath());
    args.push_back("--server=" + server.grpc_address());
    args.push_back("--output=json");
    return RunCommand(args, kStartup);
  }
  // GetLatency and /readyz say history is degraded, with the fix; the
  // server stays ready.
  void ExpectHistoryDegraded(const ServerProcess& server) {
    auto latency =
        FromJson<v1::GetLatencyResponse>(Cli(server, {"status"}).output);
    EXPECT_THAT(latency.history(), HasSubstr("degraded"));
    EXPECT_THAT(latency.history(), HasSubstr("fix:"));
    CommandResult readyz = RunCommand(
        {"curl", "-s", "-w", " %{http_code}", server.http_url("/readyz")},
        kStartup);
    EXPECT_THAT(readyz.output, HasSubstr("ready; history degraded"));
    EXPECT_THAT(readyz.output, HasSubstr(" 200"));
  }
  static uint64_t Sent(const v1::GetHistoryResponse& history) {
    uint64_t sent = 0;
    for (const v1::HistoryPoint& p : history.points()) sent += p.sent();
    return sent;
  }

  std::string dir_;
  std::optional<AgentProcess> agent_;
};

// What a server measured is there after it stops and starts again: every
// probe it completed (the minute in progress is written at stop), with the
// figures it served live.
TEST_F(HistoryBinaryTest, ARestartedServerShowsTheSamePast) {
  std::string error;
  std::optional<ServerProcess> first = StartServer(&error);
  ASSERT_TRUE(first.has_value()) << error;
  v1::GetTargetStatsResponse live;
  ASSERT_TRUE(WaitUntil(
      [&] {
        live = FromJson<v1::GetTargetStatsResponse>(
            Cli(*first, {"stats", "lo", "--window=1h"}).output);
        return live.probes_size() == 2 && live.probes(0).sent() >= 20 &&
               live.probes(1).sent() >= 20;
      },
      kStartup));
  // Nothing stored yet is served as no data, never as zeros.
  CommandResult before = Cli(*first, {"history", "lo", "--since=10m"});
  ASSERT_EQ(before.exit_code, 0) << before.output;
  first->process.Signal(SIGTERM);
  ASSERT_EQ(first->process.Wait(kStartup), 0) << first->process.Output();

  std::optional<ServerProcess> second = StartServer(&error);
  ASSERT_TRUE(second.has_value()) << error;
  for (const char* kind : {"icmp", "grpc"}) {
    CommandResult r =
        Cli(*second, {"history", "lo", "--since=10m", "--kind", kind});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto history = FromJson<v1::GetHistoryResponse>(r.output);
    EXPECT_EQ(history.resolution(), "minute");
    const v1::ProbeStats& stats =
        live.probes(std::string(kind) == "icmp" ? 0 : 1);
    // At least what the first server had served (it probed on until its
    // stop), and not more than 10 s more of probes at 10 a second.
    EXPECT_GE(Sent(history), stats.sent()) << r.output;
    EXPECT_LE(Sent(history), stats.sent() + 100) << r.output;
    double min_ms = 1e9;
    for (const v1::HistoryPoint& p : history.points()) {
      if (p.sent() == 0) {
        EXPECT_FALSE(p.has_p50_ms());
        continue;
      }
      EXPECT_EQ(p.status(), "ok") << r.output;
      min_ms = std::min(min_ms, p.min_ms());
    }
    // The smallest RTT ever seen is no larger than the live window's.
    EXPECT_LE(min_ms, stats.min_ms() + 1e-9) << r.output;
  }
  // The table: a sparkline and rows.
  CommandResult table =
      RunCommand({CliBinaryPath(), "history", "lo", "--since=10m",
                  "--server=" + second->grpc_address()},
                 kStartup);
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_THAT(table.output, HasSubstr("p50 |"));
  EXPECT_THAT(table.output, HasSubstr("(minute rows)"));
}

// Minute rows stored so far (the open hour's rows and the packed ones),
// read beside the running server; `check` gets sqlite3's integrity_check.
int64_t StoredMinutes(const std::string& path, std::string* check) {
  if (!std::filesystem::exists(path)) return -1;
  int64_t rows = -1;
  if (absl::StatusOr<std::unique_ptr<HistoryDb>> history =
          HistoryDb::Open(path);
      history.ok()) {
    rows = 0;
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      auto read = (*history)->Read("lo", kind, 0, INT64_MAX, 60);
      if (read.ok()) rows += static_cast<int64_t>(read->size());
    }
  }
  sqlite3* db = nullptr;
  // Read-write (never create): a read-only connection to a WAL file that
  // is being created can meet an unsized -shm mapping.
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    if (check != nullptr &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      *check = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return rows;
}

// kill -9 (or power loss) after a minute was written: the file passes
// integrity_check and the restarted server serves the written minutes.
TEST_F(HistoryBinaryTest, KillNineKeepsTheWrittenMinutesAndAGoodFile) {
  std::string error;
  std::optional<ServerProcess> first = StartServer(&error);
  ASSERT_TRUE(first.has_value()) << error;
  const std::string path = dir_ + "/history.db";
  // The first minute is written once it ends plus the grace: within ~62 s.
  ASSERT_TRUE(WaitUntil([&] { return StoredMinutes(path, nullptr) > 0; },
                        absl::Seconds(100)))
      << first->process.Output();
  first->process.Signal(SIGKILL);
  first->process.Wait(kStartup);
  std::string check;
  const int64_t rows = StoredMinutes(path, &check);
  EXPECT_EQ(check, "ok");
  ASSERT_GT(rows, 0);

  std::optional<ServerProcess> second = StartServer(&error);
  ASSERT_TRUE(second.has_value()) << error;
  // Every stored minute row is served (ICMP and gRPC points with data).
  int64_t points = 0;
  for (const char* kind : {"icmp", "grpc"}) {
    CommandResult r =
        Cli(*second, {"history", "lo", "--since=10m", "--kind", kind});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto history = FromJson<v1::GetHistoryResponse>(r.output);
    for (const v1::HistoryPoint& p : history.points()) {
      if (p.sent() == 0) continue;
      ++points;
      EXPECT_TRUE(p.has_p50_ms()) << r.output;
    }
  }
  EXPECT_GE(points, rows);
}

TEST_F(HistoryBinaryTest, BadHistorySettingsAreRefusedAtStart) {
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--history_db=" + dir_ + "/missing/h.db"},
        std::vector<std::string>{"--history_minutes=10m"},
        std::vector<std::string>{"--history_minutes=48h",
                                 "--history_hours=24h"}}) {
    std::vector<std::string> argv = {ServerBinaryPath(), "--target=127.0.0.1",
                                     "--grpc_listen=127.0.0.1:0",
                                     "--http_listen=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    CommandResult r = RunCommand(argv, kStartup);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("--history_")) << r.output;
  }
}

// A history file the server cannot use is not an outage: it probes and
// serves live figures, and /readyz and GetLatency say history is degraded,
// with the fix.
TEST_F(HistoryBinaryTest, AnUnusableFileDegradesHistoryNotProbing) {
  const std::string path = dir_ + "/history.db";
  {
    std::FILE* junk = std::fopen(path.c_str(), "w");
    ASSERT_NE(junk, nullptr);
    std::fputs(std::string(8192, 'x').c_str(), junk);
    std::fclose(junk);
  }
  std::string error;
  std::optional<ServerProcess> server = StartServer(&error);
  ASSERT_TRUE(server.has_value()) << error;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cli(*server, {"status", "lo"}).exit_code == 0;
      },
      kStartup));
  ExpectHistoryDegraded(*server);
  CommandResult history = Cli(*server, {"history", "lo"});
  EXPECT_EQ(history.exit_code, 2);
  EXPECT_THAT(history.output, HasSubstr("history degraded"));
}

// A history directory that became read-only (a remount after disk errors,
// a read-only bind mount): the server probes and serves live figures, says
// history is degraded, with the fix, and the history written before is all
// there once the directory is writable again.
TEST_F(HistoryBinaryTest, AReadOnlyDirectoryDegradesHistoryAndLosesNothing) {
  if (RunCommand({"unshare", "--mount", "true"}, kStartup).exit_code != 0) {
    GTEST_SKIP() << "needs a mount namespace (root with CAP_SYS_ADMIN)";
  }
  std::string error;
  std::optional<ServerProcess> first = StartServer(&error);
  ASSERT_TRUE(first.has_value()) << error;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto stats = FromJson<v1::GetTargetStatsResponse>(
            Cli(*first, {"stats", "lo", "--window=1h"}).output);
        return stats.probes_size() == 2 && stats.probes(0).sent() >= 20;
      },
      kStartup));
  first->process.Signal(SIGTERM);
  ASSERT_EQ(first->process.Wait(kStartup), 0) << first->process.Output();
  const int64_t written = StoredMinutes(dir_ + "/history.db", nullptr);
  ASSERT_GT(written, 0);

  // The same server, in a mount namespace where its directory is a
  // read-only bind mount of itself.
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--target=lo=", agent_->address()), "--interval=100ms",
       "--report_interval=0", "--history_db=" + dir_ + "/history.db"},
      &error,
      {"unshare", "--mount", "sh", "-c",
       absl::StrCat("mount --bind -o ro '", dir_, "' '", dir_,
                    "' && exec \"$0\" \"$@\"")});
  ASSERT_TRUE(server.has_value()) << error;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto stats = FromJson<v1::GetTargetStatsResponse>(
            Cli(*server, {"stats", "lo", "--window=1m"}).output);
        return stats.probes_size() == 2 && stats.probes(0).received() >= 10;
      },
      kStartup))
      << server->process.Output();
  ExpectHistoryDegraded(*server);
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kStartup), 0) << server->process.Output();
  EXPECT_THAT(server->process.Output(), HasSubstr("fix:"));

  // Writable again (outside that namespace it always was): every minute
  // written before is still there.
  EXPECT_GE(StoredMinutes(dir_ + "/history.db", nullptr), written);
  std::optional<ServerProcess> third = StartServer(&error);
  ASSERT_TRUE(third.has_value()) << error;
  CommandResult r = Cli(*third, {"history", "lo", "--since=10m"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(Sent(FromJson<v1::GetHistoryResponse>(r.output)), 0u) << r.output;
}

}  // namespace
}  // namespace latency
