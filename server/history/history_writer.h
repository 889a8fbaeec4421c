#ifndef LATENCY_SERVER_HISTORY_HISTORY_WRITER_H_
#define LATENCY_SERVER_HISTORY_HISTORY_WRITER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/history/history_db.h"
#include "server/store/result_store.h"

namespace latency {

struct HistoryOptions {
  std::string path;  // empty: history off
  HistoryRetention retention;
};

// How history is doing, for /readyz, GetLatency and the log.
struct HistoryHealth {
  enum class State { kOff, kOk, kDegraded };
  State state = State::kOff;
  std::string why;  // degraded: the error and its fix
};

// HistoryWriter moves the store's ended minutes into the history database
// on its own thread, once a minute, in one transaction for all targets (the
// probers never wait for the disk). A minute is written once its probes
// have all completed: `grace` (the longest probe timeout plus a second)
// after it ends. Stop writes everything, the current minute too, so a clean
// restart loses nothing; kill -9 loses at most the minutes not written yet.
//
// Errors never stop probing: a database that cannot be opened (missing
// directory, no permission, damaged, newer schema) or written (disk full,
// read-only) turns the health to degraded, is logged at most once a minute
// with the fix, and is retried every minute; the rows not written wait in
// memory (up to kMaxPendingRows, oldest dropped first and counted).
class HistoryWriter {
 public:
  static constexpr size_t kMaxPendingRows = 200'000;

  // `current_store` returns the store probes land in now (a reload
  // replaces it).
  HistoryWriter(Clock& clock, HistoryOptions options,
                std::function<std::shared_ptr<ResultStore>()> current_store);
  ~HistoryWriter();

  // Opens the database and starts the minute thread.
  void Start();
  // Stops the thread, then writes every minute kept so far.
  void Stop();

  // One round at wall time `now`: take the minutes that ended by
  // now - grace (every minute when `everything`), write them, merge
  // complete hours and expire old rows. The thread calls it once a minute;
  // tests call it with a fake clock's time.
  void RunOnce(absl::Time now, bool everything = false)
      ABSL_LOCKS_EXCLUDED(run_mu_, mu_);

  HistoryHealth health() const ABSL_LOCKS_EXCLUDED(mu_);
  // The database for readers; null while it cannot be opened.
  std::shared_ptr<HistoryDb> db() const ABSL_LOCKS_EXCLUDED(mu_);
  // Rows dropped because the database could not take them in time.
  uint64_t dropped_rows() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();
  // The database, opened when it is not open; null (degraded) on failure.
  std::shared_ptr<HistoryDb> EnsureOpen(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  void Degrade(const absl::Status& status, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Duration Grace(const ResultStore& store) const;

  Clock& clock_;
  const HistoryOptions options_;
  const std::function<std::shared_ptr<ResultStore>()> current_store_;

  // Serializes rounds (the thread's and Stop's); held across disk writes.
  absl::Mutex run_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<HistoryEntry> pending_ ABSL_GUARDED_BY(run_mu_);
  int64_t maintained_hour_ ABSL_GUARDED_BY(run_mu_) = INT64_MIN;

  // Small state for readers; never held across disk writes.
  mutable absl::Mutex mu_;
  std::shared_ptr<HistoryDb> db_ ABSL_GUARDED_BY(mu_);
  HistoryHealth health_ ABSL_GUARDED_BY(mu_);
  absl::Time last_error_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t dropped_rows_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_HISTORY_HISTORY_WRITER_H_
