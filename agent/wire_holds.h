#ifndef LATENCY_AGENT_WIRE_HOLDS_H_
#define LATENCY_AGENT_WIRE_HOLDS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/wire_tap.h"
#include "latency/v1/echo.pb.h"

namespace latency {

// WireHolds tells callers how long each echo spent in this host, wire to
// wire. A reply cannot carry the time it left, so each echo's hold rides on
// a later reply to the same peer (connection): the handler calls Attach with
// the echo it answers, and gets the holds of that peer's earlier echoes
// whose replies the tap has seen leave. Thread-safe.
class WireHolds {
 public:
  // Echoes whose hold is not known after this long are given up.
  static constexpr int64_t kGiveUpNs = 10'000'000'000;
  // Unreported echoes kept per peer, and peers kept: a server probing
  // thousands of targets on one agent holds a connection for each; gone
  // peers are forgotten all at once when the table is full.
  static constexpr size_t kMaxPerPeer = 64;
  static constexpr size_t kMaxPeers = 65536;

  WireHolds(std::unique_ptr<WireTap> tap, Clock& clock)
      : tap_(std::move(tap)), clock_(clock) {}

  WireTap& tap() { return *tap_; }

  // Marks `response` as from a wire-stamping agent, adds the holds of
  // `peer`'s earlier echoes that are known, and remembers echo `key` (its
  // client_send_time_ns).
  void Attach(const std::string& peer, int64_t key, v1::EchoResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Unreported {
    int64_t key;
    int64_t noted_ns;  // monotonic
  };

  const std::unique_ptr<WireTap> tap_;
  Clock& clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<Unreported>> unreported_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace latency

#endif  // LATENCY_AGENT_WIRE_HOLDS_H_
