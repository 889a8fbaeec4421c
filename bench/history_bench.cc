// The stored history's budgets (BENCHMARKS.md "History"), measured on the
// real HistoryDb in a temporary directory with a simulated clock:
//   - bytes per target per day: one target (ICMP + gRPC) at 1 probe/s,
//     steady 5 ms +- 2%, written a minute at a time and maintained hourly
//     like the server does: the file's growth from the end of day 1 to the
//     end of day 7 (before minute rows expire), per day;
//   - a simulated year of that target with the default retention (minute
//     rows 7 days, hour rows 400 days): the file size at the end;
//   - one minute's write for 10k ICMP + 1k gRPC targets (one transaction):
//     wall time, and as a share of one core per minute;
//   - the per-sample cost of summing a probe into its minute row;
//   - 30-day (hour rows) and 7-day (minute rows) queries for one target.
//
//   build/bench/history_bench [--days=365] [--targets=11000]
// Prints a Markdown table. SMOKE=1 runs a short version (figures not judged).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/history/history_db.h"
#include "server/stats/history_row.h"

namespace latency {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

// A minute of 60 probes at 5 ms +- 2% (gRPC: + 0.2 ms in the agent).
HistoryRow SteadyMinute(int64_t start_s, bool grpc, std::mt19937_64& random) {
  std::normal_distribution<double> rtt(5e6, 5e6 * 0.02 / 2);
  HistoryRow row;
  row.start_s = start_s;
  for (int s = 0; s < 60; ++s) {
    Sample sample;
    sample.result = SampleResult::kOk;
    sample.rtt_ns = static_cast<int64_t>(rtt(random));
    if (grpc) {
      sample.kind = ProbeKind::kGrpc;
      *sample.rtt_ns += 200'000;
      sample.agent_time_ns = 20'000;
    }
    row.Add(sample, ProbeStatus::kOk);
  }
  return row;
}

int64_t FileBytes(const std::string& path) {
  int64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    struct stat st {};
    if (stat((path + suffix).c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

std::unique_ptr<HistoryDb> Open(const std::string& path) {
  auto db = HistoryDb::Open(path);
  if (!db.ok()) {
    std::fprintf(stderr, "history_bench: %s\n",
                 std::string(db.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(db);
}

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "history_bench: %s\n",
                 std::string(status.message()).c_str());
    std::exit(1);
  }
}

int Run(int days, int targets) {
  const std::string dir = std::filesystem::temp_directory_path() /
                          absl::StrCat("history-bench-", getpid());
  std::filesystem::create_directories(dir);
  std::mt19937_64 random(1);
  constexpr int64_t kStart = 1'796'000'000 / 86400 * 86400;  // a midnight
  std::vector<std::pair<std::string, std::string>> rows;

  // 1. One target, simulated days, a minute at a time with hourly
  // maintenance: the file's growth per day once steady, then its size after
  // `days` with the default retention.
  const std::string year_path = dir + "/year.db";
  auto year = Open(year_path);
  HistoryRetention retention;
  // Growth is measured from the end of day 1 to the end of `last_day`.
  const int last_day = std::min(days, 7);
  int64_t day_one_bytes = 0;
  int64_t last_day_bytes = 0;
  int64_t row_bytes_per_day = 0;
  auto year_start = Clock::now();
  for (int day = 0; day < days; ++day) {
    for (int hour = 0; hour < 24; ++hour) {
      for (int m = 0; m < 60; ++m) {
        const int64_t t = kStart + day * 86400 + hour * 3600 + m * 60;
        std::vector<HistoryEntry> entries = {
            {"target-1", ProbeKind::kIcmp, SteadyMinute(t, false, random)},
            {"target-1", ProbeKind::kGrpc, SteadyMinute(t, true, random)}};
        if (day == 0) {
          for (const HistoryEntry& e : entries) {
            row_bytes_per_day += static_cast<int64_t>(e.row.Encode().size());
          }
        }
        Check(year->WriteMinutes(entries));
      }
      const int64_t end = kStart + day * 86400 + (hour + 1) * 3600;
      Check(year->Maintain(end, end, retention));
    }
    if (day == 0 || day == last_day - 1) {
      year.reset();  // checkpoints the WAL into the file
      (day == 0 ? day_one_bytes : last_day_bytes) = FileBytes(year_path);
      year = Open(year_path);
    }
  }
  const double year_ms = MsSince(year_start);
  year.reset();
  const int64_t year_bytes = FileBytes(year_path);
  rows.emplace_back(
      absl::StrFormat("bytes per target per day (ICMP + gRPC, 1 probe/s): "
                      "file growth, day 1 to day %d",
                      last_day),
      last_day >= 2
          ? absl::StrFormat(
                "%.1f KB (the minute rows themselves: %.1f KB)",
                (last_day_bytes - day_one_bytes) / (last_day - 1.0) / 1024.0,
                row_bytes_per_day / 1024.0)
          : std::string("needs --days=2 or more"));
  rows.emplace_back(
      absl::StrFormat("file after %d simulated days of one target "
                      "(minutes 7 d, hours 400 d)",
                      days),
      absl::StrFormat("%.2f MB (simulated in %.1f s)", year_bytes / 1048576.0,
                      year_ms / 1000));

  // 2. Queries on that year: 30 days of hours, 7 days of minutes.
  year = Open(year_path);
  const int64_t year_end = kStart + int64_t{days} * 86400;
  auto query = [&](int64_t range_s, int64_t resolution) {
    double best = 1e18;
    size_t count = 0;
    for (int i = 0; i < 5; ++i) {
      auto start = Clock::now();
      auto read = year->Read("target-1", ProbeKind::kIcmp, year_end - range_s,
                             year_end, resolution);
      Check(read.status());
      HistoryRow merged;
      for (const HistoryRow& r : *read) merged.Merge(r);
      (void)merged.rtt.Quantile(0.99);
      count = read->size();
      best = std::min(best, MsSince(start));
    }
    return absl::StrFormat("%.1f ms (%d rows merged, best of 5)", best,
                           static_cast<int>(count));
  };
  rows.emplace_back("30-day query, one target (hour rows), p99 over all",
                    query(30 * 86400, 3600));
  rows.emplace_back("7-day query, one target (minute rows), p99 over all",
                    query(7 * 86400, 60));
  year.reset();

  // 3. One minute's write for `targets` series (10 ICMP per gRPC).
  const std::string fleet_path = dir + "/fleet.db";
  auto fleet = Open(fleet_path);
  std::vector<HistoryEntry> minute;
  for (int i = 0; i < targets; ++i) {
    const bool grpc = i % 11 == 10;
    minute.push_back({absl::StrCat("t", i),
                      grpc ? ProbeKind::kGrpc : ProbeKind::kIcmp,
                      SteadyMinute(kStart, grpc, random)});
  }
  auto first_start = Clock::now();
  Check(fleet->WriteMinutes(minute));  // creates every series
  const double first_ms = MsSince(first_start);
  double write_ms = 0;
  // A whole hour per series, so the hourly fold below packs and merges
  // what it does at steady state.
  const int kMinutes = 59;
  for (int m = 1; m <= kMinutes; ++m) {
    for (HistoryEntry& e : minute) e.row.start_s = kStart + 60 * m;
    auto start = Clock::now();
    Check(fleet->WriteMinutes(minute));
    write_ms += MsSince(start);
  }
  write_ms /= kMinutes;
  auto maintain_start = Clock::now();
  Check(fleet->Maintain(kStart + 3600, kStart + 3600, retention));
  const double maintain_ms = MsSince(maintain_start);
  rows.emplace_back(
      absl::StrFormat("one minute's write, %d series (one transaction), "
                      "averaged over an hour",
                      targets),
      absl::StrFormat("%.0f ms (%.2f%% of one core; first minute %.0f ms)",
                      write_ms, write_ms / 600.0, first_ms));
  rows.emplace_back(
      absl::StrFormat("hourly fold + pack + expiry, %d series", targets),
      absl::StrFormat("%.0f ms once an hour, 60 minute rows a "
                      "series (%.3f%% of one core)",
                      maintain_ms, maintain_ms / 36000.0));
  fleet.reset();

  // 4. Summing a probe into its minute (on the prober's thread).
  {
    HistoryRow row;
    std::normal_distribution<double> rtt(5e6, 5e4);
    std::vector<Sample> samples(1 << 16);
    for (Sample& s : samples) {
      s.result = SampleResult::kOk;
      s.rtt_ns = static_cast<int64_t>(rtt(random));
    }
    auto start = Clock::now();
    for (int round = 0; round < 16; ++round) {
      for (const Sample& s : samples) row.Add(s, ProbeStatus::kOk);
      row = HistoryRow();
    }
    const double ns = MsSince(start) * 1e6 / (16.0 * samples.size());
    rows.emplace_back(
        "summing one probe into its minute row",
        absl::StrFormat("%.0f ns (11k probes/s: %.3f%% of one core)", ns,
                        ns * 11000 / 1e7));
  }

  std::printf("| measure | figure |\n|---|---|\n");
  for (const auto& [what, figure] : rows) {
    std::printf("| %s | %s |\n", what.c_str(), figure.c_str());
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace latency

int main(int argc, char** argv) {
  const bool smoke = std::getenv("SMOKE") != nullptr;
  int days = smoke ? 3 : 365;
  int targets = smoke ? 1100 : 11000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--days=", 0) == 0) days = std::atoi(arg.c_str() + 7);
    if (arg.rfind("--targets=", 0) == 0) targets = std::atoi(arg.c_str() + 10);
  }
  if (days < 1 || targets < 11) {
    std::fprintf(stderr,
                 "usage: history_bench [--days=N>=1] [--targets=N>=11]\n");
    return 2;
  }
  return latency::Run(days, targets);
}
