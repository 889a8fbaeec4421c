#include "server/prober/icmp_prober.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "server/prober/icmp_packet.h"

namespace latency {
namespace {

// How long an ended probe is remembered, to classify late or duplicate
// replies. Must stay below the 16-bit sequence wrap time (65536 intervals).
int64_t RetentionNs(int64_t timeout_ns) {
  return std::max<int64_t>(2 * timeout_ns, 5'000'000'000);
}

// Slack for comparing kernel stamps (moved onto the monotonic clock) with
// userspace readings; the conversion is good to a few microseconds unless
// the thread is preempted between its two clock reads.
constexpr int64_t kStampSlackNs = 100'000;

// A TX stamp ID (31 bits: IcmpOutgoing::stamp_id) names a record by its
// index and the low bits of its generation, so a late stamp for a probe
// whose record was already given to another (its target removed) is told
// apart. (Over 16 million records, indices would alias and such stamps be
// dropped: hundreds of seconds of probes at 100k targets.)
constexpr int kStampIndexBits = 24;
constexpr uint32_t kStampIndexMask = (1u << kStampIndexBits) - 1;
constexpr uint32_t kStampGenerationMask = 0x7f;

uint32_t StampIdOf(uint32_t index, uint32_t generation) {
  return (generation & kStampGenerationMask) << kStampIndexBits |
         (index & kStampIndexMask);
}

uint64_t RandomNonce() {
  std::random_device random;
  return (uint64_t{random()} << 32) ^ random();
}

}  // namespace

IcmpProber::IcmpProber(Clock& clock, SampleSink& sink,
                       std::unique_ptr<IcmpSocket> v4,
                       std::unique_ptr<IcmpSocket> v6)
    : clock_(clock),
      sink_(sink),
      v4_(std::move(v4)),
      v6_(std::move(v6)),
      nonce_(RandomNonce()) {}

IcmpProber::~IcmpProber() { Stop(); }

void IcmpProber::AddTarget(const IcmpTarget& target) {
  Slot slot;
  slot.target = target;
  absl::MutexLock lock(&updates_mu_);
  slot_of_target_[target.target_index] = static_cast<int>(counters_.size());
  counters_.push_back(std::make_unique<IcmpTargetCounters>());
  slot.counters = counters_.back().get();
  if (planned_) {
    additions_.push_back(slot);
    WakeLoop();
  } else {
    slots_.push_back(slot);
  }
}

void IcmpProber::RemoveTarget(int target_index) {
  absl::MutexLock lock(&updates_mu_);
  auto it = slot_of_target_.find(target_index);
  if (it == slot_of_target_.end()) return;
  removals_.push_back(it->second);
  slot_of_target_.erase(it);
  WakeLoop();
}

void IcmpProber::WakeLoop() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

const IcmpTargetCounters& IcmpProber::counters(int target_index) const {
  static const IcmpTargetCounters kNone;
  absl::MutexLock lock(&updates_mu_);
  auto it = slot_of_target_.find(target_index);
  return it == slot_of_target_.end() ? kNone : *counters_[it->second];
}

void IcmpProber::UpdateAddress(int target_index, const IpAddress& address) {
  absl::MutexLock lock(&updates_mu_);
  auto it = slot_of_target_.find(target_index);
  if (it == slot_of_target_.end()) return;  // removed meanwhile
  updates_.emplace_back(it->second, address);
}

void IcmpProber::ApplyChanges(int64_t now_ns) {
  std::vector<Slot> additions;
  std::vector<int> removals;
  std::vector<std::pair<int, IpAddress>> updates;
  {
    absl::MutexLock lock(&updates_mu_);
    additions.swap(additions_);
    removals.swap(removals_);
    updates.swap(updates_);
  }
  if (!additions.empty()) {
    // Slots are numbered in AddTarget order, as the schedule numbers series.
    std::vector<int64_t> intervals;
    for (const Slot& slot : additions) {
      intervals.push_back(slot.target.interval_ns);
      slots_.push_back(slot);
    }
    schedule_.AddSpread(now_ns, intervals);
  }
  for (const auto& [slot, address] : updates) {
    slots_[slot].target.address = address;
    slots_[slot].wire_sequence = nullptr;
  }
  if (removals.empty()) return;
  for (int slot : removals) {
    slots_[slot].removed = true;
    schedule_.Remove(slot);
  }
  // Their open probes end here, unreported; a reply still on its way is
  // then a stranger. Queued deadlines find nothing (lazy deletion).
  for (uint32_t i = 0; i < records_.size(); ++i) {
    ProbeRecord& probe = records_[i];
    if (probe.state == ProbeRecord::State::kPending &&
        slots_[probe.slot].removed) {
      ForgetRecord(i);
    }
  }
}

void IcmpProber::PlanSchedule(int64_t start_ns) {
  {
    absl::MutexLock lock(&updates_mu_);
    planned_ = true;
  }
  planned_ns_ = start_ns;
  std::vector<int64_t> intervals;
  for (const Slot& slot : slots_) intervals.push_back(slot.target.interval_ns);
  schedule_.AddSpread(start_ns, intervals);
}

void IcmpProber::SendDue(int64_t now_ns) {
  ApplyChanges(now_ns);
  due_scratch_.clear();
  schedule_.PopDue(now_ns, &due_scratch_);
  for (const ProbeSchedule::Due& due : due_scratch_) {
    if (due.skipped > 0) {
      slots_[due.series].counters->skipped_probes += due.skipped;
    }
    QueueProbe(due.series, due.scheduled_ns);
  }
  if (v4_) Flush(*v4_, batches_[0]);
  if (v6_) Flush(*v6_, batches_[1]);
}

void IcmpProber::QueueProbe(int slot_index, int64_t scheduled_ns) {
  Slot& slot = slots_[slot_index];
  const IcmpTarget& target = slot.target;
  if (target.address ? no_permission_[target.address->is_v6() ? 1 : 0]
                     : no_permission_[0] && no_permission_[1]) {
    return;
  }
  uint64_t sequence = slot.next_sequence++;
  auto fail = [&](std::string error) {
    EmitSendFailed(target.target_index, sequence, scheduled_ns,
                   clock_.MonotonicNanos(), std::move(error));
  };
  if (!target.address) return fail("address not resolved");
  bool v6 = target.address->is_v6();
  IcmpSocket* socket = v6 ? v6_.get() : v4_.get();
  if (socket == nullptr) {
    return fail(v6 ? "no ICMPv6 socket" : "no ICMP socket");
  }
  // Wire sequence numbers count per destination address, not per target:
  // two targets on one host (or an address that DNS moved) never share an
  // (address, sequence) key while probes are pending.
  SendBatch& batch = batches_[v6 ? 1 : 0];
  Outgoing& probe = batch.probes.emplace_back();
  probe.slot = slot_index;
  probe.sequence = sequence;
  probe.token = next_token_++;
  probe.scheduled_ns = scheduled_ns;
  if (slot.wire_sequence == nullptr) {
    slot.wire_sequence = &next_wire_sequence_[*target.address];
  }
  probe.key = Key{*target.address, (*slot.wire_sequence)++};
  if (batch.messages.size() < batch.probes.size())
    batch.messages.emplace_back();
  BuildEchoRequestInto(v6, socket->id(), probe.key.sequence, nonce_,
                       probe.token, target.payload_bytes,
                       &batch.messages[batch.probes.size() - 1]);
  // Without kernel stamps the userspace send time is the RTT's: each probe
  // leaves alone, right after it is read.
  if (!socket->kernel_timestamps()) Flush(*socket, batch);
}

void IcmpProber::Flush(IcmpSocket& socket, SendBatch& batch) {
  if (batch.probes.empty()) return;
  // Each probe's record first: it names the probe's TX stamp.
  batch.wire.clear();
  for (size_t i = 0; i < batch.probes.size(); ++i) {
    Outgoing& probe = batch.probes[i];
    probe.record = NewRecord(probe.key);
    batch.wire.push_back(
        IcmpOutgoing{probe.key.address, batch.messages[i],
                     StampIdOf(probe.record, records_[probe.record].generation),
                     absl::OkStatus()});
  }
  int64_t sent_ns = clock_.MonotonicNanos();
  socket.SendBatch(absl::MakeSpan(batch.wire));
  for (size_t i = 0; i < batch.probes.size(); ++i) {
    const Outgoing& probe = batch.probes[i];
    const Slot& slot = slots_[probe.slot];
    lag_.Note(sent_ns - probe.scheduled_ns, sent_ns);
    if (!batch.wire[i].result.ok()) {
      ForgetRecord(probe.record);
      EmitSendFailed(slot.target.target_index, probe.sequence,
                     probe.scheduled_ns, sent_ns,
                     std::string(batch.wire[i].result.message()));
      continue;
    }
    ProbeRecord& record = records_[probe.record];
    record.slot = probe.slot;
    record.sequence = probe.sequence;
    record.token = probe.token;
    record.scheduled_ns = probe.scheduled_ns;
    record.sent_ns = sent_ns;
    record.deadline_ns = sent_ns + slot.target.timeout_ns;
    deadlines_.Push(record.deadline_ns,
                    RecordRef{probe.record, record.generation});
  }
  batch.probes.clear();
}

uint32_t IcmpProber::NewRecord(const Key& key) {
  auto [entry, inserted] = probe_of_key_.try_emplace(key, 0);
  if (!inserted) {
    // Sequence wrapped onto a probe still remembered: it is dropped (its
    // queued deadline or forget time then finds the record moved on).
    FreeRecord(entry->second);
  }
  uint32_t index;
  if (free_records_.empty()) {
    index = static_cast<uint32_t>(records_.size());
    records_.emplace_back();
  } else {
    index = free_records_.back();
    free_records_.pop_back();
  }
  entry->second = index;
  ProbeRecord& record = records_[index];
  uint32_t generation = record.generation + 1;
  record = ProbeRecord{};
  record.generation = generation;
  record.state = ProbeRecord::State::kPending;
  record.key = key;
  return index;
}

void IcmpProber::FreeRecord(uint32_t index) {
  records_[index].state = ProbeRecord::State::kFree;
  free_records_.push_back(index);
}

void IcmpProber::ForgetRecord(uint32_t index) {
  probe_of_key_.erase(records_[index].key);
  FreeRecord(index);
}

size_t IcmpProber::pending_count() const {
  return std::count_if(records_.begin(), records_.end(),
                       [](const ProbeRecord& record) {
                         return record.state == ProbeRecord::State::kPending;
                       });
}

IcmpProber::ProbeRecord* IcmpProber::FindPending(const Key& key) {
  auto it = probe_of_key_.find(key);
  if (it == probe_of_key_.end()) return nullptr;
  ProbeRecord& record = records_[it->second];
  return record.state == ProbeRecord::State::kPending ? &record : nullptr;
}

void IcmpProber::EmitSendFailed(int target_index, uint64_t sequence,
                                int64_t scheduled_ns, int64_t failed_ns,
                                std::string error) {
  Sample failed;
  failed.target_index = target_index;
  failed.kind = ProbeKind::kIcmp;
  failed.sequence = sequence;
  failed.scheduled_ns = scheduled_ns;
  failed.result = SampleResult::kSendFailed;
  failed.sent_ns = failed.completed_ns = failed_ns;
  failed.error = std::move(error);
  Emit(failed);
}

void IcmpProber::DrainSocket(IcmpSocket& socket, bool error_queue_pending) {
  error_queue_read_ = false;
  if (error_queue_pending) DrainQueue(socket, /*error_queue=*/true);
  DrainQueue(socket, /*error_queue=*/false);
}

void IcmpProber::DrainQueue(IcmpSocket& socket, bool error_queue) {
  constexpr size_t kItems = 64;
  std::vector<IcmpReceived>& items =
      error_queue ? error_items_ : message_items_;
  if (items.size() < kItems) items.resize(kItems);
  for (;;) {
    IcmpReceiveResult read = socket.Receive(error_queue, absl::MakeSpan(items));
    for (size_t i = 0; i < read.items; ++i) Handle(socket, items[i]);
    if (read.drained || read.items == 0) return;
  }
}

void IcmpProber::Handle(IcmpSocket& socket, const IcmpReceived& item) {
  switch (item.kind) {
    case IcmpReceived::Kind::kTxTimestamp:
      HandleTxStamp(socket, item);
      break;
    case IcmpReceived::Kind::kMessage:
      HandleMessage(socket, item);
      break;
    case IcmpReceived::Kind::kError: {
      if (!item.peer) break;
      absl::StatusOr<ParsedIcmp> quoted =
          ParseIcmp(item.data, socket.ipv6(), /*ip_header_included=*/false);
      if (!quoted.ok() || !quoted->sequence) break;
      std::optional<IcmpErrorVerdict> verdict =
          ClassifyIcmpError(socket.ipv6(), item.error_type, item.error_code);
      if (!verdict) break;  // redirect, source quench: a reply may come
      HandleError(Key{*item.peer, *quoted->sequence}, verdict->result,
                  verdict->text);
      break;
    }
  }
}

void IcmpProber::HandleTxStamp(IcmpSocket& socket, const IcmpReceived& item) {
  if (!item.kernel_realtime_ns || !item.kernel_monotonic_ns) return;
  // The probe's record (its stamp ID), or the packet itself names the
  // probe: never a count of sends, which a failed send would shift.
  ProbeRecord* pending = nullptr;
  if (item.stamp_id) {
    uint32_t index = *item.stamp_id & kStampIndexMask;
    if (index < records_.size() &&
        StampIdOf(index, records_[index].generation) == *item.stamp_id &&
        records_[index].state == ProbeRecord::State::kPending &&
        records_[index].key.address.is_v6() == socket.ipv6()) {
      pending = &records_[index];
    }
  } else {
    std::optional<LoopedEcho> echo = ParseLoopedEcho(item.data, socket.ipv6());
    if (!echo || echo->id != socket.id()) return;
    pending = FindPending(Key{echo->destination, echo->sequence});
  }
  // A stamp older than the send belongs to an earlier probe under the same
  // (wrapped) sequence.
  if (pending == nullptr || pending->tx_kernel_realtime_ns ||
      *item.kernel_monotonic_ns + kStampSlackNs < pending->sent_ns) {
    return;
  }
  pending->tx_kernel_realtime_ns = item.kernel_realtime_ns;
  pending->tx_kernel_monotonic_ns = item.kernel_monotonic_ns;
}

void IcmpProber::HandleMessage(IcmpSocket& socket, const IcmpReceived& item) {
  absl::StatusOr<ParsedIcmp> parsed =
      ParseIcmp(item.data, socket.ipv6(), socket.ip_header_included());
  if (!parsed.ok() || !parsed->id || !parsed->sequence) return;
  if (parsed->kind == ParsedIcmp::Kind::kUnreachable ||
      parsed->kind == ParsedIcmp::Kind::kTimeExceeded ||
      parsed->kind == ParsedIcmp::Kind::kOtherError) {
    // Raw sockets see errors as messages quoting our request; they are
    // classified exactly as the datagram socket's queued errors are.
    if (*parsed->id != socket.id() || !parsed->quoted_destination) return;
    std::optional<IcmpErrorVerdict> verdict =
        ClassifyIcmpError(socket.ipv6(), parsed->type, parsed->code);
    if (!verdict) return;
    HandleError(
        Key{*parsed->quoted_destination, *parsed->sequence}, verdict->result,
        verdict->text + (item.peer ? " from " + item.peer->ToString() : ""));
    return;
  }
  if (parsed->kind != ParsedIcmp::Kind::kEchoReply || !item.peer) return;
  if (*parsed->id != socket.id()) return;  // another process's ping
  Key key{*item.peer, *parsed->sequence};
  auto it = probe_of_key_.find(key);
  if (it == probe_of_key_.end()) return;  // a stranger
  uint32_t index = it->second;
  if (records_[index].state == ProbeRecord::State::kEnded) {
    auto& counters = *slots_[records_[index].slot].counters;
    if (records_[index].answered) {
      ++counters.duplicate_replies;
    } else {
      ++counters.late_replies;
    }
    return;
  }
  if (!records_[index].tx_kernel_realtime_ns && socket.kernel_timestamps() &&
      !error_queue_read_) {
    // Its TX stamp came after the poller looked (EPOLLERR unset then): read
    // the error queue once now rather than lose the kernel send time.
    // (The record stays where it is: only sends add records.)
    error_queue_read_ = true;
    DrainQueue(socket, /*error_queue=*/true);
    // An ICMP error there ended it.
    if (records_[index].state != ProbeRecord::State::kPending) return;
  }
  ProbeRecord& pending = records_[index];
  const IcmpTarget& target = slots_[pending.slot].target;
  if (!ProbePayloadMatches(parsed->payload, nonce_, pending.token,
                           target.payload_bytes)) {
    ++slots_[pending.slot].counters->mismatched_replies;
    return;
  }
  bool kernel_tx = pending.tx_kernel_realtime_ns.has_value();
  bool kernel_rx = item.kernel_realtime_ns.has_value();
  last_reply_kernel_stamped_ = kernel_rx;
  // Received after its deadline: late, as a gRPC deadline makes it, even
  // when the loop drains the socket before it expires the probe.
  int64_t received_ns =
      kernel_rx ? *item.kernel_monotonic_ns : item.userspace_ns;
  if (received_ns > pending.deadline_ns) {
    ++slots_[pending.slot].counters->late_replies;
    Complete(pending, SampleResult::kTimeout, pending.deadline_ns, std::nullopt,
             TimestampSource::kNone, "no reply within timeout");
    return;
  }
  int64_t userspace_rtt =
      std::max<int64_t>(0, item.userspace_ns - pending.sent_ns);
  int64_t rtt = userspace_rtt;
  TimestampSource source = TimestampSource::kUserspace;
  if (kernel_tx && kernel_rx) {
    // Kernel stamps are CLOCK_REALTIME: a wall-clock step between them
    // (NTP, VM resume) would become RTT. Trust their difference only when
    // it agrees with the same stamps moved onto the monotonic clock and
    // fits inside the userspace (monotonic) send/receive readings.
    int64_t realtime_rtt =
        *item.kernel_realtime_ns - *pending.tx_kernel_realtime_ns;
    int64_t monotonic_rtt =
        *item.kernel_monotonic_ns - *pending.tx_kernel_monotonic_ns;
    if (realtime_rtt >= 0 &&
        std::abs(realtime_rtt - monotonic_rtt) <= kStampSlackNs &&
        realtime_rtt <= userspace_rtt + kStampSlackNs) {
      rtt = realtime_rtt;
      source = TimestampSource::kKernel;
    } else {
      NoteRejectedKernelRtt(realtime_rtt, userspace_rtt);
    }
  } else if (kernel_tx || kernel_rx) {
    int64_t tx = kernel_tx ? *pending.tx_kernel_monotonic_ns : pending.sent_ns;
    int64_t rx = kernel_rx ? *item.kernel_monotonic_ns : item.userspace_ns;
    if (rx >= tx) {
      rtt = rx - tx;
      source = TimestampSource::kMixed;
    }
  }
  Complete(pending, SampleResult::kOk, item.userspace_ns, rtt, source, "");
}

void IcmpProber::NoteRejectedKernelRtt(int64_t kernel_rtt_ns,
                                       int64_t userspace_rtt_ns) {
  // Rare (clock steps): the first one is worth a line, the rest a count.
  if (rejected_kernel_rtts_++ == 0) {
    Logger("prober")->warn(
        "ICMP kernel RTT {} ns disagrees with the monotonic {} ns (wall-clock "
        "step?): using userspace stamps for such samples",
        kernel_rtt_ns, userspace_rtt_ns);
  }
}

void IcmpProber::HandleError(const Key& key, SampleResult result,
                             const std::string& detail) {
  ProbeRecord* pending = FindPending(key);
  if (pending == nullptr) return;
  Complete(*pending, result, clock_.MonotonicNanos(), std::nullopt,
           TimestampSource::kNone, detail);
}

void IcmpProber::Complete(ProbeRecord& probe, SampleResult result,
                          int64_t completed_ns, std::optional<int64_t> rtt_ns,
                          TimestampSource source, const std::string& error) {
  // Remembered until its forget time, for late and duplicate replies.
  probe.state = ProbeRecord::State::kEnded;
  probe.answered = result == SampleResult::kOk;
  forget_order_.Push(
      completed_ns + RetentionNs(slots_[probe.slot].target.timeout_ns),
      RecordRef{static_cast<uint32_t>(&probe - records_.data()),
                probe.generation});
  Sample sample;
  sample.target_index = slots_[probe.slot].target.target_index;
  sample.kind = ProbeKind::kIcmp;
  sample.sequence = probe.sequence;
  sample.scheduled_ns = probe.scheduled_ns;
  sample.sent_ns = probe.sent_ns;
  sample.completed_ns = completed_ns;
  sample.result = result;
  sample.rtt_ns = rtt_ns;
  sample.timestamp_source = source;
  sample.error = error;
  Emit(sample);
}

void IcmpProber::ExpireTimeouts(int64_t now_ns) {
  int64_t time_ns = 0;
  RecordRef ref;
  while (deadlines_.PopDue(now_ns, &time_ns, &ref)) {
    ProbeRecord& probe = records_[ref.index];
    if (probe.generation != ref.generation ||
        probe.state != ProbeRecord::State::kPending) {
      continue;  // answered, or dropped
    }
    Complete(probe, SampleResult::kTimeout, now_ns, std::nullopt,
             TimestampSource::kNone, "no reply within timeout");
  }
  while (forget_order_.PopDue(now_ns, &time_ns, &ref)) {
    ProbeRecord& probe = records_[ref.index];
    if (probe.generation != ref.generation ||
        probe.state != ProbeRecord::State::kEnded) {
      continue;  // dropped already
    }
    ForgetRecord(ref.index);
  }
}

std::optional<int64_t> IcmpProber::NextWakeNs() const {
  std::optional<int64_t> next = schedule_.NextDueNs();
  if (!deadlines_.empty() && (!next || deadlines_.next_ns() < *next)) {
    next = deadlines_.next_ns();
  }
  return next;
}

void IcmpProber::Emit(const Sample& sample) {
  Sample labelled = sample;
  labelled.scheduled_wall = clock_.WallTimeOf(sample.scheduled_ns);
  sink_.Record(labelled);
}

void IcmpProber::Start() {
  if (loop_.joinable()) return;
  absl::StatusOr<std::unique_ptr<EventPoller>> poller = EventPoller::Create();
  if (!poller.ok()) {
    // Out of file descriptors at start-up: nothing to probe with.
    Logger("prober")->error("ICMP prober not started: {}",
                            poller.status().message());
    return;
  }
  poller_ = std::move(*poller);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  (void)poller_->Add(wake_fd, EPOLLIN, 2);
  {
    absl::MutexLock lock(&updates_mu_);
    wake_fd_ = wake_fd;
  }
  for (uint32_t i = 0; i < 2; ++i) {
    IcmpSocket* socket = i == 0 ? v4_.get() : v6_.get();
    if (socket == nullptr || socket->fd() < 0) continue;
    if (absl::Status added = poller_->Add(socket->fd(), EPOLLIN | EPOLLERR, i);
        !added.ok()) {
      Logger("prober")->error("ICMP socket not watched: {}", added.message());
    }
  }
  PlanSchedule(clock_.MonotonicNanos());
  stop_ = false;
  loop_ = std::thread([this] { RunLoop(); });
}

void IcmpProber::Stop() {
  if (!loop_.joinable()) return;
  stop_ = true;
  int wake_fd = -1;
  {
    absl::MutexLock lock(&updates_mu_);
    WakeLoop();
    wake_fd = std::exchange(wake_fd_, -1);
  }
  loop_.join();
  poller_.reset();
  close(wake_fd);
}

int64_t IcmpProber::MinWakeGapNs(int64_t now_ns) const {
  // With kernel stamps on every socket, when a reply is read or a probe is
  // sent does not change its RTT: the loop then wakes at most every 4 ms,
  // so at thousands of probes a second each wake sends and reads a batch
  // (one sendmmsg, one recvmmsg) instead of one probe. The price: samples
  // reach the store up to 4 ms after their reply, and send lag reads up to
  // 4 ms (10k targets: 1 ms wakes cost 1.7 times the CPU of these).
  // Replies must carry their stamps too: the kernel switches receive
  // stamping on a moment (a work item) after the first socket in the
  // machine asks, and a reply before that has only the time it was read.
  // So: not before a stamped reply, or for targets that never answer, not
  // before a second has surely let the kernel catch up.
  constexpr int64_t kGatheredWakeGapNs = 4'000'000;
  constexpr int64_t kStampsSurelyOnNs = 1'000'000'000;
  bool sockets_stamp =
      (!v4_ || v4_->kernel_timestamps()) && (!v6_ || v6_->kernel_timestamps());
  bool replies_stamped = last_reply_kernel_stamped_.value_or(
      planned_ns_ && now_ns - *planned_ns_ >= kStampsSurelyOnNs);
  return sockets_stamp && replies_stamped ? kGatheredWakeGapNs : 0;
}

void IcmpProber::RunLoop() {
  auto log = Logger("prober");
  auto describe = [](const IcmpSocket* socket) -> std::string {
    if (socket == nullptr) return "none";
    if (!socket->kernel_timestamps()) return socket->mode() + ", user stamps";
    return socket->mode() + ", kernel stamps" +
           (socket->stamps_by_id() ? " (TX stamps by ID)" : "");
  };
  log->info("ICMP prober: {} targets (IPv4 socket: {}, IPv6 socket: {})",
            slots_.size(), describe(v4_.get()), describe(v6_.get()));
  int64_t last_wake_ns = 0;
  epoll_event events[4];
  while (!stop_) {
    int64_t now = clock_.MonotonicNanos();
    int64_t min_gap_ns = MinWakeGapNs(now);
    if (now - last_wake_ns < min_gap_ns) {
      absl::SleepFor(absl::Nanoseconds(min_gap_ns - (now - last_wake_ns)));
      now = clock_.MonotonicNanos();
    }
    std::optional<int64_t> wake = NextWakeNs();
    // Nothing scheduled: still wake up now and then for address updates.
    int64_t timeout_ns =
        wake ? std::max<int64_t>(0, *wake - now) : 1'000'000'000;
    int n = poller_->Wait(events, 4, timeout_ns);
    last_wake_ns = clock_.MonotonicNanos();
    for (int i = 0; i < n; ++i) {
      uint32_t which = events[i].data.u32;
      bool error_queue = (events[i].events & EPOLLERR) != 0;
      if (which == 0 && v4_) DrainSocket(*v4_, error_queue);
      if (which == 1 && v6_) DrainSocket(*v6_, error_queue);
      if (which == 2) {
        uint64_t count = 0;
        int wake_fd = -1;
        {
          absl::MutexLock lock(&updates_mu_);
          wake_fd = wake_fd_;
        }
        ssize_t ignored = read(wake_fd, &count, sizeof(count));
        (void)ignored;
      }
    }
    now = clock_.MonotonicNanos();
    SendDue(now);
    ExpireTimeouts(now);
  }
}

}  // namespace latency
