#ifndef LATENCY_SERVER_PROBER_SCHEDULE_H_
#define LATENCY_SERVER_PROBER_SCHEDULE_H_

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace latency {

// ProbeSchedule is a pure fixed-rate timetable: each series is due every
// `interval_ns` from its first due time, whatever happened before. The caller
// passes the time in, so tests drive it with plain numbers.
//
// Being late never shifts the timetable (no coordinated omission): a probe
// popped late keeps its scheduled time, and when the caller falls more than
// an interval behind, the missed ticks are reported as `skipped` instead of
// being sent in a burst.
class ProbeSchedule {
 public:
  struct Due {
    int series = 0;
    int64_t scheduled_ns = 0;
    uint64_t skipped = 0;
  };

  // Adds a series and returns its number (0, 1, ...).
  int Add(int64_t first_due_ns, int64_t interval_ns);

  // Appends every series due at `now_ns` to `due` and schedules its next tick.
  void PopDue(int64_t now_ns, std::vector<Due>* due);

  // The earliest due time, or nullopt when there are no series.
  std::optional<int64_t> NextDueNs() const;

  size_t size() const { return interval_ns_.size(); }

 private:
  struct Entry {
    int64_t due_ns;
    int series;
    bool operator>(const Entry& other) const {
      return due_ns != other.due_ns ? due_ns > other.due_ns
                                    : series > other.series;
    }
  };
  std::vector<int64_t> interval_ns_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

// First due time of series `index` of `count` sharing one interval: spread
// evenly across the interval so N targets do not all fire at once.
int64_t SpreadFirstDue(int64_t start_ns, int64_t interval_ns, int index,
                       int count);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_SCHEDULE_H_
