#ifndef LATENCY_SERVER_PROBER_ICMP_PROBER_H_
#define LATENCY_SERVER_PROBER_ICMP_PROBER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/prober/event_poller.h"
#include "server/prober/icmp_socket.h"
#include "server/prober/ip_address.h"
#include "server/prober/schedule.h"
#include "server/sample.h"

namespace latency {

// One ICMP target as the prober sees it.
struct IcmpTarget {
  int target_index = 0;              // Sample::target_index
  std::optional<IpAddress> address;  // nullopt until resolved
  int payload_bytes = 56;
  int64_t interval_ns = 1'000'000'000;
  int64_t timeout_ns = 1'000'000'000;
};

// Per-target events that are not samples: they do not change loss or RTT.
struct IcmpTargetCounters {
  std::atomic<uint64_t> late_replies{0};        // reply after its timeout
  std::atomic<uint64_t> duplicate_replies{0};   // second reply to one probe
  std::atomic<uint64_t> mismatched_replies{0};  // our id/seq, wrong payload
  std::atomic<uint64_t> skipped_probes{0};  // prober fell an interval behind
};

// IcmpProber sends ICMP echo requests to every target at a fixed rate from
// ONE event loop (epoll over an IPv4 and an IPv6 socket), matches replies by
// source address, sequence and payload, and reports one Sample per probe to
// the sink: ok with the RTT; timeout (no reply, or one received after the
// deadline: late); unreachable, ttl_exceeded or error for ICMP errors
// (ClassifyIcmpError; redirects and source quench do not end a probe).
// Late and duplicate replies are also counted.
//
// RTT uses the kernel's software send and receive stamps when the socket has
// them (Sample::timestamp_source says which were used), each TX stamp
// matched to its probe by the ID its send went out with (the probe's record
// index; IcmpSocket::stamps_by_id) or else by the packet it comes back
// with; a kernel RTT that
// disagrees with the monotonic clock (a wall-clock step) is replaced by the
// clock read around sendto()/recvmsg(), labelled userspace.
//
// Targets may be added and removed while the prober runs (a config reload):
// the others' sequences, timetable, open probes and counters are untouched.
//
// Thread model: Start() runs the loop on its own thread; the step methods
// (SendDue, DrainSocket, ExpireTimeouts) are public so tests can drive the
// prober with a fake clock and fake sockets without that thread.
class IcmpProber {
 public:
  // Either socket may be null (that family then fails with send_failed).
  IcmpProber(Clock& clock, SampleSink& sink, std::unique_ptr<IcmpSocket> v4,
             std::unique_ptr<IcmpSocket> v6);
  ~IcmpProber();

  // Adds a target. Before Start() (or PlanSchedule() in tests) it joins the
  // initial phase spread; afterwards (thread-safe) it starts at the loop's
  // next SendDue. `target.target_index` must not be in use.
  void AddTarget(const IcmpTarget& target) ABSL_LOCKS_EXCLUDED(updates_mu_);
  // Stops probing the target at the loop's next SendDue: its open probes
  // end without a sample (the prober's own doing, not loss). Thread-safe;
  // an unknown index is ignored.
  void RemoveTarget(int target_index) ABSL_LOCKS_EXCLUDED(updates_mu_);

  // Changes a target's address (DNS re-resolution). Thread-safe.
  void UpdateAddress(int target_index, const IpAddress& address)
      ABSL_LOCKS_EXCLUDED(updates_mu_);

  // This process may not send ICMP of that family (no datagram ICMP, no
  // CAP_NET_RAW): its targets' probes (and unresolved targets' when both
  // families are denied) are neither sent nor reported, so the store's
  // no_permission state shows instead of loss. Before Start().
  void SetNoPermission(bool v6) { no_permission_[v6 ? 1 : 0] = true; }

  void Start();
  void Stop();

