#ifndef LATENCY_SERVER_STORE_RESULT_STORE_H_
#define LATENCY_SERVER_STORE_RESULT_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "server/sample.h"
#include "server/stats/history_row.h"
#include "server/stats/status.h"
#include "server/stats/windowed_stats.h"
#include "server/target.h"

namespace latency {

// What readers see of one probe series at one instant.
struct ProbeView {
  ProbeKind kind = ProbeKind::kIcmp;
  bool enabled = false;
  ProbeStatus status = ProbeStatus::kUnknown;
  std::optional<LastSample> last;     // latest completed probe
  std::optional<LastSample> last_ok;  // latest successful probe
  uint64_t consecutive_failures = 0;
  // Since the latest completed probe; nullopt before the first.
  std::optional<int64_t> age_ns;
  SeriesTotals totals;
  // Why status is no_permission (with the fix); empty otherwise.
  std::string no_permission;
};

// ResultStore is where samples land (the probers' SampleSink) and where every
// reader (query service, HTTP gateway, Prometheus, Watch, logs) looks. Data
// flows one way: probers -> Record -> readers; readers never probe.
//
// One SeriesStats per target and kind, each behind its own mutex, so a
// reader of one target never blocks a prober writing another. Memory is
// bounded by SeriesStats' bound times 2 x targets.
class ResultStore final : public SampleSink {
 public:
  using Subscriber = std::function<void(const Sample&)>;

  // With `previous` (the store of the configuration being replaced), every
  // target whose settings are unchanged continues its series there: its
  // windows, totals and last samples survive a reload. Both stores then
  // share those series; `previous` must stop recording before long.
  //
  // With `keep_minutes`, each series also sums its samples into minute
  // HistoryRows (by the probe's scheduled wall-clock minute) until
  // TakeMinutes collects them for the history database; a changed target's
  // open minutes move to its new series.
  ResultStore(Clock& clock, std::vector<TargetSpec> targets,
              StatusThresholds thresholds,
              const ResultStore* previous = nullptr, bool keep_minutes = false);

  void Record(const Sample& sample) override;

  const std::vector<TargetSpec>& targets() const { return targets_; }
  const StatusThresholds& thresholds() const { return thresholds_; }
  // Index of the target with that name, or nullopt.
  std::optional<int> FindTarget(const std::string& name) const;

  // The probe's state now. `target` must be a valid index.
  ProbeView Probe(int target, ProbeKind kind) const;
  // Its status alone (what Probe().status says), without copying samples:
  // for a pass over every target several times a second.
  ProbeStatus Status(int target, ProbeKind kind) const;
  // Whether the target's configuration probes that kind.
  bool Enabled(int target, ProbeKind kind) const;
  // Statistics over `window` (one of kWindows), ending now.
  WindowSnapshot Snapshot(int target, ProbeKind kind,
                          absl::Duration window) const;
  // Counts only (no histogram merge): cheap enough for every scrape.
  WindowCounts Counts(int target, ProbeKind kind, absl::Duration window) const;
  // Total RTT histogram since start in the Prometheus layout; copies 168
  // bytes under the lock.
  ExpositionHistogram TotalHistogram(int target, ProbeKind kind) const;

  // Marks a series this process may not measure (no ICMP permission):
  // its status reads no_permission, with `why` (the fix) for readers,
  // whatever its samples say; nullopt clears the mark. Kept across reloads
  // with the series, so each session sets it for every series it probes.
  void SetNoPermission(int target, ProbeKind kind,
                       std::optional<std::string> why);

  // Worst status over the target's enabled probes.
  ProbeStatus TargetStatus(int target) const;
  // Worst status over the enabled probes among `views` (unknown if none):
  // for callers that already hold a target's views.
  static ProbeStatus WorstEnabled(absl::Span<const ProbeView> views);

  // Calls `subscriber` with every later sample, on the prober's thread: it
  // must be quick and must not call back into the store's writers. When the
  // store's probing ends (config reload, shutdown) `on_close` runs once
  // instead. A subscription's callbacks never run concurrently with each
  // other. Returns an id for Unsubscribe.
  int Subscribe(Subscriber subscriber, std::function<void()> on_close = {})
      ABSL_LOCKS_EXCLUDED(subscribers_mu_);
  // Ends a subscription. Waits for its callback if one is running; once it
  // returns, none runs again, so the subscriber may be destroyed. Must not
  // be called from that subscription's own callbacks.
  void Unsubscribe(int id) ABSL_LOCKS_EXCLUDED(subscribers_mu_);
  // Ends every subscription (calling on_close of those not unsubscribed
  // first) and refuses new ones.
  void CloseSubscriptions() ABSL_LOCKS_EXCLUDED(subscribers_mu_);

