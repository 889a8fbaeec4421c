#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/history/history_db.h"
#include "server/history/history_writer.h"
#include "tests/server/stats/test_samples.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

using ::latency::testing::FailedSample;
using ::latency::testing::FakeClock;
using ::latency::testing::kMs;
using ::latency::testing::kSec;
using ::latency::testing::kT0;
using ::latency::testing::OkSample;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// A fresh directory per test, removed after it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "history-XXXXXX";
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr int64_t kHourStart = 1'796'000'400;  // a whole hour (UTC)

// A minute of 60 probes around `center_ms`, one lost every `loss_every`.
HistoryRow Minute(int64_t start_s, double center_ms, int loss_every = 0) {
  HistoryRow row;
  row.start_s = start_s;
  for (int s = 0; s < 60; ++s) {
    if (loss_every > 0 && s % loss_every == 0) {
      row.Add(FailedSample(kT0 + s * kSec), ProbeStatus::kDegraded);
    } else {
      const auto rtt = static_cast<int64_t>((center_ms + 0.01 * (s % 7)) * 1e6);
      row.Add(OkSample(kT0 + s * kSec, rtt, 50'000), ProbeStatus::kOk);
    }
  }
  return row;
}

std::unique_ptr<HistoryDb> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<HistoryDb>> db = HistoryDb::Open(path);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

TEST(HistoryDbTest, WritesReadsAndSurvivesReopening) {
  TempDir dir;
  std::vector<HistoryEntry> entries;
  for (int m = 0; m < 3; ++m) {
    entries.push_back({"a", ProbeKind::kIcmp, Minute(kHourStart + 60 * m, 5)});
    entries.push_back({"a", ProbeKind::kGrpc, Minute(kHourStart + 60 * m, 7)});
  }
  {
    auto db = OpenOrDie(dir.File("h.db"));
    ASSERT_TRUE(db->WriteMinutes(entries).ok());
  }
  auto db = OpenOrDie(dir.File("h.db"));
  absl::StatusOr<std::vector<HistoryRow>> rows =
      db->Read("a", ProbeKind::kGrpc, kHourStart, kHourStart + 3600, 60);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(3));
  for (int m = 0; m < 3; ++m) EXPECT_TRUE((*rows)[m] == entries[2 * m + 1].row);
  // Another series, a range without rows: nothing (never zeros).
  rows = db->Read("b", ProbeKind::kIcmp, kHourStart, kHourStart + 3600, 60);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
}

// A restart within a minute writes that minute twice: the rows merge.
TEST(HistoryDbTest, ARowWrittenTwiceMerges) {
  TempDir dir;
  auto db = OpenOrDie(dir.File("h.db"));
  HistoryRow first = Minute(kHourStart, 5);
  HistoryRow second = Minute(kHourStart, 9, 3);
  ASSERT_TRUE(db->WriteMinutes({{"a", ProbeKind::kIcmp, first}}).ok());
  ASSERT_TRUE(db->WriteMinutes({{"a", ProbeKind::kIcmp, second}}).ok());
  auto rows = db->Read("a", ProbeKind::kIcmp, kHourStart, kHourStart + 60, 60);
  ASSERT_TRUE(rows.ok());
  ASSERT_THAT(*rows, SizeIs(1));
  HistoryRow both = first;
  both.Merge(second);
  EXPECT_TRUE((*rows)[0] == both);
  EXPECT_EQ((*rows)[0].status, ProbeStatus::kDegraded);
}

// Hour rows are the exact merge of their minutes: a percentile over hours
// equals the one over the minutes themselves, whether the hour was merged
// already or is made from minutes at read time, and a minute arriving after
// its hour was merged still counts.
TEST(HistoryDbTest, HourRowsAreTheExactMergeOfTheirMinutes) {
  TempDir dir;
  auto db = OpenOrDie(dir.File("h.db"));
  std::vector<HistoryEntry> entries;
  HistoryRow hours[2];
  for (int m = 0; m < 120; ++m) {
    HistoryRow row =
        Minute(kHourStart + 60 * m, 5 + m % 11, m % 5 == 0 ? 7 : 0);
    hours[m / 60].Merge(row);
    if (m != 30) entries.push_back({"a", ProbeKind::kIcmp, row});
  }
  hours[0].start_s = kHourStart;
  hours[1].start_s = kHourStart + 3600;
  ASSERT_TRUE(db->WriteMinutes(entries).ok());
  // The first hour is complete, the second is not.
  ASSERT_TRUE(db->Maintain(kHourStart + 3600 + 1800, kHourStart + 7200,
                           HistoryRetention())
                  .ok());
  // Minute 30 comes late (a restart, a slow probe): it reaches its hour row.
  HistoryRow late = Minute(kHourStart + 1800, 5 + 30 % 11, 7);
  ASSERT_TRUE(db->WriteMinutes({{"a", ProbeKind::kIcmp, late}}).ok());
  auto rows =
      db->Read("a", ProbeKind::kIcmp, kHourStart, kHourStart + 7200, 3600);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(2));
  EXPECT_TRUE((*rows)[0] == hours[0]);
  EXPECT_TRUE((*rows)[1] == hours[1]);
  EXPECT_EQ((*rows)[0].rtt.Quantile(0.99), hours[0].rtt.Quantile(0.99));
}