  // The target's counters (all zero for an unknown index). Thread-safe; the
  // reference stays valid for the prober's lifetime.
  const IcmpTargetCounters& counters(int target_index) const
      ABSL_LOCKS_EXCLUDED(updates_mu_);
  // Largest send lag seen (actual send - scheduled), ns, since the last call.
  int64_t MaxLagNs(int64_t now_ns) const { return lag_.MaxNs(now_ns); }

  // --- Steps of the event loop (public for tests). ---
  void PlanSchedule(int64_t start_ns) ABSL_LOCKS_EXCLUDED(updates_mu_);
  // Applies added and removed targets and address updates first. Sends
  // what is due in one batch per socket when its kernel stamps each send
  // (the userspace send time, shared by the batch, is then not the RTT's).
  void SendDue(int64_t now_ns);
  // Reads the socket's error queue (TX stamps, ICMP errors) when
  // `error_queue_pending` (the poller's EPOLLERR), then its messages.
  void DrainSocket(IcmpSocket& socket, bool error_queue_pending = true);
  void ExpireTimeouts(int64_t now_ns);
  // When the loop must next wake up: next send or next timeout.
  std::optional<int64_t> NextWakeNs() const;
  // How long the loop waits at least between wakes (it then sends and reads
  // in batches); 0 while a late read would change RTTs.
  int64_t MinWakeGapNs(int64_t now_ns) const;
  // Probes sent and not yet ended (counted: for tests).
  size_t pending_count() const;

 private:
  struct Key {
    IpAddress address;
    uint16_t sequence = 0;
    bool operator==(const Key& other) const {
      return address == other.address && sequence == other.sequence;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& key) {
      return H::combine(std::move(h), key.address, key.sequence);
    }
  };
  // A probe in flight, or ended and remembered for a while to tell late and
  // duplicate replies from strangers. Records live in one table, reached
  // by (address, wire sequence) through probe_of_key_ when a reply or stamp
  // names them, and by index from the deadline and forget queues: one hash
  // lookup per reply or stamp, none per deadline.
  struct ProbeRecord {
    enum class State : uint8_t { kFree, kPending, kEnded };
    State state = State::kFree;
    bool answered = false;  // kEnded: a reply (not a timeout or error) ended it
    // Counts the record's reuses: a queued reference to an earlier probe
    // in it finds a different generation.
    uint32_t generation = 0;
    int slot = 0;  // index into slots_
    Key key;
    uint64_t sequence = 0;
    uint64_t token = 0;
    int64_t scheduled_ns = 0;
    int64_t sent_ns = 0;  // userspace, just before sendto
    int64_t deadline_ns = 0;
    std::optional<int64_t> tx_kernel_realtime_ns;
    std::optional<int64_t> tx_kernel_monotonic_ns;
  };
  struct RecordRef {
    uint32_t index = 0;
    uint32_t generation = 0;
  };
  // One target, by slot index (never reused: a removed target's slot stays,
  // idle, so remembered probes cannot reach another target).
  struct Slot {
    IcmpTarget target;
    IcmpTargetCounters* counters = nullptr;
    uint64_t next_sequence = 0;
    // Its address's entry in next_wire_sequence_ (null: look it up).
    uint16_t* wire_sequence = nullptr;
    bool removed = false;
  };

  // A probe built and waiting for its socket's batch send.
  struct Outgoing {
    int slot = 0;
    uint64_t sequence = 0;
    uint64_t token = 0;
    int64_t scheduled_ns = 0;
    Key key;
    uint32_t record = 0;  // index into records_, once Flush made it
  };
  struct SendBatch {
    std::vector<Outgoing> probes;
    std::vector<IcmpOutgoing> wire;
    std::vector<std::string> messages;  // buffers reused across batches
  };

