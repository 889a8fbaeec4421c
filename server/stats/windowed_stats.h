#ifndef LATENCY_SERVER_STATS_WINDOWED_STATS_H_
#define LATENCY_SERVER_STATS_WINDOWED_STATS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/sample.h"
#include "server/stats/exposition_histogram.h"
#include "server/stats/log_histogram.h"
#include "server/stats/rtt_distribution.h"

namespace latency {

// Number of SampleResult values (kError is the last one).
inline constexpr int kNumSampleResults =
    static_cast<int>(SampleResult::kError) + 1;

// The windows statistics are served over, shortest first, and the longest
// one: SeriesStats keeps no data older than kMaxWindow (plus one slot).
inline constexpr absl::Duration kWindows[] = {
    absl::Minutes(1), absl::Minutes(5), absl::Minutes(15), absl::Hours(1)};
inline constexpr absl::Duration kMaxWindow = absl::Hours(1);

// ParseWindow accepts exactly "1m", "5m", "15m" and "1h"; anything else
// (including "") is InvalidArgument naming the accepted values.
absl::StatusOr<absl::Duration> ParseWindow(absl::string_view text);

// Probe counts over a window.
struct WindowCounts {
  uint64_t sent = 0;  // completed probes, answered or failed
  uint64_t received = 0;
  uint64_t lost = 0;

  // lost / sent * 100; nullopt when sent == 0.
  std::optional<double> loss_percent() const;
};

// WindowSnapshot is one series' statistics over one window. Every latency
// field is nullopt when the window holds no successful sample: a missing
// measurement is never 0. Latencies are RTTs in nanoseconds.
struct WindowSnapshot {
  absl::Duration window;
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;
  // Failures by cause (SampleResultName), only causes that occurred.
  std::map<std::string, uint64_t> failures;
  std::optional<double> loss_percent;

  std::optional<int64_t> last_rtt_ns;  // the latest successful sample's
  std::optional<int64_t> min_ns;       // exact
  std::optional<double> mean_ns;       // exact
  std::optional<int64_t> max_ns;       // exact
  std::optional<double> stddev_ns;     // exact, population (divides by n)
  // Nearest-rank quantiles. Exact when every slot in the window still holds
  // its values (percentiles_exact; e.g. the 1m and 5m windows at 1 Hz), else
  // from the merged LogHistograms (<= 0.1% relative error; clamped to
  // [min_ns, max_ns], which only makes them closer).
  bool percentiles_exact = false;
  std::optional<int64_t> p50_ns;
  std::optional<int64_t> p90_ns;
  std::optional<int64_t> p99_ns;
  std::optional<int64_t> p999_ns;
  // Median of rtt - agent time (gRPC samples that carry agent time); exact
  // or within 0.1% as the RTT quantiles.
  std::optional<int64_t> network_p50_ns;
  // RFC 3550 jitter, see SeriesStats::jitter_ns(); present when the window
  // holds a successful sample and the estimator has a value.
  std::optional<double> jitter_ns;
};

// Counters since the series was created (Prometheus counters).
struct SeriesTotals {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;
  // Indexed by SampleResult; the kOk entry equals received.
  std::array<uint64_t, kNumSampleResults> by_result{};

  uint64_t count(SampleResult result) const {
    return by_result[static_cast<int>(result)];
  }
};

// The latest recorded sample, trimmed to what readers show.
struct LastSample {
  int64_t completed_ns = 0;
  SampleResult result = SampleResult::kTimeout;
  std::optional<int64_t> rtt_ns;
  std::optional<int64_t> network_rtt_ns;
  TimestampSource timestamp_source = TimestampSource::kNone;
  // Sample::error, cut to kMaxErrorBytes; empty on success.
  std::string error;
};

// SeriesStats holds the statistics of ONE probe series (one target x one
// probe kind): sliding-window aggregates for the windows in kWindows, the
// latest sample, consecutive failures, RFC 3550 jitter, and totals plus an
// RTT histogram since creation (in the Prometheus layout).
//
// Not thread-safe: the owner serialises Record and the readers (e.g. under
// the store's mutex). Time is passed in (monotonic ns); nothing here reads a
// clock.
//
// Recording. Record() places a sample in time by completed_ns. A sample that
// is ok() carries an RTT (Sample::rtt_ns; an ok sample without one is
// counted as an "error" failure); it contributes rtt_ns and, when present,
// network_rtt_ns() to the windows. Negative values are clamped to 0. Other
// results count as lost, by cause (SampleResultName). Samples should arrive
// in completion order, but a late one (say a timeout noticed after a later
// reply) still lands in the slot for its own time; samples older than the
// retained hour count only in the totals.
//
// Windows. Data lives in time slots whose width grows with age, so that
// memory is bounded whatever the probe rate and every window keeps its edge
// within a fixed fraction of its length:
//   age < 1 min: 10 s slots; < 5 min: 30 s; < 15 min: 1 min; < 1 h: 5 min.
// A slot holds sent/lost by cause, count, exact min/max, mean and variance
// (Welford, merged exactly), and RttDistributions of RTT and network RTT:
// the values themselves up to 32 per slot (so a 1 Hz series' 10 s and 30 s
// slots answer exact quantiles), a LogHistogram beyond.
// Slots are merged into coarser ones as they age and dropped after the hour.
// A window W covers every slot that ends after now - W: at least the last W
// and at most one slot more, so the windows cover 1m..1m10s, 5m..5m30s,
// 15m..16m and 1h..1h05m. Snapshot accepts any window up to kMaxWindow
// (longer ones are clamped).
//
// Jitter is the RFC 3550 section 6.4.1 estimator over consecutive successful
// RTTs in record order, J += (|D| - J) / 16 with D = rtt[i] - rtt[i-1], taken
// at the latest successful sample. It is not per-window: an exponential
// average with gain 1/16 already forgets old samples (e^-1 after 16), so the
// value is reported for any window that holds a successful sample.
//
// Memory is bounded whatever the probe rate: at most about 40 slots (37 in
// the steady state at 1 Hz) of 120 bytes each, plus 8 bytes per kept value
// (at most 32 per slot) or 4 per populated histogram bucket, plus the
// 168-byte exposition histogram. ApproxMemoryBytes() counts heap blocks as
// glibc allocates them (it matched mallinfo2 within 1%). Measured after two
// hours at 1 probe/s (windowed_stats_test checks the bounds in brackets):
//   steady latency (5 ms +- 2%), ICMP:            13.4 KB  [<= 15 KB]
//   same, gRPC (RTT and network RTT):             24.3 KB  [<= 27 KB]
//     so 10,000 ICMP + 1,000 gRPC series take about 160 MB [<= 176 MB];
//   every RTT in a different bucket, ICMP:        22.8 KB  (gRPC 42.3 KB)
//                                                          [<= 48 KB];
//   100,000 samples in one slot:                  69.3 KB  [<= 80 KB].
// The absolute worst case needs more than 16,000 distinct RTT buckets in
// every slot: 40 x (120 B + 2 x 64 KB), about 5 MB (bench/series_memory
// measures a gRPC series with every bucket in every slot: 4.6 MB at peak).
//
// Movable, not copyable.
class SeriesStats {
 public:
  static constexpr size_t kMaxErrorBytes = 256;

