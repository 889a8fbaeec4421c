#ifndef LATENCY_SERVER_PROBER_SCHEDULE_H_
#define LATENCY_SERVER_PROBER_SCHEDULE_H_

#include <atomic>
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

  // Adds one series per interval, numbered in order, with first due times
  // spread evenly across each interval (SpreadFirstDue).
  void AddSpread(int64_t start_ns, const std::vector<int64_t>& intervals_ns);

  // Stops series `series` for good: it is never due again. Its number is
  // not reused (probers keep numbers equal to their slot indices).
  void Remove(int series);

  // Appends every series due at `now_ns` to `due` and schedules its next tick.
  void PopDue(int64_t now_ns, std::vector<Due>* due);

  // The earliest due time, or nullopt when there are no series.
  // A removed series' last tick may still show here once (lazy deletion).
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
  std::vector<bool> removed_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

// LagTracker keeps the largest send lag (actual - scheduled) seen since the
// last Take(). Thread-safe: probers note, metrics readers take.
class LagTracker {
 public:
  void Note(int64_t lag_ns) {
    int64_t previous = max_ns_.load();
    while (lag_ns > previous &&
           !max_ns_.compare_exchange_weak(previous, lag_ns)) {
    }
  }
  int64_t Take() { return max_ns_.exchange(0); }

 private:
  std::atomic<int64_t> max_ns_{0};
};

// TimedQueue pops keys in time order (deadlines, expiries). Entries are
// never removed early: a consumer checks whether a popped key still matters
// (lazy deletion), which keeps push and pop O(log n).
template <typename Key>
class TimedQueue {
 public:
  void Push(int64_t time_ns, const Key& key) { heap_.push({time_ns, key}); }
  bool empty() const { return heap_.empty(); }
  int64_t next_ns() const { return heap_.top().first; }
  // Pops the earliest entry due at `now_ns`; false when none is.
  bool PopDue(int64_t now_ns, int64_t* time_ns, Key* key) {
    if (heap_.empty() || heap_.top().first > now_ns) return false;
    *time_ns = heap_.top().first;
    *key = heap_.top().second;
    heap_.pop();
    return true;
  }

 private:
  using Entry = std::pair<int64_t, Key>;
  struct LaterFirst {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.first > b.first;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, LaterFirst> heap_;
};

// First due time of series `index` of `count` sharing one interval: spread
// evenly across the interval so N targets do not all fire at once.
int64_t SpreadFirstDue(int64_t start_ns, int64_t interval_ns, int index,
                       int count);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_SCHEDULE_H_