// One number from the file, read beside the HistoryDb (WAL: a second
// connection sees its commits).
int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(raw, sql, -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(raw);
  int64_t value = -1;
  if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
  return value;
}

// An ended hour's minute rows are packed into one compressed chunk per
// series (one key, one record header, deflate across similar minutes), and
// read back exactly; the open hour's minutes stay rows until it ends. A
// minute arriving for a packed hour is merged into its chunk.
TEST(HistoryDbTest, PacksEndedHoursIntoOneCompressedChunkPerSeries) {
  TempDir dir;
  const std::string path = dir.File("h.db");
  auto db = OpenOrDie(path);
  std::vector<HistoryEntry> entries;
  size_t encoded_bytes = 0;
  for (int m = 0; m < 150; ++m) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      HistoryRow row = Minute(kHourStart + 60 * m, 5 + (m % 3) * 0.01);
      if (m < 120) encoded_bytes += row.Encode().size();
      entries.push_back({"a", kind, row});
    }
  }
  ASSERT_TRUE(db->WriteMinutes(entries).ok());
  const int64_t now = kHourStart + 2 * 3600 + 1800;  // hours 0 and 1 ended
  ASSERT_TRUE(db->Maintain(now, now, HistoryRetention()).ok());

  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM minute_chunks"), 4);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM minutes"), 2 * 30);
  const int64_t chunk_bytes =
      QueryInt(path, "SELECT sum(length(rows)) FROM minute_chunks");
  EXPECT_LT(chunk_bytes, static_cast<int64_t>(encoded_bytes) / 2)
      << "packed " << encoded_bytes << " bytes of rows";

  // Minute 30 of the first hour comes late.
  HistoryRow late = Minute(kHourStart + 1800, 9, 3);
  ASSERT_TRUE(db->WriteMinutes({{"a", ProbeKind::kGrpc, late}}).ok());
  entries[2 * 30 + 1].row.Merge(late);
  for (int pass = 0; pass < 2; ++pass) {
    // A range that starts and ends inside chunks and rows alike.
    auto rows = db->Read("a", ProbeKind::kGrpc, kHourStart + 60 * 10,
                         kHourStart + 60 * 140, 60);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_THAT(*rows, SizeIs(130));
    for (int m = 10; m < 140; ++m) {
      EXPECT_TRUE((*rows)[m - 10] == entries[2 * m + 1].row) << "minute " << m;
    }
    // The late row joins its chunk at the next maintenance.
    ASSERT_TRUE(db->Maintain(now, now, HistoryRetention()).ok());
  }
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM minutes"), 2 * 30);
}

TEST(HistoryDbTest, ExpiresRowsPastRetention) {
  TempDir dir;
  auto db = OpenOrDie(dir.File("h.db"));
  std::vector<HistoryEntry> entries;
  for (int m = 0; m < 48 * 60; m += 10) {
    entries.push_back({"a", ProbeKind::kIcmp, Minute(kHourStart + 60 * m, 5)});
  }
  ASSERT_TRUE(db->WriteMinutes(entries).ok());
  const int64_t now = kHourStart + 48 * 3600;
  HistoryRetention retention;
  retention.minutes = absl::Hours(2);
  retention.hours = absl::Hours(24);
  ASSERT_TRUE(db->Maintain(now, now, retention).ok());
  auto minutes = db->Read("a", ProbeKind::kIcmp, kHourStart, now, 60);
  ASSERT_TRUE(minutes.ok());
  ASSERT_FALSE(minutes->empty());
  EXPECT_GE(minutes->front().start_s, now - 2 * 3600);
  auto hours = db->Read("a", ProbeKind::kIcmp, kHourStart, now, 3600);
  ASSERT_TRUE(hours.ok());
  EXPECT_THAT(*hours, SizeIs(24));
  EXPECT_EQ(hours->front().start_s, now - 24 * 3600);
}

