// Memory of one probe series' statistics (SeriesStats::ApproxMemoryBytes,
// which tracks glibc's heap blocks) after two simulated hours at 1 Hz, and
// the error of its 1-hour percentiles against the exact ones. The same
// scenarios as windowed_stats_test's memory bounds, and the worst case:
// every one of LogHistogram's buckets in every slot, for RTT and network
// RTT. A fake clock, so it runs in a few seconds and its figures do not
// depend on the machine's load. tests/readme/memory_claims.py holds
// README's figures to this table (ctest readme_series_memory).
//
//   build/bench/series_memory        prints a markdown table
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "absl/time/time.h"
#include "server/stats/log_histogram.h"
#include "server/stats/windowed_stats.h"

namespace latency {
namespace {

constexpr int64_t kT0 = 1'000'003'000'000'000;
constexpr int64_t kSec = 1'000'000'000;

struct Scenario {
  const char* name;
  bool grpc;
  int64_t samples;
  int64_t spacing_ns;
  std::function<int64_t(std::mt19937_64&)> rtt;
  // gRPC: the agent's time in each sample (network RTT = RTT - this).
  int64_t agent_time_ns = 40'000;
  // Compare the 1-hour percentiles with the exact ones (keeps every RTT).
  bool check_error = true;
  // Report the largest memory seen (checked once per simulated second)
  // rather than the memory at the end.
  bool peak = false;
};

void Run(const Scenario& scenario) {
  std::mt19937_64 rng(1);
  SeriesStats stats(kT0);
  std::vector<int64_t> all;
  size_t peak = 0;
  int64_t now = kT0;
  for (int64_t i = 0; i < scenario.samples; ++i) {
    now = kT0 + i * scenario.spacing_ns;
    Sample sample;
    sample.kind = scenario.grpc ? ProbeKind::kGrpc : ProbeKind::kIcmp;
    sample.rtt_ns = scenario.rtt(rng);
    sample.completed_ns = now;
    sample.sent_ns = sample.scheduled_ns = now - *sample.rtt_ns;
    sample.result = SampleResult::kOk;
    if (scenario.grpc) sample.agent_time_ns = scenario.agent_time_ns;
    stats.Record(sample);
    if (scenario.check_error) all.push_back(*sample.rtt_ns);
    if (scenario.peak &&
        (now - kT0) / kSec != (now - kT0 - scenario.spacing_ns) / kSec) {
      peak = std::max(peak, stats.ApproxMemoryBytes());
    }
  }
  const size_t memory = scenario.peak
                            ? std::max(peak, stats.ApproxMemoryBytes())
                            : stats.ApproxMemoryBytes();
  const WindowSnapshot s = stats.Snapshot(absl::Hours(1), now);
  double worst = 0;
  if (scenario.check_error) {
    for (auto [q, got] : {std::pair{0.5, s.p50_ns}, std::pair{0.9, s.p90_ns},
                          std::pair{0.99, s.p99_ns}}) {
      // Nearest rank over the samples the window holds (the last received:
      // the hour plus at most one slot).
      std::vector<int64_t> sorted(
          all.end() - static_cast<std::ptrdiff_t>(s.received), all.end());
      std::sort(sorted.begin(), sorted.end());
      const size_t rank = static_cast<size_t>(std::max(
          1.0, std::ceil(q * static_cast<double>(sorted.size()) - 1e-7)));
      const double exact = static_cast<double>(sorted[rank - 1]);
      worst =
          std::max(worst, std::abs(static_cast<double>(*got) - exact) / exact);
    }
  }
  char error[32] = "-";
  if (scenario.check_error) {
    std::snprintf(error, sizeof(error), "%.3f%%", 100 * worst);
  }
  std::printf("| %s | %s | %.1f | %s |\n", scenario.name,
              scenario.grpc ? "gRPC" : "ICMP",
              static_cast<double>(memory) / 1024, error);
}

}  // namespace
}  // namespace latency

int main() {
  using latency::kSec;
  auto steady = [](std::mt19937_64& rng) {
    return static_cast<int64_t>(
        std::normal_distribution<double>(5e6, 100e3)(rng));  // 5 ms +- 2%
  };
  auto every_bucket = [](std::mt19937_64& rng) {
    return static_cast<int64_t>(
        std::pow(10, std::uniform_real_distribution<double>(3, 10)(rng)));
  };
  std::printf(
      "| scenario (2 h at 1 Hz unless said) | kind | KB per series | "
      "largest 1h p50/p90/p99 error |\n|---|---|---|---|\n");
  for (bool grpc : {false, true}) {
    latency::Run({"steady 5 ms +- 2%", grpc, 7200, kSec, steady});
  }
  for (bool grpc : {false, true}) {
    latency::Run({"every RTT in another bucket (1 us..10 s)", grpc, 7200, kSec,
                  every_bucket});
  }
  latency::Run({"100,000 samples in one 10 s slot", false, 100'000, 1'000,
                every_bucket});
  // Every bucket in every slot: RTTs cycle through all of LogHistogram's
  // buckets in ~9.7 s (one per 600 us), so each 10 s slot, and every coarser
  // slot merged from them, holds all of them; network RTT too (agent time
  // 0). 1 h 10 min, past the point where the oldest slots are dropped.
  const int buckets = latency::LogHistogram::NumBuckets();
  latency::Run({"worst case: every bucket in every slot (peak over 1 h 10 min)",
                true, 70 * 60 * kSec / 600'000, 600'000,
                [buckets, i = 0](std::mt19937_64&) mutable {
                  return latency::LogHistogram::BucketAt(i++ % buckets)
                      .representative_ns;
                },
                /*agent_time_ns=*/0, /*check_error=*/false, /*peak=*/true});
  return 0;
}