  // created_ns: when the series started (monotonic ns); used by
  // ComputeStatus to tell "no sample yet" from "no sample for too long".
  explicit SeriesStats(int64_t created_ns);

  void Record(const Sample& sample);

  // Statistics over the window ending at now_ns.
  WindowSnapshot Snapshot(absl::Duration window, int64_t now_ns) const;
  // Only the counts (cheap: no histogram merging). With `next_change_ns`,
  // also when the window's oldest slot leaves it (the counts change then
  // without a Record; INT64_MAX when the window is empty).
  WindowCounts Counts(absl::Duration window, int64_t now_ns,
                      int64_t* next_change_ns = nullptr) const;

  int64_t created_ns() const { return created_ns_; }
  // The most recently recorded sample; nullopt before the first.
  const std::optional<LastSample>& last_sample() const { return last_; }
  // Latest completed_ns recorded (max, not last); nullopt before the first.
  std::optional<int64_t> last_completed_ns() const;
  // The latest successful sample (by completed_ns); nullopt before one.
  const std::optional<LastSample>& last_ok_sample() const { return last_ok_; }
  // Failures recorded since the latest successful sample.
  uint64_t consecutive_failures() const { return consecutive_failures_; }
  // RFC 3550 jitter at the latest successful sample; nullopt until two.
  std::optional<double> jitter_ns() const;

  const SeriesTotals& totals() const { return totals_; }
  // RTTs of every successful sample since creation.
  const ExpositionHistogram& total_rtt_histogram() const { return total_rtt_; }

  size_t slot_count() const { return slots_.size(); }
  size_t ApproxMemoryBytes() const;

 private:
  struct Slot {
    explicit Slot(int64_t start, int64_t end) : start_ns(start), end_ns(end) {}

    void AddRtt(int64_t rtt_ns, std::optional<int64_t> network_rtt_ns);
    // Counts, min/max, mean and variance only (what Snapshot sums).
    void MergeMomentsFrom(const Slot& other);
    void MergeFrom(const Slot& other);
    uint64_t lost() const;
    size_t HeapBytes() const;

    // Samples completed in [start_ns, end_ns).
    int64_t start_ns;
    int64_t end_ns;
    // Indexed by SampleResult - 1 (failures only).
    std::array<uint32_t, kNumSampleResults - 1> failures{};
    uint64_t received = 0;
    int64_t min_ns = 0;
    int64_t max_ns = 0;
    double mean_ns = 0;
    double m2 = 0;  // sum of squared deviations from the mean
    RttDistribution rtt;
    // Allocated on the first sample with agent time (gRPC only).
    std::unique_ptr<RttDistribution> network_rtt;
  };

  // The slot holding time t, created (and older slots compacted) as needed;
  // nullptr when t is older than the retained hour.
  Slot* SlotFor(int64_t t);
  void Compact(int64_t now_ns);
  // Index of the first slot that ends after now_ns - window.
  size_t FirstSlotInWindow(absl::Duration window, int64_t now_ns) const;

  int64_t created_ns_;
  int64_t latest_ns_ = 0;
  // Sorted by time, non-overlapping.
  std::vector<Slot> slots_;
  SeriesTotals totals_;
  ExpositionHistogram total_rtt_;
  std::optional<LastSample> last_;
  std::optional<LastSample> last_ok_;
  uint64_t consecutive_failures_ = 0;
  uint64_t ok_samples_ = 0;
  int64_t previous_rtt_ns_ = 0;
  double jitter_ns_ = 0;
};

}  // namespace latency

#endif  // LATENCY_SERVER_STATS_WINDOWED_STATS_H_
