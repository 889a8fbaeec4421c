#include "server/prober/schedule.h"

namespace latency {

int ProbeSchedule::Add(int64_t first_due_ns, int64_t interval_ns) {
  int series = static_cast<int>(interval_ns_.size());
  interval_ns_.push_back(interval_ns);
  removed_.push_back(false);
  heap_.push({first_due_ns, series});
  return series;
}

void ProbeSchedule::AddSpread(int64_t start_ns,
                              const std::vector<int64_t>& intervals_ns) {
  int count = static_cast<int>(intervals_ns.size());
  for (int i = 0; i < count; ++i) {
    Add(SpreadFirstDue(start_ns, intervals_ns[i], i, count), intervals_ns[i]);
  }
}

void ProbeSchedule::Remove(int series) { removed_.at(series) = true; }

void ProbeSchedule::PopDue(int64_t now_ns, std::vector<Due>* due) {
  while (!heap_.empty() && heap_.top().due_ns <= now_ns) {
    Entry entry = heap_.top();
    heap_.pop();
    if (removed_[entry.series]) continue;  // dropped from the timetable
    int64_t interval = interval_ns_[entry.series];
    uint64_t skipped =
        static_cast<uint64_t>((now_ns - entry.due_ns) / interval);
    int64_t scheduled = entry.due_ns + static_cast<int64_t>(skipped) * interval;
    due->push_back({entry.series, scheduled, skipped});
    heap_.push({scheduled + interval, entry.series});
  }
}

std::optional<int64_t> ProbeSchedule::NextDueNs() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.top().due_ns;
}

int64_t SpreadFirstDue(int64_t start_ns, int64_t interval_ns, int index,
                       int count) {
  if (count <= 0) return start_ns;
  // 128-bit product: interval * index may overflow int64 for huge counts.
  __int128 offset = static_cast<__int128>(interval_ns) * index / count;
  return start_ns + static_cast<int64_t>(offset);
}

}  // namespace latency
