#include "server/history/history_db.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "server/history/minute_chunk.h"

namespace latency {
namespace {

constexpr int64_t kHour = 3600;

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_extended_errcode(db);
  std::string message =
      absl::StrCat("history: ", what, ": ", sqlite3_errmsg(db));
  switch (code & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return absl::PermissionDeniedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      stmt_ = nullptr;
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  sqlite3_stmt* stmt() { return stmt_; }
  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& Bind(int i, absl::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int i, absl::string_view bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  absl::string_view Blob(int column) {
    const void* data = sqlite3_column_blob(stmt_, column);
    return absl::string_view(
        static_cast<const char*>(data),
        static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(db, sql);
  }
  return absl::OkStatus();
}

// Commits on Commit(), rolls back otherwise.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  absl::Status Begin() { return Exec(db_, "BEGIN IMMEDIATE"); }
  absl::Status Commit() {
    absl::Status status = Exec(db_, "COMMIT");
    done_ = status.ok();
    return status;
  }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

// Schema migrations: step i takes user_version i to i + 1. Never edit a
// released step; add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: series, minute and hour rows, and the merge mark.
    "CREATE TABLE series ("
    "  id INTEGER PRIMARY KEY,"
    "  target TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  UNIQUE (target, kind));"
    "CREATE TABLE minutes ("
    "  series INTEGER NOT NULL,"
    "  start_s INTEGER NOT NULL,"
    "  row BLOB NOT NULL,"
    "  PRIMARY KEY (series, start_s)) WITHOUT ROWID;"
    "CREATE TABLE hours ("
    "  series INTEGER NOT NULL,"
    "  start_s INTEGER NOT NULL,"
    "  row BLOB NOT NULL,"
    "  PRIMARY KEY (series, start_s)) WITHOUT ROWID;"
    // merged_before_s: every hour before it has its hour rows.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    "  WITHOUT ROWID;",
    // 1 -> 2: an ended hour's minute rows packed into one row per series
    // (EncodeMinuteChunk); `minutes` keeps the open hour's rows, and late
    // ones, until the next Maintain packs them.
    "CREATE TABLE minute_chunks ("
    "  series INTEGER NOT NULL,"
    "  start_s INTEGER NOT NULL,"
    "  rows BLOB NOT NULL,"
    "  PRIMARY KEY (series, start_s)) WITHOUT ROWID;",
};
static_assert(std::size(kMigrations) == HistoryDb::kSchemaVersion);

absl::Status Migrate(sqlite3* db) {
  Statement version(db, "PRAGMA user_version");
  if (!version.ok() || version.Step() != SQLITE_ROW) {
    return SqliteError(db, "reading the schema version");
  }
  const int64_t from = version.Int(0);
  if (from > HistoryDb::kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "history: the database's schema version ", from,
        " is newer than this latency-server's (", HistoryDb::kSchemaVersion,
        "): upgrade latency-server, or move the file away to start afresh"));
  }
  for (int64_t v = from; v < HistoryDb::kSchemaVersion; ++v) {
    Transaction tx(db);
    if (absl::Status s = tx.Begin(); !s.ok()) return s;
    if (absl::Status s = Exec(db, kMigrations[v]); !s.ok()) return s;
    if (absl::Status s =
            Exec(db, absl::StrCat("PRAGMA user_version = ", v + 1).c_str());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = tx.Commit(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, absl::StrCat("opening ", path));
    sqlite3_close(db);
    return status;
  }
  // A reader and the writer may meet; wait rather than fail at once.
  sqlite3_busy_timeout(db, 5000);
  // 16 KiB pages (a new file only; an existing one keeps its own): an
  // hour's chunk of minute rows, 2-3 KB, then stays inside its B-tree page
  // instead of spilling to an overflow page of its own, which at 4 KiB
  // doubled the file.
  for (const char* pragma :
       {"PRAGMA page_size = 16384", "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = OFF"}) {
    if (absl::Status s = Exec(db, pragma); !s.ok()) {
      sqlite3_close(db);
      return s;
    }
  }
  return db;
}

const char* KindName(ProbeKind kind) { return ProbeKindName(kind); }

// An upsert's statements on one table (minutes or hours), prepared once
// per transaction: at 11,000 series, preparing them per row was a third of
// a minute's write (history_bench: 141 ms, 99 ms without).
struct UpsertStatements {
  UpsertStatements(sqlite3* db, const char* table)
      : insert(db, absl::StrCat("INSERT INTO ", table,
                                " (series, start_s, row) VALUES (?, ?, ?) "
                                "ON CONFLICT DO NOTHING")
                       .c_str()),
        select(db, absl::StrCat("SELECT row FROM ", table,
                                " WHERE series = ? AND start_s = ?")
                       .c_str()),
        update(db, absl::StrCat("UPDATE ", table,
                                " SET row = ? WHERE series = ? AND start_s = ?")
                       .c_str()) {}
  bool ok() const { return insert.ok() && select.ok() && update.ok(); }

