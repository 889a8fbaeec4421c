#include "server/stats/status.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/stats/test_samples.h"

namespace latency {
namespace {

using ::latency::testing::kSec;
using ::latency::testing::kT0;

constexpr ProbeStatus kAll[] = {
    ProbeStatus::kUnknown, ProbeStatus::kOk,    ProbeStatus::kDegraded,
    ProbeStatus::kDown,    ProbeStatus::kStale, ProbeStatus::kNoPermission};
const absl::Duration kInterval = absl::Seconds(1);

TEST(ProbeStatusTest, Names) {
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kUnknown), "unknown");
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kOk), "ok");
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kDegraded), "degraded");
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kDown), "down");
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kStale), "stale");
  EXPECT_STREQ(ProbeStatusName(ProbeStatus::kNoPermission), "no_permission");
}

// Not being allowed to measure is not ok, but any network status says more.
TEST(ProbeStatusTest, NoPermissionRanksBelowEveryNetworkProblem) {
  EXPECT_EQ(Worst(ProbeStatus::kOk, ProbeStatus::kNoPermission),
            ProbeStatus::kNoPermission);
  EXPECT_EQ(Worst(ProbeStatus::kUnknown, ProbeStatus::kNoPermission),
            ProbeStatus::kNoPermission);
  for (ProbeStatus worse :
       {ProbeStatus::kDegraded, ProbeStatus::kStale, ProbeStatus::kDown}) {
    EXPECT_EQ(Worst(ProbeStatus::kNoPermission, worse), worse);
  }
}

TEST(ProbeStatusTest, WorstFollowsSeverity) {
  EXPECT_EQ(Worst(ProbeStatus::kOk, ProbeStatus::kUnknown),
            ProbeStatus::kUnknown);
  EXPECT_EQ(Worst(ProbeStatus::kUnknown, ProbeStatus::kDegraded),
            ProbeStatus::kDegraded);
  EXPECT_EQ(Worst(ProbeStatus::kDegraded, ProbeStatus::kStale),
            ProbeStatus::kStale);
  EXPECT_EQ(Worst(ProbeStatus::kStale, ProbeStatus::kDown), ProbeStatus::kDown);
  for (ProbeStatus a : kAll) {
    EXPECT_EQ(Worst(a, a), a);
    EXPECT_EQ(Worst(ProbeStatus::kOk, a), a);
    EXPECT_EQ(Worst(ProbeStatus::kDown, a), ProbeStatus::kDown);
    for (ProbeStatus b : kAll) {
      EXPECT_EQ(Worst(a, b), Worst(b, a));
      EXPECT_EQ(Severity(Worst(a, b)), std::max(Severity(a), Severity(b)));
    }
  }
}

class ComputeStatusTest : public ::testing::Test {
 protected:
  ProbeStatus StatusAt(int64_t now) const {
    return ComputeStatus(stats_, now, facts_, thresholds_);
  }
  // One probe per second from now_ on.
  void Ok(int n = 1) {
    for (int i = 0; i < n; ++i) {
      stats_.Record(::latency::testing::OkSample(now_ += kSec, 2'000'000));
    }
  }
  void Fail(int n = 1) {
    for (int i = 0; i < n; ++i) {
      stats_.Record(::latency::testing::FailedSample(now_ += kSec));
    }
  }
  ProbeStatus Now() const { return StatusAt(now_); }

  SeriesStats stats_{kT0};
  SeriesFacts facts_;  // interval and timeout: 1 s, like kInterval
  StatusThresholds thresholds_;
  int64_t now_ = kT0;
};

TEST_F(ComputeStatusTest, UnknownUntilTheFirstSampleThenStaleWhenNoneCame) {
  EXPECT_EQ(StatusAt(kT0), ProbeStatus::kUnknown);
  EXPECT_EQ(StatusAt(kT0 + 3 * kSec), ProbeStatus::kUnknown);
  EXPECT_EQ(StatusAt(kT0 + 3 * kSec + 1), ProbeStatus::kStale);
}

TEST_F(ComputeStatusTest, EveryTransitionAndRecovery) {
  EXPECT_EQ(Now(), ProbeStatus::kUnknown);
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  Ok(18);
  Fail();  // 1 / 20 = 5%: not above the threshold
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  Fail();  // 2 / 21 = 9.5%
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
  Fail();  // third in a row
  EXPECT_EQ(Now(), ProbeStatus::kDown);
  Fail(10);
  EXPECT_EQ(Now(), ProbeStatus::kDown);
  Ok();  // the failures are still in the 1-minute window
  EXPECT_EQ(stats_.consecutive_failures(), 0u);
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
  Ok(70);  // the 1m window now holds only successes
  EXPECT_EQ(Now(), ProbeStatus::kOk);

  // Time advances with no completed probe.
  EXPECT_EQ(StatusAt(now_ + 3 * kSec), ProbeStatus::kOk);
  EXPECT_EQ(StatusAt(now_ + 3 * kSec + 1), ProbeStatus::kStale);
  now_ += 600 * kSec;
  EXPECT_EQ(Now(), ProbeStatus::kStale);
  Ok();  // probing resumes
  EXPECT_EQ(Now(), ProbeStatus::kOk);
}