  // Hands every kept minute that ended by `before_s` (unix seconds) to
  // `take`, oldest first per series, and forgets it. A probe completing
  // after its minute was taken starts that minute again (the history
  // database merges rows with the same key).
  void TakeMinutes(
      int64_t before_s,
      absl::FunctionRef<void(int target, ProbeKind kind, HistoryRow&& row)>
          take);

  int64_t now_ns() const { return clock_.MonotonicNanos(); }
  absl::Time wall_now() const { return clock_.WallNow(); }
  size_t ApproxMemoryBytes() const;

 private:
  struct Series {
    mutable absl::Mutex mu;
    SeriesStats stats ABSL_GUARDED_BY(mu);
    std::optional<std::string> no_permission ABSL_GUARDED_BY(mu);
    // Connection set-up before the first success (see SeriesFacts).
    uint64_t failures_before_first_ok ABSL_GUARDED_BY(mu) = 0;
    std::optional<int64_t> first_ok_ns ABSL_GUARDED_BY(mu);
    // Minutes not yet taken for history, oldest first (keep_minutes only).
    std::vector<HistoryRow> minutes ABSL_GUARDED_BY(mu);
    // The status last computed (by the store `status_store`) and the times
    // between which it holds (see ComputeStatus): the status log asks for
    // every series each second, readers on every request. Record clears it.
    mutable ProbeStatus status ABSL_GUARDED_BY(mu) = ProbeStatus::kUnknown;
    mutable int64_t status_from_ns ABSL_GUARDED_BY(mu) = 0;
    mutable int64_t status_until_ns ABSL_GUARDED_BY(mu) = 0;
    mutable uint64_t status_store ABSL_GUARDED_BY(mu) = 0;
    explicit Series(int64_t created_ns) : stats(created_ns) {}
  };
  const Series& SeriesFor(int target, ProbeKind kind) const {
    return *series_[2 * target + (kind == ProbeKind::kGrpc ? 1 : 0)];
  }
  Series& SeriesFor(int target, ProbeKind kind) {
    return *series_[2 * target + (kind == ProbeKind::kGrpc ? 1 : 0)];
  }
  ProbeStatus StatusLocked(const Series& series, int target,
                           int64_t now_ns) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(series.mu);
  static void AddToMinute(Series& series, const Sample& sample,
                          ProbeStatus status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(series.mu);
  // Two hours of minutes per series at most, should nobody take them.
  static constexpr size_t kMaxOpenMinutes = 120;

  Clock& clock_;
  const std::vector<TargetSpec> targets_;
  const StatusThresholds thresholds_;
  const bool keep_minutes_;
  // Names this store in the series' kept status (series outlive a store
  // when a reload carries them on, perhaps with other thresholds).
  const uint64_t id_;
  absl::flat_hash_map<std::string, int> index_by_name_;
  std::vector<std::shared_ptr<Series>> series_;  // 2 per target

  // One per Subscribe. Its mutex is held while its callbacks run, so
  // Unsubscribe (which clears `active` under it) waits for them.
  struct Subscription {
    int id = 0;
    Subscriber on_sample;
    std::function<void()> on_close;
    absl::Mutex mu;
    bool active ABSL_GUARDED_BY(mu) = true;
  };
  using SubscriberList = std::vector<std::shared_ptr<Subscription>>;

  absl::Mutex subscribers_mu_;
  int next_subscriber_id_ ABSL_GUARDED_BY(subscribers_mu_) = 0;
  // Copy-on-write: Record takes a reference under the lock and calls the
  // subscribers outside it, so a slow one never blocks another's prober.
  std::shared_ptr<const SubscriberList> subscribers_
      ABSL_GUARDED_BY(subscribers_mu_);
  bool closed_ ABSL_GUARDED_BY(subscribers_mu_) = false;
};

}  // namespace latency

#endif  // LATENCY_SERVER_STORE_RESULT_STORE_H_
