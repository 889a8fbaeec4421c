#include "server/api/watch_slots.h"

#include "absl/strings/str_cat.h"

namespace latency {

absl::Status WatchSlots::Admit(const std::string& client) {
  absl::MutexLock lock(&mu_);
  if (open_ >= max_total_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many ", what_, " (limit ", max_total_, ", --max_watchers)"));
  }
  int& mine = by_client_[client];
  if (max_per_client_ > 0 && mine >= max_per_client_) {
    if (mine == 0) by_client_.erase(client);
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many ", what_, " from ", client, " (limit ", max_per_client_,
        " per client, --max_watchers_per_client)"));
  }
  ++mine;
  ++open_;
  return absl::OkStatus();
}

void WatchSlots::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  auto it = by_client_.find(client);
  if (it != by_client_.end() && --it->second <= 0) by_client_.erase(it);
  --open_;
}

int WatchSlots::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

}  // namespace latency
