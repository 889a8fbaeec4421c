#ifndef LATENCY_SERVER_HISTORY_HISTORY_DB_H_
#define LATENCY_SERVER_HISTORY_HISTORY_DB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/sample.h"
#include "server/stats/history_row.h"

struct sqlite3;

namespace latency {

// How long history keeps each resolution.
struct HistoryRetention {
  absl::Duration minutes = absl::Hours(7 * 24);
  absl::Duration hours = absl::Hours(400 * 24);
};

// One series' row, keyed by target name and probe kind.
struct HistoryEntry {
  std::string target;
  ProbeKind kind = ProbeKind::kIcmp;
  HistoryRow row;
};

// HistoryDb is the history's SQLite file: minute rows and hour rows (each an
// encoded HistoryRow) per series, keyed by (series, start). Once an hour is
// complete (Maintain), its minute rows are merged into its hour row, so any
// range merges exactly at either resolution, and packed into one compressed
// chunk per series (EncodeMinuteChunk), about two thirds of their encoded
// size.
//
// The file is in WAL mode with synchronous=NORMAL: a crash (kill -9, power)
// loses at most the last transaction and leaves a consistent database. The
// schema is versioned (PRAGMA user_version) and migrated on open; a file
// from a newer release is refused, never rewritten.
//
// Thread-safe: writes (WriteMinutes, Maintain) go through one connection,
// reads through another, so a query never waits for a minute's write.
class HistoryDb {
 public:
  static constexpr int kSchemaVersion = 2;

  // Opens or creates the file (its directory must exist).
  static absl::StatusOr<std::unique_ptr<HistoryDb>> Open(
      const std::string& path);
  ~HistoryDb();
  HistoryDb(const HistoryDb&) = delete;
  HistoryDb& operator=(const HistoryDb&) = delete;

  // Writes minute rows in one transaction. A row whose key is already
  // stored (a restart within a minute, a probe completing after its
  // minute was written) is merged into it; so is the hour row of a row
  // whose hour was already merged. All or nothing.
  absl::Status WriteMinutes(const std::vector<HistoryEntry>& entries)
      ABSL_LOCKS_EXCLUDED(write_mu_);

  // Merges every hour that ended by `complete_before_s` and is not merged
  // yet into hour rows, then deletes rows older than `retention` allows at
  // `now_s`.
  absl::Status Maintain(int64_t complete_before_s, int64_t now_s,
                        const HistoryRetention& retention)
      ABSL_LOCKS_EXCLUDED(write_mu_);

  // The series' rows starting in [start_s, end_s), oldest first, at
  // `resolution_s` (60: minute rows; 3600: hour rows, with hours not merged
  // yet made from their minute rows).
  absl::StatusOr<std::vector<HistoryRow>> Read(const std::string& target,
                                               ProbeKind kind, int64_t start_s,
                                               int64_t end_s,
                                               int64_t resolution_s)
      ABSL_LOCKS_EXCLUDED(read_mu_);

  // File size in bytes (database and WAL), for logs and benchmarks.
  int64_t SizeBytes() const;
  const std::string& path() const { return path_; }

 private:
  HistoryDb(std::string path, sqlite3* write, sqlite3* read)
      : path_(std::move(path)), write_db_(write), read_db_(read) {}

  // The series' id, created when new (write connection).
  absl::StatusOr<int64_t> SeriesId(const std::string& target, ProbeKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::StatusOr<int64_t> MergedBefore(sqlite3* db);
  // Stores the first merge mark: the hour of the first minute row.
  absl::StatusOr<int64_t> SetFirstMergeMark(int64_t first_start_s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // The series' blobs (`column` of `table`) starting in [start_s, end_s),
  // oldest first, each to `take` with its start (read connection, inside
  // Read's transaction).
  absl::Status ReadSeriesBlobs(
      const char* table, const char* column, const std::string& target,
      ProbeKind kind, int64_t start_s, int64_t end_s,
      absl::FunctionRef<void(int64_t, absl::string_view)> take)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  const std::string path_;
  absl::Mutex write_mu_;
  sqlite3* const write_db_ ABSL_GUARDED_BY(write_mu_);
  absl::flat_hash_map<std::pair<std::string, int>, int64_t> series_ids_
      ABSL_GUARDED_BY(write_mu_);
  absl::Mutex read_mu_;
  sqlite3* const read_db_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace latency

#endif  // LATENCY_SERVER_HISTORY_HISTORY_DB_H_
