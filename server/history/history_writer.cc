#include "server/history/history_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace latency {
namespace {

// What to do about each kind of failure, for the log and /readyz.
std::string WithFix(const absl::Status& status, const std::string& path) {
  std::string fix;
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      fix = "free space on the file system of " + path +
            "; history resumes by itself (rows wait in memory)";
      break;
    case absl::StatusCode::kPermissionDenied:
      fix = "make " + path +
            " and its directory writable by latency-server's user, or set "
            "--history_db (--history_db= turns history off)";
      break;
    case absl::StatusCode::kDataLoss:
      fix = "the file is damaged: stop latency-server, move " + path +
            " away (sqlite3 " + path +
            " .recover can save its rows), start again";
      break;
    case absl::StatusCode::kFailedPrecondition:
      break;  // the message says it
    default:
      fix = "check " + path + " and the disk it is on";
  }
  std::string text(status.message());
  if (!fix.empty()) absl::StrAppend(&text, " (fix: ", fix, ")");
  return text;
}

}  // namespace

HistoryWriter::HistoryWriter(
    Clock& clock, HistoryOptions options,
    std::function<std::shared_ptr<ResultStore>()> current_store)
    : clock_(clock),
      options_(std::move(options)),
      current_store_(std::move(current_store)) {
  absl::MutexLock lock(&mu_);
  health_.state = HistoryHealth::State::kOk;
}

HistoryWriter::~HistoryWriter() { Stop(); }

void HistoryWriter::Start() {
  {
    absl::MutexLock run(&run_mu_);
    EnsureOpen(clock_.WallNow());
  }
  thread_ = std::thread([this] { Loop(); });
}

void HistoryWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  RunOnce(clock_.WallNow(), /*everything=*/true);
}

void HistoryWriter::Loop() {
  while (true) {
    // Each round a little after a minute ends plus the grace, so that
    // minute is complete; real time (the thread only paces the rounds).
    std::shared_ptr<ResultStore> store = current_store_();
    const absl::Duration grace =
        store != nullptr ? Grace(*store) : absl::Seconds(2);
    const absl::Time now = clock_.WallNow();
    const absl::Time next_minute =
        absl::FromUnixSeconds(PeriodStart(now, 60) + 60);
    absl::Duration wait = next_minute + grace - now;
    if (wait > absl::Minutes(1)) wait -= absl::Minutes(1);
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), wait)) return;
    }
    RunOnce(clock_.WallNow());
  }
}

absl::Duration HistoryWriter::Grace(const ResultStore& store) const {
  absl::Duration longest = absl::ZeroDuration();
  for (const TargetSpec& t : store.targets()) {
    longest = std::max(longest, t.timeout);
  }
  return std::min(longest, absl::Seconds(50)) + absl::Seconds(1);
}

std::shared_ptr<HistoryDb> HistoryWriter::EnsureOpen(absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (db_ != nullptr) return db_;
  }
  absl::StatusOr<std::unique_ptr<HistoryDb>> opened =
      HistoryDb::Open(options_.path);
  if (!opened.ok()) {
    Degrade(opened.status(), now);
    return nullptr;
  }
  std::shared_ptr<HistoryDb> db = *std::move(opened);
  Logger("history")->info("history: {} (minutes kept {}, hours kept {})",
                          options_.path,
                          absl::FormatDuration(options_.retention.minutes),
                          absl::FormatDuration(options_.retention.hours));
  absl::MutexLock lock(&mu_);
  db_ = db;
  return db;
}

void HistoryWriter::Degrade(const absl::Status& status, absl::Time now) {
  std::string why = WithFix(status, options_.path);
  absl::MutexLock lock(&mu_);
  const bool log = now - last_error_log_ >= absl::Minutes(1) ||
                   health_.state != HistoryHealth::State::kDegraded;
  health_.state = HistoryHealth::State::kDegraded;
  health_.why = why;
  if (log) {
    last_error_log_ = now;
    Logger("history")->error("history degraded: {}", why);
  }
}

void HistoryWriter::RunOnce(absl::Time now, bool everything) {
  absl::MutexLock run(&run_mu_);
  std::shared_ptr<ResultStore> store = current_store_();
  int64_t before_s = INT64_MAX;
  if (store != nullptr) {
    if (!everything) {
      before_s = absl::ToUnixSeconds(now - Grace(*store));
    }
    const std::vector<TargetSpec>& targets = store->targets();
    store->TakeMinutes(
        before_s, [&](int target, ProbeKind kind, HistoryRow&& row) {
          pending_.push_back(
              HistoryEntry{targets[target].name, kind, std::move(row)});
        });
  }
  if (pending_.size() > kMaxPendingRows) {
    const size_t drop = pending_.size() - kMaxPendingRows;
    pending_.erase(pending_.begin(),
                   pending_.begin() + static_cast<ptrdiff_t>(drop));
    absl::MutexLock lock(&mu_);
    dropped_rows_ += drop;
  }
  std::shared_ptr<HistoryDb> db = EnsureOpen(now);
  if (db == nullptr) return;
  if (absl::Status s = db->WriteMinutes(pending_); !s.ok()) {
    Degrade(s, now);
    return;
  }
  pending_.clear();
  // Hour rows and expiry once an hour (and at the first round).
  const int64_t complete_before =
      before_s == INT64_MAX ? absl::ToUnixSeconds(now) : before_s;
  const int64_t hour =
      PeriodStart(absl::FromUnixSeconds(complete_before), 3600);
  if (hour != maintained_hour_ || everything) {
    if (absl::Status s = db->Maintain(complete_before, absl::ToUnixSeconds(now),
                                      options_.retention);
        !s.ok()) {
      Degrade(s, now);
      return;
    }
    maintained_hour_ = hour;
  }
  absl::MutexLock lock(&mu_);
  if (health_.state == HistoryHealth::State::kDegraded) {
    Logger("history")->info("history: writing again ({})", options_.path);
  }
  health_.state = HistoryHealth::State::kOk;
  health_.why.clear();
}

HistoryHealth HistoryWriter::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

std::shared_ptr<HistoryDb> HistoryWriter::db() const {
  absl::MutexLock lock(&mu_);
  return db_;
}

uint64_t HistoryWriter::dropped_rows() const {
  absl::MutexLock lock(&mu_);
  return dropped_rows_;
}

}  // namespace latency
