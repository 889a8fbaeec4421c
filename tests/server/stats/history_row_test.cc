#include "server/stats/history_row.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/stats/varint.h"
#include "tests/server/stats/test_samples.h"

namespace latency {
namespace {

using testing::FailedSample;
using testing::kMs;
using testing::kSec;
using testing::kT0;
using testing::OkSample;
using ::testing::Optional;

HistoryRow RowOf(const std::vector<Sample>& samples,
                 ProbeStatus status = ProbeStatus::kOk) {
  HistoryRow row;
  for (const Sample& s : samples) row.Add(s, status);
  return row;
}

TEST(HistoryRowTest, CountsAggregatesAndFailuresByCause) {
  HistoryRow row = RowOf(
      {OkSample(kT0, 4 * kMs, 1 * kMs), OkSample(kT0 + kSec, 6 * kMs, 1 * kMs),
       FailedSample(kT0 + 2 * kSec),
       FailedSample(kT0 + 3 * kSec, SampleResult::kUnreachable)});
  EXPECT_EQ(row.sent, 4u);
  EXPECT_EQ(row.received, 2u);
  EXPECT_EQ(row.lost(), 2u);
  EXPECT_EQ(row.failures[static_cast<int>(SampleResult::kTimeout)], 1u);
  EXPECT_EQ(row.failures[static_cast<int>(SampleResult::kUnreachable)], 1u);
  EXPECT_EQ(row.min_ns, 4 * kMs);
  EXPECT_EQ(row.max_ns, 6 * kMs);
  EXPECT_THAT(row.mean_ns(), Optional(5.0 * kMs));
  EXPECT_NEAR(*row.stddev_ns(), 1.0 * kMs, 1.0);
  EXPECT_EQ(row.network_rtt.count(), 2u);
}

TEST(HistoryRowTest, StatusIsTheWorstSeenAndUnknownOnlyWithoutOthers) {
  // Unknown (the first probes, before any success) is no status yet: it
  // never outranks what the series reached, in a row or in a merge.
  HistoryRow ok;
  ok.Add(FailedSample(kT0), ProbeStatus::kUnknown);
  ok.Add(OkSample(kT0 + kSec, kMs), ProbeStatus::kOk);
  EXPECT_EQ(ok.status, ProbeStatus::kOk);
  HistoryRow merged;
  merged.Merge(ok);
  EXPECT_EQ(merged.status, ProbeStatus::kOk);
  HistoryRow none;
  none.Add(FailedSample(kT0), ProbeStatus::kUnknown);
  EXPECT_EQ(none.status, ProbeStatus::kUnknown);

  HistoryRow row;
  row.Add(OkSample(kT0, kMs), ProbeStatus::kOk);
  row.Add(FailedSample(kT0 + kSec), ProbeStatus::kDown);
  row.Add(OkSample(kT0 + 2 * kSec, kMs), ProbeStatus::kDegraded);
  EXPECT_EQ(row.status, ProbeStatus::kDown);
}

TEST(HistoryRowTest, MergingRowsEqualsAddingAllTheirSamples) {
  std::mt19937_64 random(3);
  std::lognormal_distribution<double> rtt(std::log(5e6), 0.3);
  std::vector<Sample> all;
  std::vector<HistoryRow> minutes(60);
  for (int m = 0; m < 60; ++m) {
    for (int s = 0; s < 60; ++s) {
      Sample sample =
          (s + m) % 17 == 0
              ? FailedSample(kT0 + (m * 60 + s) * kSec)
              : OkSample(kT0 + (m * 60 + s) * kSec,
                         static_cast<int64_t>(rtt(random)), 100'000);
      minutes[m].Add(sample, ProbeStatus::kOk);
      all.push_back(sample);
    }
  }
  HistoryRow hour;
  for (const HistoryRow& m : minutes) hour.Merge(m);
  HistoryRow direct = RowOf(all);
  EXPECT_EQ(hour.rtt, direct.rtt);
  EXPECT_EQ(hour.network_rtt, direct.network_rtt);
  EXPECT_EQ(hour.sent, direct.sent);
  EXPECT_EQ(hour.received, direct.received);
  EXPECT_EQ(hour.failures, direct.failures);
  EXPECT_EQ(hour.min_ns, direct.min_ns);
  EXPECT_EQ(hour.max_ns, direct.max_ns);
  EXPECT_EQ(hour.sum_ns, direct.sum_ns);
  // The hour's p99 is the hour's, not an average of minutes' p99s.
  EXPECT_EQ(hour.rtt.Quantile(0.99), direct.rtt.Quantile(0.99));
}

TEST(HistoryRowTest, EncodesCompactlyAndDecodesExactly) {
  std::mt19937_64 random(5);
  std::normal_distribution<double> steady(5e6, 5e4);
  std::vector<Sample> samples;
  for (int s = 0; s < 60; ++s) {
    samples.push_back(
        OkSample(kT0 + s * kSec, static_cast<int64_t>(steady(random))));
  }
  HistoryRow row = RowOf(samples);
  row.start_s = 1'796'000'000;
  std::string bytes = row.Encode();
  // A steady minute: counts, aggregates and ~20 histogram buckets.
  EXPECT_LE(bytes.size(), 70u) << bytes.size();
  absl::StatusOr<HistoryRow> back = HistoryRow::Decode(row.start_s, bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == row);

  HistoryRow lost = RowOf({FailedSample(kT0)}, ProbeStatus::kDown);
  back = HistoryRow::Decode(7, lost.Encode());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->status, ProbeStatus::kDown);
  EXPECT_EQ(back->mean_ns(), std::nullopt);
}

TEST(HistoryRowTest, DecodeRejectsDamagedBytes) {
  HistoryRow row = RowOf({OkSample(kT0, 3 * kMs), FailedSample(kT0)});
  const std::string bytes = row.Encode();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(HistoryRow::Decode(0, bytes.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(HistoryRow::Decode(0, bytes + "x").ok());
  std::string counts = bytes;
  counts[0] = 9;  // sent no longer matches received + failures
  EXPECT_FALSE(HistoryRow::Decode(0, counts).ok());
}

// A damaged or hostile file's histogram claiming billions of values in a
// bucket is refused, not expanded (memory and time would go with it);
// found by history_blob_fuzz.
TEST(HistoryRowTest, DecodeRefusesAHistogramLargerThanAnyStoredPeriod) {
  std::string huge(1, '\0');  // escaped bucket: gap, then count
  AppendVarint(3000, huge);   // a bucket near 1 ms
  AppendVarint(uint64_t{1} << 33, huge);
  EXPECT_FALSE(LogHistogram::Decode(huge).ok());
  // A real hour at 1,000 probes/s still decodes.
  std::string hour(1, '\0');
  AppendVarint(3000, hour);
  AppendVarint(3'600'000, hour);
  absl::StatusOr<LogHistogram> decoded = LogHistogram::Decode(hour);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->count(), 3'600'000u);
}

TEST(HistoryRowTest, PeriodStartFloorsToWholePeriods) {
  absl::Time t = absl::FromUnixSeconds(1'796'000'059) + absl::Milliseconds(999);
  EXPECT_EQ(PeriodStart(t, 60), 1'796'000'040);
  EXPECT_EQ(PeriodStart(t, 3600), 1'795'996'800);
  EXPECT_EQ(PeriodStart(absl::FromUnixSeconds(-1), 60), -60);
}

}  // namespace
}  // namespace latency