TEST(HistoryDbTest, RefusesAFileFromANewerReleaseOrNotADatabase) {
  TempDir dir;
  { auto db = OpenOrDie(dir.File("h.db")); }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("h.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(raw, "PRAGMA user_version = 99", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(raw);
  absl::StatusOr<std::unique_ptr<HistoryDb>> newer =
      HistoryDb::Open(dir.File("h.db"));
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("newer"));

  std::ofstream(dir.File("junk.db")) << std::string(8192, 'x');
  absl::StatusOr<std::unique_ptr<HistoryDb>> junk =
      HistoryDb::Open(dir.File("junk.db"));
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss) << junk.status();
}

// Version 1 is the first schema: a file created by it (tables, version,
// rows) opens and reads with every later release.
TEST(HistoryDbTest, OpensAVersionOneFile) {
  TempDir dir;
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("v1.db").c_str(), &raw), SQLITE_OK);
  const std::string row = Minute(kHourStart, 5).Encode();
  const std::string sql =
      "CREATE TABLE series (id INTEGER PRIMARY KEY, target TEXT NOT NULL,"
      " kind TEXT NOT NULL, UNIQUE (target, kind));"
      "CREATE TABLE minutes (series INTEGER NOT NULL, start_s INTEGER NOT "
      "NULL, row BLOB NOT NULL, PRIMARY KEY (series, start_s)) WITHOUT ROWID;"
      "CREATE TABLE hours (series INTEGER NOT NULL, start_s INTEGER NOT "
      "NULL, row BLOB NOT NULL, PRIMARY KEY (series, start_s)) WITHOUT ROWID;"
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) "
      "WITHOUT ROWID;"
      "INSERT INTO series VALUES (1, 'a', 'icmp');"
      "PRAGMA user_version = 1;";
  ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "INSERT INTO minutes VALUES (1, ?, ?)", -1,
                               &insert, nullptr),
            SQLITE_OK);
  sqlite3_bind_int64(insert, 1, kHourStart);
  sqlite3_bind_blob(insert, 2, row.data(), static_cast<int>(row.size()),
                    SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
  sqlite3_finalize(insert);
  sqlite3_close(raw);

  auto db = OpenOrDie(dir.File("v1.db"));
  for (int pass = 0; pass < 2; ++pass) {
    auto rows =
        db->Read("a", ProbeKind::kIcmp, kHourStart, kHourStart + 60, 60);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_THAT(*rows, SizeIs(1));
    EXPECT_TRUE((*rows)[0] == Minute(kHourStart, 5));
    // The next maintenance packs version 1's minute rows too.
    const int64_t now = kHourStart + 7200;
    ASSERT_TRUE(db->Maintain(now, now, HistoryRetention()).ok());
  }
  EXPECT_EQ(QueryInt(dir.File("v1.db"), "SELECT count(*) FROM minutes"), 0);
}

TargetSpec Target(const std::string& name) {
  TargetSpec spec;
  spec.name = name;
  spec.host = "10.0.0.1";
  return spec;
}

// The writer takes ended minutes from whichever store is current and
// writes them; Stop writes the minute in progress too.
TEST(HistoryWriterTest, WritesEndedMinutesThenTheRestAtStop) {
  TempDir dir;
  FakeClock clock(kT0);
  auto store = std::make_shared<ResultStore>(
      clock, std::vector<TargetSpec>{Target("a")}, StatusThresholds(), nullptr,
      /*keep_minutes=*/true);
  HistoryOptions options;
  options.path = dir.File("h.db");
  HistoryWriter writer(clock, options, [&] { return store; });
  const absl::Time start = absl::FromUnixSeconds(kHourStart);
  for (int s = 0; s < 90; ++s) {
    Sample sample = OkSample(kT0 + s * kSec, (4 + s % 3) * kMs);
    sample.scheduled_wall = start + absl::Seconds(s);
    store->Record(sample);
  }
  writer.RunOnce(start + absl::Seconds(90));
  EXPECT_EQ(writer.health().state, HistoryHealth::State::kOk);
  auto rows = writer.db()->Read("a", ProbeKind::kIcmp, kHourStart,
                                kHourStart + 3600, 60);
  ASSERT_TRUE(rows.ok());
  ASSERT_THAT(*rows, SizeIs(1));
  EXPECT_EQ((*rows)[0].sent, 60u);
  writer.Stop();
  rows = writer.db()->Read("a", ProbeKind::kIcmp, kHourStart, kHourStart + 3600,
                           60);
  ASSERT_TRUE(rows.ok());
  ASSERT_THAT(*rows, SizeIs(2));
  EXPECT_EQ((*rows)[1].sent, 30u);
}

