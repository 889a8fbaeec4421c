#include "server/store/result_store.h"

#include <atomic>
#include <thread>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/stats/test_samples.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

using ::latency::testing::FakeClock;
using ::latency::testing::kMs;
using ::latency::testing::kT0;
using ::latency::testing::OkSample;

TargetSpec Target(const std::string& name, const std::string& host) {
  TargetSpec spec;
  spec.name = name;
  spec.host = host;
  return spec;
}

Sample IcmpSample(int target, int64_t completed_ns, int64_t rtt_ns) {
  Sample sample = OkSample(completed_ns, rtt_ns);
  sample.target_index = target;
  return sample;
}

// Agent and server started together: the first gRPC probes are refused.
// Those failures come before the series' first success and are not loss.
TEST(ResultStoreTest, FailuresBeforeTheFirstSuccessDoNotMakeItDegraded) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  int64_t t = kT0;
  for (int i = 0; i < 2; ++i) {
    Sample refused = ::latency::testing::FailedSample(
        t += 1000 * kMs, SampleResult::kUnreachable, "connection refused");
    store.Record(refused);
  }
  for (int i = 0; i < 25; ++i)
    store.Record(IcmpSample(0, t += 1000 * kMs, kMs));
  clock.SetMonotonicNanos(t);
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).status, ProbeStatus::kOk);
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).totals.lost, 2u);
  // Failures after the first success are loss: 2 of 27 counted.
  for (int i = 0; i < 2; ++i) {
    store.Record(::latency::testing::FailedSample(t += 1000 * kMs));
  }
  store.Record(IcmpSample(0, t += 1000 * kMs, kMs));
  clock.SetMonotonicNanos(t);
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).status, ProbeStatus::kDegraded);
}

TEST(ResultStoreTest, ReloadKeepsTheSeriesOfUnchangedTargetsOnly) {
  FakeClock clock(kT0);
  ResultStore old_store(clock,
                        {Target("a", "10.0.0.1"), Target("b", "10.0.0.2"),
                         Target("c", "10.0.0.3")},
                        StatusThresholds());
  for (int target = 0; target < 3; ++target) {
    old_store.Record(IcmpSample(target, kT0 + 10 * kMs, 2 * kMs));
  }

  // "a" keeps its settings (and moves to another index), "b" changes host,
  // "c" is gone and "d" is new.
  ResultStore store(clock,
                    {Target("d", "10.0.0.4"), Target("b", "10.0.0.9"),
                     Target("a", "10.0.0.1")},
                    StatusThresholds(), &old_store);
  EXPECT_EQ(store.Probe(2, ProbeKind::kIcmp).totals.sent, 1u);  // a
  ASSERT_TRUE(store.Probe(2, ProbeKind::kIcmp).last_ok.has_value());
  EXPECT_EQ(store.Probe(2, ProbeKind::kIcmp).last_ok->rtt_ns, 2 * kMs);
  EXPECT_EQ(store.Probe(1, ProbeKind::kIcmp).totals.sent, 0u);  // b changed
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).totals.sent, 0u);  // d is new

  // The carried series goes on counting in the new store.
  store.Record(IcmpSample(2, kT0 + 20 * kMs, 3 * kMs));
  EXPECT_EQ(store.Probe(2, ProbeKind::kIcmp).totals.sent, 2u);
  EXPECT_EQ(store.Snapshot(2, ProbeKind::kIcmp, absl::Minutes(1)).sent, 2u);
}

