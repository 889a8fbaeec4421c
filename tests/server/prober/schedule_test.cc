#include "server/prober/schedule.h"

#include <map>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(SpreadFirstDueTest, SpreadsEvenlyOverTheInterval) {
  EXPECT_EQ(SpreadFirstDue(100, kSecond, 0, 4), 100);
  EXPECT_EQ(SpreadFirstDue(100, kSecond, 1, 4), 100 + kSecond / 4);
  EXPECT_EQ(SpreadFirstDue(100, kSecond, 3, 4), 100 + 3 * kSecond / 4);
  EXPECT_EQ(SpreadFirstDue(0, 3600 * kSecond, 9999, 10000),
            3600 * kSecond / 10000 * 9999);
}

TEST(ProbeScheduleTest, FixedRateIndependentOfWhenPopped) {
  ProbeSchedule schedule;
  schedule.Add(0, kSecond);
  std::vector<ProbeSchedule::Due> due;
  schedule.PopDue(0, &due);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].scheduled_ns, 0);
  // Popped 300 ms late: still scheduled at 1 s, next still at 2 s.
  due.clear();
  schedule.PopDue(kSecond + 300'000'000, &due);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].scheduled_ns, kSecond);
  EXPECT_EQ(due[0].skipped, 0u);
  EXPECT_EQ(schedule.NextDueNs(), 2 * kSecond);
}

TEST(ProbeScheduleTest, FallingBehindSkipsTicksInsteadOfBursting) {
  ProbeSchedule schedule;
  schedule.Add(0, kSecond);
  std::vector<ProbeSchedule::Due> due;
  schedule.PopDue(0, &due);
  due.clear();
  schedule.PopDue(3 * kSecond + 5, &due);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].scheduled_ns, 3 * kSecond);
  EXPECT_EQ(due[0].skipped, 2u);
  EXPECT_EQ(schedule.NextDueNs(), 4 * kSecond);
}

TEST(ProbeScheduleTest, SeriesWithDifferentIntervalsInterleave) {
  ProbeSchedule schedule;
  schedule.Add(0, kSecond);
  schedule.Add(0, kSecond / 2);
  std::vector<ProbeSchedule::Due> due;
  int fast = 0, slow = 0;
  for (int64_t t = 0; t <= 2 * kSecond; t += kSecond / 10) {
    due.clear();
    schedule.PopDue(t, &due);
    for (const auto& d : due) (d.series == 0 ? slow : fast)++;
  }
  EXPECT_EQ(slow, 3);  // 0, 1, 2 s
  EXPECT_EQ(fast, 5);  // 0, .5, 1, 1.5, 2 s
  EXPECT_FALSE(ProbeSchedule().NextDueNs().has_value());
}

}  // namespace
}  // namespace latency

namespace latency {
namespace {

TEST(TimedQueueTest, PopsInTimeOrderOnlyWhenDue) {
  TimedQueue<int> queue;
  queue.Push(30, 3);
  queue.Push(10, 1);
  queue.Push(20, 2);
  EXPECT_EQ(queue.next_ns(), 10);
  int64_t time = 0;
  int key = 0;
  EXPECT_FALSE(queue.PopDue(5, &time, &key));
  ASSERT_TRUE(queue.PopDue(25, &time, &key));
  EXPECT_EQ(key, 1);
  ASSERT_TRUE(queue.PopDue(25, &time, &key));
  EXPECT_EQ(key, 2);
  EXPECT_EQ(time, 20);
  EXPECT_FALSE(queue.PopDue(25, &time, &key));
  EXPECT_FALSE(queue.empty());
}

// In-order pushes (one shared timeout) take the ring, others the heap; the
// pops are in time order either way, across the ring's growth and wrap,
// checked against a sorted reference.
TEST(TimedQueueTest, RingAndHeapTogetherPopInTimeOrder) {
  TimedQueue<int> queue;
  std::multimap<int64_t, int> reference;
  std::mt19937 random(7);
  int64_t clock = 0;
  int next_key = 0;
  for (int round = 0; round < 2000; ++round) {
    clock += 10;
    // Mostly "now + 1000" (in order), sometimes a shorter timeout.
    int64_t time = clock + (random() % 8 == 0 ? 300 : 1000);
    queue.Push(time, next_key);
    reference.emplace(time, next_key++);
    int64_t popped_time = 0;
    int key = 0;
    while (queue.PopDue(clock, &popped_time, &key)) {
      ASSERT_FALSE(reference.empty());
      EXPECT_EQ(popped_time, reference.begin()->first);
      reference.erase(reference.begin());
    }
    ASSERT_EQ(queue.empty(), reference.empty());
    if (!reference.empty()) {
      EXPECT_EQ(queue.next_ns(), reference.begin()->first);
    }
  }
}

// Reading takes nothing away: two Prometheus servers scraping the same
// server (an HA pair) both see the minute's maximum, which only ages out.
TEST(LagTrackerTest, MaximumOverTheLastMinuteWhoeverReads) {
  constexpr int64_t kSec = 1'000'000'000;
  LagTracker lag;
  EXPECT_EQ(lag.MaxNs(0), 0);
  lag.Note(5, 1 * kSec);
  lag.Note(50, 2 * kSec);
  lag.Note(7, 3 * kSec);
  EXPECT_EQ(lag.MaxNs(3 * kSec), 50);
  EXPECT_EQ(lag.MaxNs(3 * kSec), 50);  // a second scraper
  lag.Note(9, 31 * kSec);
  EXPECT_EQ(lag.MaxNs(45 * kSec), 50);
  // The 0-10 s slot ages out after a minute; the 30-40 s one remains.
  EXPECT_EQ(lag.MaxNs(60 * kSec), 9);
  EXPECT_EQ(lag.MaxNs(95 * kSec), 0);
  // The slot that held 50 (0-10 s), reused two minutes later, starts afresh.
  lag.Note(3, 120 * kSec);
  EXPECT_EQ(lag.MaxNs(120 * kSec), 3);
}

TEST(ProbeScheduleTest, AddSpreadNumbersSeriesInOrder) {
  ProbeSchedule schedule;
  schedule.AddSpread(0, {1000, 1000, 1000, 1000});
  std::vector<ProbeSchedule::Due> due;
  schedule.PopDue(500, &due);
  ASSERT_EQ(due.size(), 3u);  // first dues 0, 250, 500
  EXPECT_EQ(due[2].series, 2);
  EXPECT_EQ(due[2].scheduled_ns, 500);
}

TEST(ProbeScheduleTest, ARemovedSeriesIsNeverDueAgain) {
  ProbeSchedule schedule;
  schedule.Add(0, 100);
  schedule.Add(50, 100);
  std::vector<ProbeSchedule::Due> due;
  schedule.PopDue(60, &due);
  ASSERT_EQ(due.size(), 2u);
  schedule.Remove(0);
  due.clear();
  schedule.PopDue(1000, &due);
  for (const ProbeSchedule::Due& d : due) EXPECT_EQ(d.series, 1);
  EXPECT_EQ(due.size(), 1u);
  EXPECT_EQ(schedule.Add(2000, 100), 2);  // numbers are not reused
}

}  // namespace
}  // namespace latency
