#include "server/store/result_store.h"

#include <algorithm>
#include <atomic>
#include <iterator>

namespace latency {
namespace {

uint64_t NextStoreId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

ResultStore::ResultStore(Clock& clock, std::vector<TargetSpec> targets,
                         StatusThresholds thresholds,
                         const ResultStore* previous, bool keep_minutes)
    : clock_(clock),
      targets_(std::move(targets)),
      thresholds_(thresholds),
      keep_minutes_(keep_minutes),
      id_(NextStoreId()) {
  int64_t now = clock_.MonotonicNanos();
  for (size_t i = 0; i < targets_.size(); ++i) {
    index_by_name_[targets_[i].name] = static_cast<int>(i);
    const int before = previous != nullptr
                           ? previous->FindTarget(targets_[i].name).value_or(-1)
                           : -1;
    if (before >= 0 && previous->targets_[before] == targets_[i]) {
      series_.push_back(previous->series_[2 * before]);
      series_.push_back(previous->series_[2 * before + 1]);
    } else {
      series_.push_back(std::make_shared<Series>(now));
      series_.push_back(std::make_shared<Series>(now));
      // History follows the name: a changed target's open minutes go on in
      // its new series.
      if (before >= 0 && keep_minutes_) {
        for (int k = 0; k < 2; ++k) {
          Series& from = *previous->series_[2 * before + k];
          absl::MutexLock lock(&from.mu);
          series_[2 * i + k]->minutes = std::move(from.minutes);
          from.minutes.clear();
        }
      }
    }
  }
}

void ResultStore::Record(const Sample& sample) {
  if (sample.target_index < 0 ||
      sample.target_index >= static_cast<int>(targets_.size())) {
    return;
  }
  {
    Series& series = SeriesFor(sample.target_index, sample.kind);
    absl::MutexLock lock(&series.mu);
    series.stats.Record(sample);
    series.status_until_ns = series.status_from_ns;  // changed: recompute
    if (!series.first_ok_ns) {
      if (sample.ok()) {
        series.first_ok_ns = sample.completed_ns;
      } else {
        ++series.failures_before_first_ok;
      }
    }
    if (keep_minutes_) {
      AddToMinute(
          series, sample,
          StatusLocked(series, sample.target_index, clock_.MonotonicNanos()));
    }
  }
  std::shared_ptr<const SubscriberList> subscribers;
  {
    absl::MutexLock lock(&subscribers_mu_);
    subscribers = subscribers_;
  }
  if (subscribers == nullptr) return;
  for (const std::shared_ptr<Subscription>& s : *subscribers) {
    absl::MutexLock lock(&s->mu);
    if (s->active) s->on_sample(sample);
  }
}

std::optional<int> ResultStore::FindTarget(const std::string& name) const {
  auto it = index_by_name_.find(name);
  if (it == index_by_name_.end()) return std::nullopt;
  return it->second;
}

bool ResultStore::Enabled(int target, ProbeKind kind) const {
  return kind == ProbeKind::kIcmp ? targets_[target].icmp_enabled
                                  : targets_[target].grpc_enabled;
}

ProbeStatus ResultStore::Status(int target, ProbeKind kind) const {
  int64_t now = clock_.MonotonicNanos();
  const Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  return StatusLocked(series, target, now);
}

ProbeView ResultStore::Probe(int target, ProbeKind kind) const {
  ProbeView view;
  view.kind = kind;
  view.enabled = Enabled(target, kind);
  int64_t now = clock_.MonotonicNanos();
  const Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  const SeriesStats& stats = series.stats;
  view.status = StatusLocked(series, target, now);
  if (series.no_permission) view.no_permission = *series.no_permission;
  view.last = stats.last_sample();
  view.last_ok = stats.last_ok_sample();
  view.consecutive_failures = stats.consecutive_failures();
  if (std::optional<int64_t> completed = stats.last_completed_ns()) {
    view.age_ns = std::max<int64_t>(0, now - *completed);
  }
  view.totals = stats.totals();
  return view;
}

ProbeStatus ResultStore::StatusLocked(const Series& series, int target,
                                      int64_t now_ns) const {
  if (series.no_permission) return ProbeStatus::kNoPermission;
  if (series.status_store == id_ && now_ns >= series.status_from_ns &&
      now_ns < series.status_until_ns) {
    return series.status;
  }
  SeriesFacts facts;
  facts.interval = targets_[target].interval;
  facts.timeout = targets_[target].timeout;
  facts.failures_before_first_ok = series.failures_before_first_ok;
  facts.first_ok_ns = series.first_ok_ns;
  series.status = ComputeStatus(series.stats, now_ns, facts, thresholds_,
                                &series.status_until_ns);
  series.status_from_ns = now_ns;
  series.status_store = id_;
  return series.status;
}

void ResultStore::AddToMinute(Series& series, const Sample& sample,
                              ProbeStatus status) {
  const int64_t start = PeriodStart(sample.scheduled_wall, 60);
  std::vector<HistoryRow>& minutes = series.minutes;
  // Usually the last minute; an earlier one for a probe that completed
  // after the next minute's first.
  auto it =
      std::find_if(minutes.rbegin(), minutes.rend(),
                   [&](const HistoryRow& m) { return m.start_s <= start; });
  if (it == minutes.rend() || it->start_s != start) {
    auto at = minutes.insert(it.base(), HistoryRow());
    at->start_s = start;
    // Nobody is taking minutes (history stuck): the oldest go first.
    if (minutes.size() > kMaxOpenMinutes) {
      minutes.erase(minutes.begin());
      at =
          std::find_if(minutes.begin(), minutes.end(),
                       [&](const HistoryRow& m) { return m.start_s == start; });
      if (at == minutes.end()) return;
    }
    at->Add(sample, status);
    return;
  }
  it->Add(sample, status);
}

void ResultStore::TakeMinutes(
    int64_t before_s,
    absl::FunctionRef<void(int target, ProbeKind kind, HistoryRow&& row)>
        take) {
  for (size_t i = 0; i < targets_.size(); ++i) {
    for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
      std::vector<HistoryRow> done;
      {
        Series& series = SeriesFor(static_cast<int>(i), kind);
        absl::MutexLock lock(&series.mu);
        auto end = std::find_if(
            series.minutes.begin(), series.minutes.end(),
            [&](const HistoryRow& m) { return m.start_s + 60 > before_s; });
        done.assign(std::make_move_iterator(series.minutes.begin()),
                    std::make_move_iterator(end));
        series.minutes.erase(series.minutes.begin(), end);
      }
      for (HistoryRow& row : done)
        take(static_cast<int>(i), kind, std::move(row));
    }
  }
}

WindowSnapshot ResultStore::Snapshot(int target, ProbeKind kind,
                                     absl::Duration window) const {
  int64_t now = clock_.MonotonicNanos();
  const Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  return series.stats.Snapshot(window, now);
}

WindowCounts ResultStore::Counts(int target, ProbeKind kind,
                                 absl::Duration window) const {
  int64_t now = clock_.MonotonicNanos();
  const Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  return series.stats.Counts(window, now);
}

ExpositionHistogram ResultStore::TotalHistogram(int target,
                                                ProbeKind kind) const {
  const Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  return series.stats.total_rtt_histogram();
}

void ResultStore::SetNoPermission(int target, ProbeKind kind,
                                  std::optional<std::string> why) {
  Series& series = SeriesFor(target, kind);
  absl::MutexLock lock(&series.mu);
  series.no_permission = std::move(why);
}

ProbeStatus ResultStore::TargetStatus(int target) const {
  return WorstEnabled(
      {Probe(target, ProbeKind::kIcmp), Probe(target, ProbeKind::kGrpc)});
}

ProbeStatus ResultStore::WorstEnabled(absl::Span<const ProbeView> views) {
  std::optional<ProbeStatus> worst;
  for (const ProbeView& view : views) {
    if (!view.enabled) continue;
    worst = worst ? Worst(*worst, view.status) : view.status;
  }
  return worst.value_or(ProbeStatus::kUnknown);
}

int ResultStore::Subscribe(Subscriber subscriber,
                           std::function<void()> on_close) {
  {
    absl::MutexLock lock(&subscribers_mu_);
    int id = next_subscriber_id_++;
    if (!closed_) {
      auto subscription = std::make_shared<Subscription>();
      subscription->id = id;
      subscription->on_sample = std::move(subscriber);
      subscription->on_close = std::move(on_close);
      auto list = subscribers_ != nullptr
                      ? std::make_shared<SubscriberList>(*subscribers_)
                      : std::make_shared<SubscriberList>();
      list->push_back(std::move(subscription));
      subscribers_ = std::move(list);
      return id;
    }
  }
  if (on_close) on_close();
  return -1;
}

void ResultStore::Unsubscribe(int id) {
  std::shared_ptr<Subscription> gone;
  {
    absl::MutexLock lock(&subscribers_mu_);
    if (subscribers_ == nullptr) return;
    auto list = std::make_shared<SubscriberList>();
    for (const std::shared_ptr<Subscription>& s : *subscribers_) {
      if (s->id == id) {
        gone = s;
      } else {
        list->push_back(s);
      }
    }
    if (gone == nullptr) return;
    subscribers_ = std::move(list);
  }
  // Waits for a callback in progress (Record's snapshot or
  // CloseSubscriptions may still hold it).
  absl::MutexLock lock(&gone->mu);
  gone->active = false;
}

void ResultStore::CloseSubscriptions() {
  std::shared_ptr<const SubscriberList> closing;
  {
    absl::MutexLock lock(&subscribers_mu_);
    closed_ = true;
    // Still listed: Unsubscribe finds these and waits for their on_close.
    closing = subscribers_;
  }
  if (closing == nullptr) return;
  for (const std::shared_ptr<Subscription>& s : *closing) {
    absl::MutexLock lock(&s->mu);
    if (!s->active) continue;  // unsubscribed meanwhile
    s->active = false;
    if (s->on_close) s->on_close();
  }
  absl::MutexLock lock(&subscribers_mu_);
  subscribers_ = nullptr;
}

size_t ResultStore::ApproxMemoryBytes() const {
  size_t total = sizeof(*this);
  for (const auto& series : series_) {
    absl::MutexLock lock(&series->mu);
    total += sizeof(Series) + series->stats.ApproxMemoryBytes();
  }
  return total;
}

}  // namespace latency