// The store keeps each series' status until ComputeStatus says it may
// change: queried four times a second, it must read exactly what a fresh
// computation reads, through samples, losses leaving the minute, silences
// (stale) and resumption.
TEST(ResultStoreTest, KeptStatusIsAlwaysTheComputedOne) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  SeriesStats mirror(kT0);
  SeriesFacts facts;
  int64_t t = kT0;
  std::vector<ProbeStatus> seen;
  auto record = [&](const Sample& sample) {
    store.Record(sample);
    mirror.Record(sample);
    if (!facts.first_ok_ns) {
      if (sample.ok()) {
        facts.first_ok_ns = sample.completed_ns;
      } else {
        ++facts.failures_before_first_ok;
      }
    }
  };
  // One second: a sample (unless silent), then four status queries.
  auto second = [&](std::optional<bool> ok) {
    t += 1000 * kMs;
    if (ok) {
      record(*ok ? IcmpSample(0, t, kMs) : ::latency::testing::FailedSample(t));
    }
    for (int q = 0; q < 4; ++q) {
      clock.SetMonotonicNanos(t + q * 250 * kMs);
      const ProbeStatus expected = ComputeStatus(mirror, clock.MonotonicNanos(),
                                                 facts, StatusThresholds());
      ASSERT_EQ(store.Status(0, ProbeKind::kIcmp), expected)
          << "at " << (clock.MonotonicNanos() - kT0) / kMs << " ms";
      if (seen.empty() || seen.back() != expected) seen.push_back(expected);
    }
  };
  for (int i = 0; i < 2; ++i) second(false);  // set-up
  for (int i = 0; i < 30; ++i) second(true);
  for (int i = 0; i < 4; ++i) second(false);   // down, then degraded
  for (int i = 0; i < 100; ++i) second(true);  // the losses leave the minute
  for (int i = 0; i < 10; ++i) second(std::nullopt);  // stale
  for (int i = 0; i < 5; ++i) second(true);
  EXPECT_THAT(seen,
              ::testing::ElementsAre(ProbeStatus::kUnknown, ProbeStatus::kOk,
                                     ProbeStatus::kDegraded, ProbeStatus::kDown,
                                     ProbeStatus::kDegraded, ProbeStatus::kOk,
                                     ProbeStatus::kStale, ProbeStatus::kOk));
}

// A reload that changes only the thresholds carries every series on; their
// status follows the new thresholds at once.
TEST(ResultStoreTest, ReloadedThresholdsApplyToCarriedSeries) {
  FakeClock clock(kT0);
  ResultStore old_store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  int64_t t = kT0;
  for (int i = 0; i < 30; ++i)
    old_store.Record(IcmpSample(0, t += 1000 * kMs, kMs));
  for (int i = 0; i < 2; ++i) {
    old_store.Record(::latency::testing::FailedSample(t += 1000 * kMs));
  }
  clock.SetMonotonicNanos(t);
  EXPECT_EQ(old_store.Status(0, ProbeKind::kIcmp), ProbeStatus::kDegraded);
  StatusThresholds lenient;
  lenient.degraded_loss_percent = 50;
  ResultStore store(clock, {Target("a", "10.0.0.1")}, lenient, &old_store);
  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).totals.sent, 32u);  // carried
  EXPECT_EQ(store.Status(0, ProbeKind::kIcmp), ProbeStatus::kOk);
  EXPECT_EQ(old_store.Status(0, ProbeKind::kIcmp), ProbeStatus::kDegraded);
}

// No ICMP permission is its own state: whatever the series holds (here
// nothing, which would turn stale, then send failures), it reads
// no_permission with the fix, and clearing the mark restores the computed
// status.
TEST(ResultStoreTest, NoPermissionIsItsOwnStateNotDownOrStale) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  store.SetNoPermission(0, ProbeKind::kIcmp, "fix: sysctl or CAP_NET_RAW");
  clock.Advance(absl::Minutes(5));  // long past the stale limit
  ProbeView view = store.Probe(0, ProbeKind::kIcmp);
  EXPECT_EQ(view.status, ProbeStatus::kNoPermission);
  EXPECT_EQ(view.no_permission, "fix: sysctl or CAP_NET_RAW");
  EXPECT_EQ(view.totals.sent, 0u);  // nothing counted as loss
  EXPECT_EQ(store.Probe(0, ProbeKind::kGrpc).status, ProbeStatus::kStale);

  store.SetNoPermission(0, ProbeKind::kIcmp, std::nullopt);
  view = store.Probe(0, ProbeKind::kIcmp);
  EXPECT_EQ(view.status, ProbeStatus::kStale);
  EXPECT_TRUE(view.no_permission.empty());
}

