#ifndef LATENCY_SERVER_PROBER_GRPC_PROBER_H_
#define LATENCY_SERVER_PROBER_GRPC_PROBER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/prober/echo_client.h"
#include "server/prober/schedule.h"
#include "server/sample.h"

namespace latency {

// One gRPC target as the prober sees it.
struct GrpcTarget {
  int target_index = 0;
  std::string name;  // for logs
  int64_t interval_ns = 1'000'000'000;
  int64_t timeout_ns = 1'000'000'000;
  int payload_bytes = 0;
};

// Per-target channel events.
struct GrpcTargetCounters {
  std::atomic<uint64_t> late_replies{0};  // reply after its timeout
  std::atomic<uint64_t> channel_state_changes{0};
  std::atomic<int> channel_state{GRPC_CHANNEL_IDLE};
  std::atomic<uint64_t> skipped_probes{0};
  // Replies to probes sent before the channel was READY: their time
  // includes connection set-up (TCP, TLS), so they are not RTT samples.
  std::atomic<uint64_t> connect_replies{0};
};

// GrpcProber sends echo probes to every agent at a fixed rate from one
// scheduler thread. Calls are asynchronous (EchoClient), so a slow or dead
// agent never delays another; the prober itself enforces each probe's
// timeout, whatever the client does. Each completed probe becomes a Sample
// with the client-side RTT and the agent's own handling time
// (agent_send - agent_receive), so network RTT = rtt - agent_time.
//
// Channel connectivity is sampled at every probe; changes are logged and
// counted. A probe sent while the channel was not READY that succeeds timed
// the connection set-up, not the network: it is counted (connect_replies),
// not recorded. Calls the prober cancels itself (Stop) are not samples
// either.
class GrpcProber {
 public:
  GrpcProber(Clock& clock, SampleSink& sink);
  ~GrpcProber();

  void AddTarget(const GrpcTarget& target, std::unique_ptr<EchoClient> client);

  // Probes the target through `client` from the next step on (e.g. a new
  // channel after its name resolved to another address). Thread-safe. The
  // old client's open calls are cancelled and, being the prober's own
  // doing, are not samples.
  void ReplaceClient(int target_index, std::unique_ptr<EchoClient> client)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Applies pending ReplaceClient calls (loop thread; public for tests).
  void ApplyReplacements() ABSL_LOCKS_EXCLUDED(mu_);

  void Start();
  // Stops sending, then destroys the clients (cancelling what is in flight).
  void Stop();

  const GrpcTargetCounters& counters(int target_index) const;
  // Continues a target's counters (and the channel state they saw) from
  // another prober's, for a target a reload kept: call after AddTarget,
  // before Start.
  void CarryCounters(int target_index, const GrpcTargetCounters& from);
  int64_t TakeMaxLagNs() { return lag_.Take(); }

  // --- Steps of the scheduler loop (public for tests). ---
  void PlanSchedule(int64_t start_ns);
  void SendDue(int64_t now_ns);
  void ExpireTimeouts(int64_t now_ns) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<int64_t> NextWakeNs() ABSL_LOCKS_EXCLUDED(mu_);
  size_t pending_count() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Slot {
    GrpcTarget target;
    std::unique_ptr<EchoClient> client;
    uint64_t next_sequence = 0;
    std::string payload;
  };
  struct PendingKey {
    int slot;
    uint64_t sequence;
    bool operator==(const PendingKey& o) const {
      return slot == o.slot && sequence == o.sequence;
    }
    template <typename H>
    friend H AbslHashValue(H h, const PendingKey& k) {
      return H::combine(std::move(h), k.slot, k.sequence);
    }
  };
  struct Pending {
    int64_t scheduled_ns = 0;
    int64_t sent_ns = 0;
    int64_t deadline_ns = 0;
    bool channel_ready = true;  // at send
  };

  void SendOne(int slot, int64_t scheduled_ns);
  void OnReply(int slot, uint64_t sequence, const grpc::Status& status,
               const v1::EchoResponse& response) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the channel's state, logging and counting a change.
  grpc_connectivity_state NoteChannelState(Slot& slot);
  void Emit(Sample sample);
  void RunLoop();

  Clock& clock_;
  SampleSink& sink_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<GrpcTargetCounters>> counters_;
  absl::flat_hash_map<int, int> slot_of_target_;
  ProbeSchedule schedule_;  // loop thread only
  std::vector<ProbeSchedule::Due> due_scratch_;
  LagTracker lag_;

  absl::Mutex mu_;
  absl::flat_hash_map<PendingKey, Pending> pending_ ABSL_GUARDED_BY(mu_);
  TimedQueue<PendingKey> deadlines_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<int, std::unique_ptr<EchoClient>>> replacements_
      ABSL_GUARDED_BY(mu_);
  // Per slot: probes below this sequence went to a replaced client; a reply
  // to one is not "late".
  std::vector<uint64_t> forgotten_below_ ABSL_GUARDED_BY(mu_);
  // Set before Stop cancels what is in flight: those replies are dropped.
  bool cancelling_ ABSL_GUARDED_BY(mu_) = false;
  std::thread loop_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_GRPC_PROBER_H_