  Statement insert;
  Statement select;
  Statement update;
};

// Stores `row` at its start, merging with a stored row.
absl::Status Upsert(sqlite3* db, UpsertStatements& statements, int64_t series,
                    const HistoryRow& row) {
  if (!statements.ok()) return SqliteError(db, "preparing a row write");
  Statement& insert = statements.insert;
  insert.Reset();
  insert.Bind(1, series).Bind(2, row.start_s).BindBlob(3, row.Encode());
  if (insert.Step() != SQLITE_DONE) {
    return SqliteError(db, "writing a row");
  }
  if (sqlite3_changes(db) > 0) return absl::OkStatus();
  // Stored already: merge.
  Statement& select = statements.select;
  select.Reset();
  if (select.Bind(1, series).Bind(2, row.start_s).Step() != SQLITE_ROW) {
    return SqliteError(db, "reading a row to merge");
  }
  absl::StatusOr<HistoryRow> stored =
      HistoryRow::Decode(row.start_s, select.Blob(0));
  select.Reset();  // no cursor left open when the transaction commits
  // A row this release cannot read is replaced, not merged into.
  HistoryRow merged = stored.ok() ? *std::move(stored) : HistoryRow();
  merged.start_s = row.start_s;
  merged.Merge(row);
  Statement& update = statements.update;
  update.Reset();
  if (update.BindBlob(1, merged.Encode())
          .Bind(2, series)
          .Bind(3, row.start_s)
          .Step() != SQLITE_DONE) {
    return SqliteError(db, "merging a row");
  }
  return absl::OkStatus();
}

int64_t FloorTo(int64_t t, int64_t period) {
  int64_t start = t / period * period;
  return start > t ? start - period : start;
}

// Two lists of rows in ascending start_s as one, rows of the same start
// merged.
std::vector<HistoryRow> MergeByStart(std::vector<HistoryRow> a,
                                     std::vector<HistoryRow> b) {
  std::vector<HistoryRow> out;
  out.reserve(a.size() + b.size());
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() || j != b.end()) {
    if (j == b.end() || (i != a.end() && i->start_s < j->start_s)) {
      out.push_back(std::move(*i++));
    } else if (i == a.end() || j->start_s < i->start_s) {
      out.push_back(std::move(*j++));
    } else {
      i->Merge(*j++);
      out.push_back(std::move(*i++));
    }
  }
  return out;
}

// Pack's statements, prepared once per Maintain rather than per (series,
// hour).
struct PackStatements {
  explicit PackStatements(sqlite3* db)
      : select(db,
               "SELECT rows FROM minute_chunks WHERE series = ? AND "
               "start_s = ?"),
        store(db,
              "INSERT OR REPLACE INTO minute_chunks (series, start_s, rows) "
              "VALUES (?, ?, ?)") {}
  bool ok() const { return select.ok() && store.ok(); }

