#ifndef LATENCY_SERVER_API_WATCH_SLOTS_H_
#define LATENCY_SERVER_API_WATCH_SLOTS_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace latency {

// WatchSlots admits long-lived streams (gRPC Watch, /v1/watch events): at
// most `max_total` open, and at most `max_per_client` from one client
// address (IP, any port; 0: the total limit only), so one client cannot
// take every slot. Thread-safe.
class WatchSlots {
 public:
  // `what` names the streams in refusals ("Watch streams").
  WatchSlots(int max_total, int max_per_client, std::string what)
      : max_total_(max_total),
        max_per_client_(max_per_client),
        what_(std::move(what)) {}

  // Takes a slot for `client`, or says why not (RESOURCE_EXHAUSTED naming
  // the limit and its flag).
  absl::Status Admit(const std::string& client) ABSL_LOCKS_EXCLUDED(mu_);
  // Gives back a slot Admit took.
  void Release(const std::string& client) ABSL_LOCKS_EXCLUDED(mu_);
  int open() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int max_total_;
  const int max_per_client_;
  const std::string what_;
  mutable absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> by_client_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_WATCH_SLOTS_H_