TEST_F(ComputeStatusTest, DownOutranksStale) {
  Ok();
  Fail(3);
  EXPECT_EQ(StatusAt(now_ + 600 * kSec), ProbeStatus::kDown);
}

TEST_F(ComputeStatusTest, StaleOutranksDegraded) {
  Ok(20);
  Fail(2);
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
  EXPECT_EQ(StatusAt(now_ + 4 * kSec), ProbeStatus::kStale);
}

TEST_F(ComputeStatusTest, DegradedUsesOnlyTheLastMinute) {
  Fail(2);
  Ok(100);
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  EXPECT_EQ(stats_.Counts(absl::Hours(1), now_).lost, 2u);
}

TEST_F(ComputeStatusTest, StaleScalesWithTheInterval) {
  Ok();
  facts_.interval = absl::Seconds(10);
  EXPECT_EQ(StatusAt(now_ + 25 * kSec), ProbeStatus::kOk);
  EXPECT_EQ(StatusAt(now_ + 31 * kSec), ProbeStatus::kStale);
}

// A probe completes up to one timeout after it is sent: with a timeout of
// more than two intervals, 3 intervals of silence are a probe in flight, and
// failures must read down, never stale first.
TEST_F(ComputeStatusTest, StaleLimitCoversTheTimeout) {
  facts_.timeout = absl::Seconds(5);
  EXPECT_EQ(StaleLimit(facts_, thresholds_), absl::Seconds(6));
  EXPECT_EQ(StatusAt(kT0 + 6 * kSec), ProbeStatus::kUnknown);
  EXPECT_EQ(StatusAt(kT0 + 6 * kSec + 1), ProbeStatus::kStale);
  Ok();
  // The next probes were sent and are timing out: not stale yet.
  EXPECT_EQ(StatusAt(now_ + 5 * kSec), ProbeStatus::kOk);
  for (int i = 0; i < 3; ++i) {
    now_ += 5 * kSec;
    stats_.Record(::latency::testing::FailedSample(now_));
    EXPECT_NE(Now(), ProbeStatus::kStale);
  }
  EXPECT_EQ(Now(), ProbeStatus::kDown);
  // Short timeouts keep N x interval.
  facts_.timeout = absl::Milliseconds(500);
  EXPECT_EQ(StaleLimit(facts_, thresholds_), absl::Seconds(3));
  thresholds_.stale_after_intervals = 0;
  EXPECT_EQ(StaleLimit(facts_, thresholds_), absl::InfiniteDuration());
}

// Agent and server started together: the first probes are refused while
// the agent comes up. That is connection set-up, not loss.
TEST_F(ComputeStatusTest, FailuresBeforeTheFirstSuccessAreNotLoss) {
  Fail(2);
  Ok();
  facts_.failures_before_first_ok = 2;
  facts_.first_ok_ns = now_;
  Ok(30);
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  // Later failures are loss: 2 of 33 counted probes.
  Fail(2);
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
}

// A target that has never answered, failing fewer times than make it down,
// reads unknown: not ok, and not degraded by a loss rate over a handful.
TEST_F(ComputeStatusTest, FailuresBeforeAnySuccessReadUnknownThenDown) {
  Fail();
  EXPECT_EQ(Now(), ProbeStatus::kUnknown);
  Fail();
  EXPECT_EQ(Now(), ProbeStatus::kUnknown);
  Fail();
  EXPECT_EQ(Now(), ProbeStatus::kDown);
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kOk);  // the 3 failures were set-up
}

TEST_F(ComputeStatusTest, OneLossInAHandfulOfSamplesIsNotDegraded) {
  Ok(5);
  Fail();
  Ok();  // 1 of 7 = 14%, too few probes to mean anything
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  Ok(12);  // 1 of 19
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  Fail();  // 2 of 20
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
  thresholds_.degraded_min_samples = 30;
  EXPECT_EQ(Now(), ProbeStatus::kOk);
}

TEST_F(ComputeStatusTest, ThresholdsAreConfigurable) {
  Ok(18);
  Fail(2);  // 10% loss, two in a row
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);

  thresholds_.degraded_loss_percent = 15;
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  thresholds_.down_after_failures = 2;
  EXPECT_EQ(Now(), ProbeStatus::kDown);
  thresholds_.down_after_failures = 0;  // never down
  Fail(20);
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);

  thresholds_.stale_after_intervals = 10;
  EXPECT_EQ(StatusAt(now_ + 10 * kSec), ProbeStatus::kDegraded);
  EXPECT_EQ(StatusAt(now_ + 10 * kSec + 1), ProbeStatus::kStale);
  thresholds_.stale_after_intervals = 0;    // never stale
  thresholds_.degraded_loss_percent = 100;  // never degraded
  EXPECT_EQ(StatusAt(now_ + 3600 * kSec), ProbeStatus::kOk);
}