  void ApplyChanges(int64_t now_ns) ABSL_LOCKS_EXCLUDED(updates_mu_);
  void WakeLoop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(updates_mu_);
  void QueueProbe(int slot, int64_t scheduled_ns);
  void Flush(IcmpSocket& socket, SendBatch& batch);
  void EmitSendFailed(int target_index, uint64_t sequence, int64_t scheduled_ns,
                      int64_t failed_ns, std::string error);
  void DrainQueue(IcmpSocket& socket, bool error_queue);
  void Handle(IcmpSocket& socket, const IcmpReceived& item);
  void HandleTxStamp(IcmpSocket& socket, const IcmpReceived& item);
  void HandleMessage(IcmpSocket& socket, const IcmpReceived& item);
  void HandleError(const Key& key, SampleResult result,
                   const std::string& detail);
  // The pending probe under `key`, or null.
  ProbeRecord* FindPending(const Key& key);
  void NoteRejectedKernelRtt(int64_t kernel_rtt_ns, int64_t userspace_rtt_ns);
  void Complete(ProbeRecord& probe, SampleResult result, int64_t completed_ns,
                std::optional<int64_t> rtt_ns, TimestampSource source,
                const std::string& error);
  // A record (its index) for a probe about to be sent under `key`; one
  // still there under that key (its sequence wrapped) is dropped.
  uint32_t NewRecord(const Key& key);
  // FreeRecord leaves the key map to the caller; ForgetRecord also drops
  // the record's key.
  void FreeRecord(uint32_t index);
  void ForgetRecord(uint32_t index);
  void RunLoop();
  void Emit(const Sample& sample);

  Clock& clock_;
  SampleSink& sink_;
  std::unique_ptr<IcmpSocket> v4_;
  std::unique_ptr<IcmpSocket> v6_;
  const uint64_t nonce_;
  uint64_t next_token_ = 1;

  // Loop thread only (and the thread that sets up before PlanSchedule).
  std::vector<Slot> slots_;
  // Nodes, so that slots may point at their entries.
  absl::node_hash_map<IpAddress, uint16_t> next_wire_sequence_;
  ProbeSchedule schedule_;
  std::vector<ProbeRecord> records_;
  std::vector<uint32_t> free_records_;
  absl::flat_hash_map<Key, uint32_t> probe_of_key_;  // pending and ended
  // Probe deadlines and when ended probes are forgotten, in time order
  // (lazy deletion: a reference whose record moved on is skipped).
  TimedQueue<RecordRef> deadlines_;
  TimedQueue<RecordRef> forget_order_;
  std::vector<ProbeSchedule::Due> due_scratch_;
  SendBatch batches_[2];  // IPv4, IPv6
  // Receive batches, reused: messages, and the error queue (which a reply
  // can make the prober read while it holds messages).
  std::vector<IcmpReceived> message_items_;
  std::vector<IcmpReceived> error_items_;
  // During one DrainSocket: its error queue was read for a reply whose TX
  // stamp had not been read yet.
  bool error_queue_read_ = false;
  // Whether the last reply to a probe came with a kernel receive stamp.
  std::optional<bool> last_reply_kernel_stamped_;
  std::optional<int64_t> planned_ns_;  // PlanSchedule's start
  LagTracker lag_;
  uint64_t rejected_kernel_rtts_ = 0;
  bool no_permission_[2] = {false, false};

  mutable absl::Mutex updates_mu_;
  // By slot index, allocated by AddTarget (the slot itself may still be
  // queued in additions_).
  std::vector<std::unique_ptr<IcmpTargetCounters>> counters_
      ABSL_GUARDED_BY(updates_mu_);
  absl::flat_hash_map<int, int> slot_of_target_ ABSL_GUARDED_BY(updates_mu_);
  // PlanSchedule ran: later targets are queued for the loop.
  bool planned_ ABSL_GUARDED_BY(updates_mu_) = false;
  std::vector<Slot> additions_ ABSL_GUARDED_BY(updates_mu_);
  std::vector<int> removals_ ABSL_GUARDED_BY(updates_mu_);
  // Address updates by slot.
  std::vector<std::pair<int, IpAddress>> updates_ ABSL_GUARDED_BY(updates_mu_);

  std::unique_ptr<EventPoller> poller_;
  // Wakes the loop for stop and for added or removed targets.
  int wake_fd_ ABSL_GUARDED_BY(updates_mu_) = -1;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_ICMP_PROBER_H_