// A database that cannot be written is not an outage: health says why with
// the fix, the rows wait, and once the disk is back nothing is lost.
TEST(HistoryWriterTest, AFailingDiskDegradesThenLosesNothing) {
  TempDir dir;
  FakeClock clock(kT0);
  auto store = std::make_shared<ResultStore>(
      clock, std::vector<TargetSpec>{Target("a")}, StatusThresholds(), nullptr,
      /*keep_minutes=*/true);
  HistoryOptions options;
  options.path = dir.path() + "/not-yet/h.db";  // its directory is missing
  HistoryWriter writer(clock, options, [&] { return store; });
  const absl::Time start = absl::FromUnixSeconds(kHourStart);
  for (int s = 0; s < 180; ++s) {
    Sample sample = OkSample(kT0 + s * kSec, 5 * kMs);
    sample.scheduled_wall = start + absl::Seconds(s);
    store->Record(sample);
    if (s % 60 == 59) writer.RunOnce(start + absl::Seconds(s + 3));
  }
  HistoryHealth health = writer.health();
  EXPECT_EQ(health.state, HistoryHealth::State::kDegraded);
  EXPECT_THAT(health.why, HasSubstr("fix:"));
  EXPECT_EQ(writer.db(), nullptr);

  std::filesystem::create_directory(dir.path() + "/not-yet");
  writer.RunOnce(start + absl::Seconds(183));
  EXPECT_EQ(writer.health().state, HistoryHealth::State::kOk);
  auto rows = writer.db()->Read("a", ProbeKind::kIcmp, kHourStart,
                                kHourStart + 3600, 60);
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, SizeIs(3));  // all three minutes, none lost
}

// A full disk (here: a file-size limit, as ENOSPC would) mid-run.
TEST(HistoryWriterTest, AFullDiskDegradesAndRecovers) {
  TempDir dir;
  FakeClock clock(kT0);
  std::vector<TargetSpec> targets;
  for (int i = 0; i < 200; ++i) targets.push_back(Target(absl::StrCat("t", i)));
  auto store = std::make_shared<ResultStore>(clock, targets, StatusThresholds(),
                                             nullptr, /*keep_minutes=*/true);
  HistoryOptions options;
  options.path = dir.File("h.db");
  HistoryWriter writer(clock, options, [&] { return store; });
  const absl::Time start = absl::FromUnixSeconds(kHourStart);
  auto minute = [&](int m) {
    for (int i = 0; i < 200; ++i) {
      for (int s = 0; s < 60; ++s) {
        Sample sample = OkSample(kT0 + (m * 60 + s) * kSec,
                                 (1 + (i * 7 + s) % 90) * kMs / 3);
        sample.target_index = i;
        sample.scheduled_wall = start + absl::Seconds(m * 60 + s);
        store->Record(sample);
      }
    }
    writer.RunOnce(start + absl::Seconds(m * 60 + 63));
  };
  minute(0);
  ASSERT_EQ(writer.health().state, HistoryHealth::State::kOk);
  const int64_t size = writer.db()->SizeBytes();

  signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  getrlimit(RLIMIT_FSIZE, &old_limit);
  rlimit full = old_limit;
  full.rlim_cur = static_cast<rlim_t>(size);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  minute(1);
  minute(2);
  EXPECT_EQ(writer.health().state, HistoryHealth::State::kDegraded);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);

  minute(3);
  EXPECT_EQ(writer.health().state, HistoryHealth::State::kOk)
      << writer.health().why;
  for (int i : {0, 199}) {
    auto rows = writer.db()->Read(absl::StrCat("t", i), ProbeKind::kIcmp,
                                  kHourStart, kHourStart + 3600, 60);
    ASSERT_TRUE(rows.ok());
    EXPECT_THAT(*rows, SizeIs(4));
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &check, nullptr);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)),
               "ok");
  sqlite3_finalize(check);
  sqlite3_close(raw);
}

}  // namespace
}  // namespace latency