// Probers record, readers query and Watch subscribers come and go, all at
// once: run under TSan (scripts/sanitizers.sh) this checks the locking.
// The writers start only once the reader and the subscriber have run, and
// those run until the writers are done, so the threads really overlap.
TEST(ResultStoreTest, RecordQueryAndSubscribeConcurrently) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1"), Target("b", "10.0.0.2")},
                    StatusThresholds());
  constexpr int kSamples = 2000;
  std::atomic<bool> writing{true};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> subscriptions{0};
  std::vector<std::thread> threads;
  for (int target = 0; target < 2; ++target) {
    threads.emplace_back([&, target] {
      while (reads == 0 || subscriptions == 0) std::this_thread::yield();
      for (int i = 0; i < kSamples; ++i) {
        store.Record(
            IcmpSample(target, clock.MonotonicNanos() + i * kMs, 1 * kMs));
      }
    });
  }
  threads.emplace_back([&] {
    while (writing) {
      for (int target = 0; target < 2; ++target) {
        ProbeView view = store.Probe(target, ProbeKind::kIcmp);
        EXPECT_LE(view.totals.sent, static_cast<uint64_t>(kSamples));
        store.Snapshot(target, ProbeKind::kIcmp, absl::Minutes(1));
        store.TotalHistogram(target, ProbeKind::kIcmp);
      }
      ++reads;
    }
  });
  threads.emplace_back([&] {
    while (writing) {
      int id = store.Subscribe([&delivered](const Sample&) { ++delivered; });
      store.Unsubscribe(id);
      ++subscriptions;
    }
  });
  threads[0].join();
  threads[1].join();
  writing = false;
  threads[2].join();
  threads[3].join();

  EXPECT_EQ(store.Probe(0, ProbeKind::kIcmp).totals.sent, kSamples);
  EXPECT_EQ(store.Probe(1, ProbeKind::kIcmp).totals.sent, kSamples);
  EXPECT_LE(delivered.load(), 2u * kSamples);
  EXPECT_GE(reads.load(), 1u);
  EXPECT_GE(subscriptions.load(), 1u);
}

TEST(ResultStoreTest, CloseSubscriptionsEndsEachOnceAndRefusesNewOnes) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  int closed = 0, samples = 0;
  store.Subscribe([&](const Sample&) { ++samples; }, [&] { ++closed; });
  store.Record(IcmpSample(0, kT0 + kMs, kMs));
  store.CloseSubscriptions();
  store.CloseSubscriptions();
  store.Record(IcmpSample(0, kT0 + 2 * kMs, kMs));
  EXPECT_EQ(samples, 1);
  EXPECT_EQ(closed, 1);
  int late_closed = 0;
  store.Subscribe([&](const Sample&) { ++samples; }, [&] { ++late_closed; });
  EXPECT_EQ(late_closed, 1);  // told at once that the store is closed
}

// A Watch client cancelling while the store closes: its stream unsubscribes
// and is freed. Once Unsubscribe returns, that subscription's on_close must
// never run (it would lock a freed reactor). Here the other subscription's
// on_close cancels it, between the store taking its list and calling it.
TEST(ResultStoreTest, NoCallbackRunsAfterUnsubscribeReturns) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  int second = -1;
  bool second_closed = false;
  store.Subscribe([](const Sample&) {}, [&] { store.Unsubscribe(second); });
  second = store.Subscribe([](const Sample&) {}, [&] { second_closed = true; });
  store.CloseSubscriptions();
  EXPECT_FALSE(second_closed);
}