  Statement select;
  Statement store;
};

// Packs an ended hour's minute rows of one series into its chunk, merging
// them into the chunk stored already.
absl::Status Pack(sqlite3* db, PackStatements& statements, int64_t series,
                  int64_t hour_start_s, std::vector<HistoryRow> rows) {
  if (!statements.ok()) return SqliteError(db, "preparing to pack minutes");
  Statement& select = statements.select;
  select.Reset();
  select.Bind(1, series).Bind(2, hour_start_s);
  const int rc = select.Step();
  if (rc == SQLITE_ROW) {
    // Minutes that came after their hour was packed join it.
    absl::StatusOr<std::vector<HistoryRow>> stored =
        DecodeMinuteChunk(hour_start_s, select.Blob(0));
    // A chunk this release cannot read is replaced, not merged into.
    if (stored.ok()) rows = MergeByStart(*std::move(stored), std::move(rows));
  } else if (rc != SQLITE_DONE) {
    return SqliteError(db, "reading a minute chunk");
  }
  select.Reset();  // no cursor left open when the transaction commits
  Statement& store = statements.store;
  store.Reset();
  if (store.Bind(1, series)
          .Bind(2, hour_start_s)
          .BindBlob(3, EncodeMinuteChunk(hour_start_s, rows))
          .Step() != SQLITE_DONE) {
    return SqliteError(db, "writing a minute chunk");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HistoryDb>> HistoryDb::Open(
    const std::string& path) {
  absl::StatusOr<sqlite3*> write = OpenConnection(path);
  if (!write.ok()) return write.status();
  // A damaged or foreign file fails here (SQLITE_NOTADB) or at the first
  // page it touches later; either way the caller reports it.
  if (absl::Status s = Migrate(*write); !s.ok()) {
    sqlite3_close(*write);
    return s;
  }
  absl::StatusOr<sqlite3*> read = OpenConnection(path);
  if (!read.ok()) {
    sqlite3_close(*write);
    return read.status();
  }
  return std::unique_ptr<HistoryDb>(new HistoryDb(path, *write, *read));
}

HistoryDb::~HistoryDb() {
  sqlite3_close(read_db_);
  sqlite3_close(write_db_);
}

absl::StatusOr<int64_t> HistoryDb::SeriesId(const std::string& target,
                                            ProbeKind kind) {
  auto key = std::make_pair(target, static_cast<int>(kind));
  if (auto it = series_ids_.find(key); it != series_ids_.end()) {
    return it->second;
  }
  Statement insert(write_db_,
                   "INSERT INTO series (target, kind) VALUES (?, ?) "
                   "ON CONFLICT DO NOTHING");
  if (!insert.ok() ||
      insert.Bind(1, target).Bind(2, KindName(kind)).Step() != SQLITE_DONE) {
    return SqliteError(write_db_, "adding a series");
  }
  Statement select(write_db_,
                   "SELECT id FROM series WHERE target = ? AND kind = ?");
  if (!select.ok() ||
      select.Bind(1, target).Bind(2, KindName(kind)).Step() != SQLITE_ROW) {
    return SqliteError(write_db_, "finding a series");
  }
  const int64_t id = select.Int(0);
  series_ids_[key] = id;
  return id;
}

absl::StatusOr<int64_t> HistoryDb::MergedBefore(sqlite3* db) {
  Statement select(db, "SELECT value FROM meta WHERE key = 'merged_before_s'");
  if (!select.ok()) return SqliteError(db, "reading the merge mark");
  const int rc = select.Step();
  if (rc == SQLITE_ROW) return select.Int(0);
  if (rc == SQLITE_DONE) return INT64_MIN;  // nothing merged yet
  return SqliteError(db, "reading the merge mark");
}

absl::StatusOr<int64_t> HistoryDb::SetFirstMergeMark(int64_t first_start_s) {
  const int64_t merged_before = FloorTo(first_start_s, kHour);
  Statement mark(write_db_,
                 "INSERT INTO meta (key, value) VALUES ('merged_before_s', ?)");
  if (!mark.ok() || mark.Bind(1, merged_before).Step() != SQLITE_DONE) {
    return SqliteError(write_db_, "writing the merge mark");
  }
  return merged_before;
}

absl::Status HistoryDb::WriteMinutes(const std::vector<HistoryEntry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  Transaction tx(write_db_);
  if (absl::Status s = tx.Begin(); !s.ok()) return s;
  absl::StatusOr<int64_t> merged_before = MergedBefore(write_db_);
  if (!merged_before.ok()) return merged_before.status();
  if (*merged_before == INT64_MIN) {
    // The first rows: hours before theirs have nothing to merge.
    int64_t first = INT64_MAX;
    for (const HistoryEntry& e : entries) {
      first = std::min(first, e.row.start_s);
    }
    merged_before = SetFirstMergeMark(first);
    if (!merged_before.ok()) return merged_before.status();
  }
  UpsertStatements minutes(write_db_, "minutes");
  UpsertStatements hours(write_db_, "hours");
  for (const HistoryEntry& e : entries) {
    absl::StatusOr<int64_t> series = SeriesId(e.target, e.kind);
    if (!series.ok()) return series.status();
    if (absl::Status s = Upsert(write_db_, minutes, *series, e.row); !s.ok())
      return s;
    if (e.row.start_s < *merged_before) {
      HistoryRow hour = e.row;
      hour.start_s = FloorTo(e.row.start_s, kHour);
      if (absl::Status s = Upsert(write_db_, hours, *series, hour); !s.ok())
        return s;
    }
  }
  absl::Status status = tx.Commit();
  // Ids of a rolled-back transaction's new series are not stored.
  if (!status.ok()) series_ids_.clear();
  return status;
}

absl::Status HistoryDb::Maintain(int64_t complete_before_s, int64_t now_s,
                                 const HistoryRetention& retention) {
  absl::MutexLock lock(&write_mu_);
  Transaction tx(write_db_);
  if (absl::Status s = tx.Begin(); !s.ok()) return s;
  absl::StatusOr<int64_t> merged_before = MergedBefore(write_db_);
  if (!merged_before.ok()) return merged_before.status();
  if (*merged_before == INT64_MIN) {
    // No mark, yet rows (a file written without one): merge from the first.
    Statement first(write_db_, "SELECT min(start_s) FROM minutes");
    if (!first.ok() || first.Step() != SQLITE_ROW) {
      return SqliteError(write_db_, "reading the first minute");
    }
    if (sqlite3_column_type(first.stmt(), 0) != SQLITE_NULL) {
      merged_before = SetFirstMergeMark(first.Int(0));
      if (!merged_before.ok()) return merged_before.status();
    }
  }
  const int64_t merge_until = FloorTo(complete_before_s, kHour);
  std::vector<int64_t> series;
  {
    Statement all(write_db_, "SELECT id FROM series");
    if (!all.ok()) return SqliteError(write_db_, "listing series");
    int rc;
    while ((rc = all.Step()) == SQLITE_ROW) series.push_back(all.Int(0));
    if (rc != SQLITE_DONE) return SqliteError(write_db_, "listing series");
  }
  if (*merged_before != INT64_MIN) {
    // Ended hours: their minutes merged into hour rows (those not merged
    // yet), and packed into chunks (every minute row before merge_until,
    // late ones and a version 1 file's included).
    const bool merge_hours = merge_until > *merged_before;
    Statement ended(write_db_,
                    "SELECT start_s, row FROM minutes WHERE series = ? AND "
                    "start_s < ? ORDER BY start_s");
    Statement packed(write_db_,
                     "DELETE FROM minutes WHERE series = ? AND start_s < ?");
    UpsertStatements hour_rows(write_db_, "hours");
    PackStatements chunks(write_db_);
    if (!ended.ok() || !packed.ok()) {
      return SqliteError(write_db_, "preparing to pack minutes");
    }
    for (int64_t id : series) {
      ended.Reset();
      ended.Bind(1, id).Bind(2, merge_until);
      std::map<int64_t, std::vector<HistoryRow>> minutes_by_hour;
      std::map<int64_t, HistoryRow> hours;
      int rc;
      while ((rc = ended.Step()) == SQLITE_ROW) {
        absl::StatusOr<HistoryRow> row =
            HistoryRow::Decode(ended.Int(0), ended.Blob(1));
        if (!row.ok()) continue;  // unreadable: left out
        const int64_t hour = FloorTo(row->start_s, kHour);
        if (merge_hours && row->start_s >= *merged_before) {
          HistoryRow& merged = hours[hour];
          merged.start_s = hour;
          merged.Merge(*row);
        }
        minutes_by_hour[hour].push_back(*std::move(row));
      }
      if (rc != SQLITE_DONE) return SqliteError(write_db_, "reading minutes");
      for (const auto& [start, hour] : hours) {
        if (absl::Status s = Upsert(write_db_, hour_rows, id, hour); !s.ok())
          return s;
      }
      for (auto& [hour, rows] : minutes_by_hour) {
        if (absl::Status s = Pack(write_db_, chunks, id, hour, std::move(rows));
            !s.ok()) {
          return s;
        }
      }
      packed.Reset();
      if (packed.Bind(1, id).Bind(2, merge_until).Step() != SQLITE_DONE) {
        return SqliteError(write_db_, "removing packed minutes");
      }
    }
    if (merge_hours) {
      Statement mark(write_db_,
                     "UPDATE meta SET value = ? WHERE key = 'merged_before_s'");
      if (!mark.ok() || mark.Bind(1, merge_until).Step() != SQLITE_DONE) {
        return SqliteError(write_db_, "writing the merge mark");
      }
    }
  }
  // Expiry, per series along the primary key (no table scan); a chunk goes
  // when all of its hour is past retention.
  const int64_t minutes_from = now_s - absl::ToInt64Seconds(retention.minutes);
  const int64_t hours_from = now_s - absl::ToInt64Seconds(retention.hours);
  Statement expire_minutes(
      write_db_, "DELETE FROM minutes WHERE series = ? AND start_s < ?");
  Statement expire_chunks(
      write_db_, "DELETE FROM minute_chunks WHERE series = ? AND start_s <= ?");
  Statement expire_hours(write_db_,
                         "DELETE FROM hours WHERE series = ? AND start_s < ?");
  if (!expire_minutes.ok() || !expire_chunks.ok() || !expire_hours.ok()) {
    return SqliteError(write_db_, "preparing expiry");
  }
  for (int64_t id : series) {
    expire_minutes.Reset();
    expire_chunks.Reset();
    expire_hours.Reset();
    if (expire_minutes.Bind(1, id).Bind(2, minutes_from).Step() !=
            SQLITE_DONE ||
        expire_chunks.Bind(1, id).Bind(2, minutes_from - kHour).Step() !=
            SQLITE_DONE ||
        expire_hours.Bind(1, id).Bind(2, hours_from).Step() != SQLITE_DONE) {
      return SqliteError(write_db_, "expiring rows");
    }
  }
  return tx.Commit();
}

absl::StatusOr<std::vector<HistoryRow>> HistoryDb::Read(
    const std::string& target, ProbeKind kind, int64_t start_s, int64_t end_s,
    int64_t resolution_s) {
  absl::MutexLock lock(&read_mu_);
  // One read transaction: the rows, chunks and the merge mark agree.
  if (absl::Status s = Exec(read_db_, "BEGIN"); !s.ok()) return s;
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{read_db_};
  auto decode_row = [](std::vector<HistoryRow>& into) {
    return [&into](int64_t start, absl::string_view bytes) {
      absl::StatusOr<HistoryRow> row = HistoryRow::Decode(start, bytes);
      // A row this release cannot read is left out, not an error.
      if (row.ok()) into.push_back(*std::move(row));
    };
  };
  std::vector<HistoryRow> rows;
  if (resolution_s != kHour) {
    // Packed hours, then the rows not packed yet (the open hour, late
    // minutes), merged where both hold a minute.
    std::vector<HistoryRow> packed;
    absl::Status status = ReadSeriesBlobs(
        "minute_chunks", "rows", target, kind, FloorTo(start_s, kHour), end_s,
        [&](int64_t hour, absl::string_view bytes) {
          absl::StatusOr<std::vector<HistoryRow>> chunk =
              DecodeMinuteChunk(hour, bytes);
          if (!chunk.ok()) return;  // unreadable: left out, as a row
          for (HistoryRow& row : *chunk) {
            if (row.start_s >= start_s && row.start_s < end_s) {
              packed.push_back(std::move(row));
            }
          }
        });
    if (!status.ok()) return status;
    status = ReadSeriesBlobs("minutes", "row", target, kind, start_s, end_s,
                             decode_row(rows));
    if (!status.ok()) return status;
    return MergeByStart(std::move(packed), std::move(rows));
  }
  absl::StatusOr<int64_t> merged_before = MergedBefore(read_db_);
  if (!merged_before.ok()) return merged_before.status();
  const int64_t minutes_from = std::max(start_s, *merged_before);
  absl::Status status =
      ReadSeriesBlobs("hours", "row", target, kind, start_s,
                      std::min(end_s, minutes_from), decode_row(rows));
  if (!status.ok()) return status;
  // Hours not merged yet, made from their minutes (never packed yet).
  std::vector<HistoryRow> minutes;
  status = ReadSeriesBlobs("minutes", "row", target, kind, minutes_from, end_s,
                           decode_row(minutes));
  if (!status.ok()) return status;
  for (const HistoryRow& row : minutes) {
    const int64_t hour = FloorTo(row.start_s, kHour);
    if (rows.empty() || rows.back().start_s != hour) {
      rows.emplace_back();
      rows.back().start_s = hour;
    }
    rows.back().Merge(row);
  }
  return rows;
}

absl::Status HistoryDb::ReadSeriesBlobs(
    const char* table, const char* column, const std::string& target,
    ProbeKind kind, int64_t start_s, int64_t end_s,
    absl::FunctionRef<void(int64_t, absl::string_view)> take) {
  const std::string sql = absl::StrCat(
      "SELECT r.start_s, r.", column, " FROM ", table,
      " r JOIN series s ON s.id = r.series WHERE s.target = ? AND s.kind = ? "
      "AND r.start_s >= ? AND r.start_s < ? ORDER BY r.start_s");
  Statement rows(read_db_, sql.c_str());
  if (!rows.ok()) return SqliteError(read_db_, absl::StrCat("reading ", table));
  rows.Bind(1, target).Bind(2, KindName(kind)).Bind(3, start_s).Bind(4, end_s);
  int rc;
  while ((rc = rows.Step()) == SQLITE_ROW) take(rows.Int(0), rows.Blob(1));
  if (rc != SQLITE_DONE) {
    return SqliteError(read_db_, absl::StrCat("reading ", table));
  }
  return absl::OkStatus();
}

int64_t HistoryDb::SizeBytes() const {
  int64_t total = 0;
  for (const std::string& file : {path_, path_ + "-wal"}) {
    struct stat st {};
    if (stat(file.c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

}  // namespace latency
