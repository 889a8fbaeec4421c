// latency_rtt_seconds in the Prometheus exposition: the coarse layout of
// ExpositionHistogram, with exact cumulative counts and an exact _sum.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/prometheus.h"
#include "server/store/result_store.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

using ::testing::ElementsAreArray;

constexpr int64_t kMs = 1'000'000;

Sample IcmpOk(int64_t completed_ns, int64_t rtt_ns) {
  Sample sample;
  sample.target_index = 0;
  sample.kind = ProbeKind::kIcmp;
  sample.scheduled_ns = sample.sent_ns = completed_ns - rtt_ns;
  sample.completed_ns = completed_ns;
  sample.result = SampleResult::kOk;
  sample.rtt_ns = rtt_ns;
  return sample;
}

// Lines of one family's samples for the ICMP series of target "a",
// keyed by the line's name and labels as printed.
std::map<std::string, std::string> HistogramLines(const std::string& text) {
  std::map<std::string, std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "latency_rtt_seconds")) continue;
    if (!absl::StrContains(line, "target=\"a\",kind=\"icmp\"")) continue;
    const size_t space = line.rfind(' ');
    lines[std::string(line.substr(0, space))] =
        std::string(line.substr(space + 1));
  }
  return lines;
}

class RttHistogramExpositionTest : public ::testing::Test {
 protected:
  RttHistogramExpositionTest()
      : store_(clock_, {TargetSpec{.name = "a", .host = "127.0.0.1"}},
               StatusThresholds{}) {}

  std::string Render() {
    return RenderPrometheus(store_, ProberGauges{},
                            [](int) { return TargetCounters{}; });
  }

  testing::FakeClock clock_;
  ResultStore store_;
};

TEST_F(RttHistogramExpositionTest, BucketsCountExactlyAtTheirBounds) {
  // On, just below and just above bounds: a bucket reconstructed from a
  // finer histogram's representatives would misplace these.
  const std::vector<int64_t> rtts = {1 * kMs - 1, 1 * kMs,        1 * kMs + 1,
                                     5 * kMs,     5 * kMs + 1,    10'000 - 1,
                                     10'000,      10'000'000'001, 123'456'789,
                                     999'999'999, 2'500'000'000};
  int64_t t = clock_.MonotonicNanos();
  for (int64_t rtt : rtts) store_.Record(IcmpOk(t += kMs, rtt));

  const std::map<std::string, std::string> lines = HistogramLines(Render());
  std::vector<std::string> les;
  std::vector<uint64_t> cumulative;
  for (int64_t bound_ns : ExpositionHistogram::kBoundsNs) {
    uint64_t expected = 0;
    for (int64_t rtt : rtts) expected += rtt <= bound_ns ? 1 : 0;
    cumulative.push_back(expected);
  }
  std::vector<uint64_t> printed;
  for (const auto& [key, value] : lines) {
    if (!absl::StrContains(key, "_bucket") || absl::StrContains(key, "+Inf")) {
      continue;
    }
    const size_t le = key.find("le=\"");
    ASSERT_NE(le, std::string::npos) << key;
    double bound_seconds = 0;
    ASSERT_TRUE(absl::SimpleAtod(
        key.substr(le + 4, key.find('"', le + 4) - le - 4), &bound_seconds));
    uint64_t count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(value, &count)) << value;
    // std::map orders the keys as strings; place each by its bound.
    const size_t index = ExpositionHistogram::BoundIndexOf(
        static_cast<int64_t>(bound_seconds * 1e9 + 0.5));
    ASSERT_LT(index, ExpositionHistogram::kNumBounds) << key;
    EXPECT_EQ(ExpositionHistogram::kBoundsNs[index],
              static_cast<int64_t>(bound_seconds * 1e9 + 0.5))
        << key;
    if (printed.size() < ExpositionHistogram::kNumBounds) {
      printed.resize(ExpositionHistogram::kNumBounds);
    }
    printed[index] = count;
  }
  EXPECT_THAT(printed, ElementsAreArray(cumulative));
  const std::string inf =
      "latency_rtt_seconds_bucket{target=\"a\",kind=\"icmp\",le=\"+Inf\"}";
  ASSERT_TRUE(lines.contains(inf));
  EXPECT_EQ(lines.at(inf), std::to_string(rtts.size()));
  EXPECT_EQ(lines.at("latency_rtt_seconds_count{target=\"a\",kind=\"icmp\"}"),
            std::to_string(rtts.size()));
}

TEST_F(RttHistogramExpositionTest, SumIsTheExactSumOfTheRtts) {
  // 1 ns + 2 ms + 3.000000007 s: exact to the nanosecond, not midpoints.
  int64_t t = clock_.MonotonicNanos();
  for (int64_t rtt : {int64_t{1}, 2 * kMs, int64_t{3'000'000'007}}) {
    store_.Record(IcmpOk(t += kMs, rtt));
  }
  const std::map<std::string, std::string> lines = HistogramLines(Render());
  EXPECT_EQ(lines.at("latency_rtt_seconds_sum{target=\"a\",kind=\"icmp\"}"),
            "3.002000008");
}

TEST_F(RttHistogramExpositionTest, NoSamplesPrintsZeroCountsAndSum) {
  const std::map<std::string, std::string> lines = HistogramLines(Render());
  EXPECT_EQ(lines.at("latency_rtt_seconds_sum{target=\"a\",kind=\"icmp\"}"),
            "0");
  EXPECT_EQ(lines.at("latency_rtt_seconds_count{target=\"a\",kind=\"icmp\"}"),
            "0");
  // 19 bounds plus +Inf, _sum and _count.
  EXPECT_EQ(lines.size(), ExpositionHistogram::kNumBounds + 3);
}

}  // namespace
}  // namespace latency
