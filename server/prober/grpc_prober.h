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
#include "common/wire_tap.h"
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
  // The agent's TCP port, for the wire tap's filter (0: not known).
  uint16_t port = 0;
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
// With a wire tap (--wire_stamps) and an agent that stamps its side too,
// network RTT is the wire round trip seen here minus the agent host's wire
// hold. The agent can report an echo's hold only on a later reply, so such a
// sample waits for the target's next reply (one interval) before it is
// recorded; when no hold comes (the next probe failed, the agent lost its
// stamps) it is recorded with the handler's time after interval + timeout.
//
// Channel connectivity is sampled at every probe; changes are logged and
// counted. A probe sent while the channel was not READY that succeeds timed
// the connection set-up, not the network: it is counted (connect_replies),
// not recorded. Calls the prober cancels itself (Stop, RemoveTarget,
// ReplaceClient) are not samples either.
//
// Targets may be added and removed while the prober runs (a config reload):
// the others' clients, sequences, timetable and counters are untouched.
class GrpcProber {
 public:
  // `wire_tap` may be null (no wire stamps); it must outlive the prober.
  GrpcProber(Clock& clock, SampleSink& sink,
             WireRoundTrips* wire_tap = nullptr);
  ~GrpcProber();

  // Probes `target` through `client`. Before PlanSchedule/Start it joins the
  // initial phase spread; afterwards (thread-safe) it connects at once and
  // starts at the loop's next step. `target.target_index` must not be in use.
  void AddTarget(const GrpcTarget& target, std::unique_ptr<EchoClient> client)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Stops probing the target at the loop's next step: its client is
  // destroyed, its open calls cancelled and, being the prober's own doing,
  // not samples. Thread-safe; an unknown index is ignored.
  void RemoveTarget(int target_index) ABSL_LOCKS_EXCLUDED(mu_);

  // Probes the target through `client` from the next step on (e.g. a new
  // channel after its name resolved to another address). Thread-safe. The
  // old client's open calls are cancelled and, being the prober's own
  // doing, are not samples.
  void ReplaceClient(int target_index, std::unique_ptr<EchoClient> client)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Applies pending AddTarget (after the start), RemoveTarget and
  // ReplaceClient calls (loop thread; public for tests).
  void ApplyChanges() ABSL_LOCKS_EXCLUDED(mu_);

  void Start();
  // Stops sending, then destroys the clients (cancelling what is in flight).
  void Stop();

  // The target's counters (all zero for an unknown index). Thread-safe; the
  // reference stays valid for the prober's lifetime.
  const GrpcTargetCounters& counters(int target_index) const
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t MaxLagNs(int64_t now_ns) const { return lag_.MaxNs(now_ns); }

  // --- Steps of the scheduler loop (public for tests). ---
  void PlanSchedule(int64_t start_ns) ABSL_LOCKS_EXCLUDED(mu_);
  void SendDue(int64_t now_ns);
  void ExpireTimeouts(int64_t now_ns) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<int64_t> NextWakeNs() ABSL_LOCKS_EXCLUDED(mu_);
  size_t pending_count() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One target, by slot index (never reused: a removed target's slot stays,
  // empty, so late callbacks and queued keys cannot reach another target).
  struct Slot {
    GrpcTarget target;
    std::unique_ptr<EchoClient> client;  // null once removed
    GrpcTargetCounters* counters = nullptr;
    uint64_t next_sequence = 0;
    std::string payload;
    bool removed = false;
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
    // How long an answered probe may wait for its wire hold.
    int64_t hold_wait_ns = 0;
  };
  // A sample waiting for the agent's wire hold, which comes with the
  // target's next reply.
  struct AwaitingHold {
    Sample sample;
    int64_t wire_round_trip_ns = 0;
    int64_t give_up_ns = 0;  // then recorded with the handler's time
  };

  void SendOne(int slot, int64_t scheduled_ns);
  void OnReply(int slot, int target_index, GrpcTargetCounters* counters,
               uint64_t sequence, const grpc::Status& status,
               const v1::EchoResponse& response) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the slot's open calls, so their cancellation is not a result.
  void ForgetPending(int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns the channel's state, logging and counting a change.
  grpc_connectivity_state NoteChannelState(Slot& slot);
  void Emit(Sample sample);
  // The server's wire round trip of a successful echo, when both hosts
  // stamp on the wire; nullopt otherwise.
  std::optional<int64_t> WireRoundTrip(const Sample& sample,
                                       const v1::EchoResponse& response);
  // Records the slot's sample that waited for this reply, with the hold the
  // reply carries for it, if any.
  void EmitAwaiting(int slot_index, const v1::EchoResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunLoop();
  // The loop has something to do before its next probe: stop or changes.
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || !additions_.empty() || !removals_.empty() ||
           !replacements_.empty();
  }

  Clock& clock_;
  SampleSink& sink_;
  WireRoundTrips* const wire_tap_;
  // Loop thread only (and the thread that sets up before PlanSchedule).
  std::vector<Slot> slots_;
  ProbeSchedule schedule_;
  std::vector<ProbeSchedule::Due> due_scratch_;
  LagTracker lag_;

  mutable absl::Mutex mu_;
  // By slot index, allocated by AddTarget (the slot itself may still be
  // queued in additions_).
  std::vector<std::unique_ptr<GrpcTargetCounters>> counters_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, int> slot_of_target_ ABSL_GUARDED_BY(mu_);
  // PlanSchedule ran: later targets are queued for the loop.
  bool planned_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Slot> additions_ ABSL_GUARDED_BY(mu_);
  std::vector<int> removals_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<PendingKey, Pending> pending_ ABSL_GUARDED_BY(mu_);
  TimedQueue<PendingKey> deadlines_ ABSL_GUARDED_BY(mu_);
  // By slot; give_ups_ holds (give_up_ns, slot), never removed early.
  absl::flat_hash_map<int, AwaitingHold> awaiting_ ABSL_GUARDED_BY(mu_);
  TimedQueue<int> give_ups_ ABSL_GUARDED_BY(mu_);
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