// The same race with threads: watchers unsubscribe and are freed while the
// store closes and probers record. Each watcher is a heap object its
// callbacks touch, so under ASan (scripts/sanitizers.sh) a late callback is
// a heap-use-after-free; in any build it is also counted.
TEST(ResultStoreTest, UnsubscribeRacingCloseIsSafe) {
  struct Watcher {
    std::atomic<bool> unsubscribed{false};
    std::atomic<int> callbacks{0};
  };
  constexpr int kRounds = 200;
  constexpr int kWatchers = 16;
  std::atomic<int> late{0};
  for (int round = 0; round < kRounds; ++round) {
    FakeClock clock(kT0);
    ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
    std::vector<Watcher*> watchers;
    std::vector<int> ids;
    for (int i = 0; i < kWatchers; ++i) {
      auto* w = new Watcher;
      auto check = [w, &late] {
        if (w->unsubscribed) ++late;
        ++w->callbacks;
      };
      watchers.push_back(w);
      ids.push_back(store.Subscribe([check](const Sample&) { check(); },
                                    [check] { check(); }));
    }
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int half = 0; half < 2; ++half) {
      threads.emplace_back([&, half] {
        while (!go) {
        }
        for (int i = half; i < kWatchers; i += 2) {
          store.Unsubscribe(ids[i]);
          watchers[i]->unsubscribed = true;
          delete watchers[i];
        }
      });
    }
    threads.emplace_back([&] {
      while (!go) {
      }
      for (int i = 0; i < 20; ++i) store.Record(IcmpSample(0, kT0 + i, 1));
    });
    go = true;
    store.CloseSubscriptions();
    for (std::thread& t : threads) t.join();
  }
  EXPECT_EQ(late.load(), 0);
}

// History: each series sums its probes into minutes by the probe's
// scheduled wall-clock minute; TakeMinutes hands over the ended ones once.
TEST(ResultStoreTest, KeepsMinutesByScheduledWallMinuteUntilTaken) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1"), Target("b", "10.0.0.2")},
                    StatusThresholds(), nullptr, /*keep_minutes=*/true);
  const absl::Time minute = absl::FromUnixSeconds(1'796'000'040);
  auto at = [&](int target, absl::Duration offset, int64_t rtt_ns) {
    Sample s =
        IcmpSample(target, kT0 + absl::ToInt64Nanoseconds(offset), rtt_ns);
    s.scheduled_wall = minute + offset;
    return s;
  };
  store.Record(at(0, absl::Seconds(1), 2 * kMs));
  store.Record(at(0, absl::Seconds(61), 3 * kMs));
  // Completes after the next minute's first probe: still its own minute.
  store.Record(at(0, absl::Seconds(59), 4 * kMs));
  store.Record(at(1, absl::Seconds(2), 5 * kMs));

  std::vector<std::tuple<int, int64_t, uint64_t, int64_t>> taken;
  auto take = [&](int target, ProbeKind kind, HistoryRow&& row) {
    EXPECT_EQ(kind, ProbeKind::kIcmp);
    taken.emplace_back(target, row.start_s, row.sent, row.max_ns);
  };
  store.TakeMinutes(1'796'000'099, take);  // the first minute has not ended
  EXPECT_TRUE(taken.empty());
  store.TakeMinutes(1'796'000'100, take);
  EXPECT_THAT(taken, ::testing::ElementsAre(
                         std::make_tuple(0, 1'796'000'040, 2u, 4 * kMs),
                         std::make_tuple(1, 1'796'000'040, 1u, 5 * kMs)));
  taken.clear();
  store.TakeMinutes(1'796'000'100, take);  // taken once
  EXPECT_TRUE(taken.empty());
  store.TakeMinutes(1'796'000'160, take);
  EXPECT_THAT(taken, ::testing::ElementsAre(
                         std::make_tuple(0, 1'796'000'100, 1u, 3 * kMs)));
}

TEST(ResultStoreTest, KeepsNoMinutesUnlessAsked) {
  FakeClock clock(kT0);
  ResultStore store(clock, {Target("a", "10.0.0.1")}, StatusThresholds());
  store.Record(IcmpSample(0, kT0, kMs));
  int rows = 0;
  store.TakeMinutes(INT64_MAX, [&](int, ProbeKind, HistoryRow&&) { ++rows; });
  EXPECT_EQ(rows, 0);
}

}  // namespace
}  // namespace latency