TEST_F(ComputeStatusTest, ZeroLossThresholdMakesAnyLossDegraded) {
  thresholds_.degraded_loss_percent = 0;
  Ok(99);
  EXPECT_EQ(Now(), ProbeStatus::kOk);
  Fail();
  Ok();
  EXPECT_EQ(Now(), ProbeStatus::kDegraded);
}

// The store keeps a status until the time ComputeStatus says it holds
// (issue 17: recomputing every series' minute four times a second took 8%
// of the prober's CPU at 10k targets). That time must never be late: the
// status is the same at every moment before it while nothing is recorded.
TEST_F(ComputeStatusTest, StatusHoldsUntilTheTimeItSays) {
  std::mt19937 random(17);
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(random) < percent;
  };
  auto check = [&](int64_t at) {
    int64_t until = 0;
    const ProbeStatus status =
        ComputeStatus(stats_, at, facts_, thresholds_, &until);
    ASSERT_GT(until, at);
    std::vector<int64_t> later = {at + 1, until - 1};
    for (int i = 0; i < 8; ++i) {
      // Also far ahead when it holds "forever" (down, or stale).
      const int64_t span = std::min<int64_t>(until - at, 7200 * kSec);
      later.push_back(
          at + std::uniform_int_distribution<int64_t>(0, span - 1)(random));
    }
    for (int64_t t : later) {
      if (t < at || t >= until) continue;
      ASSERT_EQ(StatusAt(t), status)
          << "at +" << (t - at) << " ns of " << (until - at);
    }
  };
  int checks = 0;
  for (int round = 0; round < 3; ++round) {
    stats_ = SeriesStats(now_);
    facts_ = SeriesFacts();
    thresholds_ = StatusThresholds();
    if (round == 1) thresholds_.degraded_loss_percent = 0;
    if (round == 2) thresholds_.stale_after_intervals = 0;
    check(now_);
    for (int step = 0; step < 600; ++step) {
      // Mostly 1 Hz, sometimes a silence of up to two minutes.
      now_ += chance(5) ? std::uniform_int_distribution<int64_t>(
                              1, 120 * kSec)(random)
                        : kSec;
      const bool ok = !chance(step % 200 < 60 ? 40 : 3);
      stats_.Record(ok ? ::latency::testing::OkSample(now_, 2'000'000)
                       : ::latency::testing::FailedSample(now_));
      if (!facts_.first_ok_ns) {
        if (ok) {
          facts_.first_ok_ns = now_;
        } else {
          ++facts_.failures_before_first_ok;
        }
      }
      check(now_);
      check(now_ +
            std::uniform_int_distribution<int64_t>(0, 90 * kSec)(random));
      checks += 2;
    }
  }
  EXPECT_EQ(checks, 3600);
}

// How long it holds, for the common cases: a steady ok series until it
// would go stale; a down one until something is recorded.
TEST_F(ComputeStatusTest, HoldsUntilStaleOrTheNextSample) {
  int64_t until = 0;
  Ok(30);
  EXPECT_EQ(ComputeStatus(stats_, now_, facts_, thresholds_, &until),
            ProbeStatus::kOk);
  EXPECT_EQ(until, now_ + 3 * kSec + 1);
  Fail(3);
  EXPECT_EQ(ComputeStatus(stats_, now_, facts_, thresholds_, &until),
            ProbeStatus::kDown);
  EXPECT_EQ(until, std::numeric_limits<int64_t>::max());
  // Degraded: until the failures' slot leaves the minute, or stale first.
  Ok();
  EXPECT_EQ(ComputeStatus(stats_, now_, facts_, thresholds_, &until),
            ProbeStatus::kDegraded);
  EXPECT_EQ(until, now_ + 3 * kSec + 1);
  EXPECT_EQ(StatusAt(now_ + 3 * kSec), ProbeStatus::kDegraded);

  // Never stale: set-up failures stop being excused a minute after the
  // first success, which may make it degraded then.
  stats_ = SeriesStats(now_);
  thresholds_.stale_after_intervals = 0;
  Fail(2);
  Ok();
  facts_.failures_before_first_ok = 2;
  facts_.first_ok_ns = now_;
  Ok(25);
  EXPECT_EQ(ComputeStatus(stats_, now_, facts_, thresholds_, &until),
            ProbeStatus::kOk);
  EXPECT_EQ(until, *facts_.first_ok_ns + 60 * kSec + 1);
}

}  // namespace
}  // namespace latency
