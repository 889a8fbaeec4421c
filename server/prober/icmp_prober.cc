#include "server/prober/icmp_prober.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <random>

#include "absl/strings/str_cat.h"
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
// userspace readings; the conversion is good to a few microseconds.
constexpr int64_t kStampSlackNs = 1'000'000;

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
  slot_of_target_[target.target_index] = static_cast<int>(slots_.size());
  slots_.push_back({target, 0});
  counters_.push_back(std::make_unique<IcmpTargetCounters>());
}

const IcmpTargetCounters& IcmpProber::counters(int target_index) const {
  return *counters_[slot_of_target_.at(target_index)];
}

void IcmpProber::UpdateAddress(int target_index, const IpAddress& address) {
  absl::MutexLock lock(&updates_mu_);
  updates_.emplace_back(target_index, address);
}

void IcmpProber::ApplyAddressUpdates() {
  std::vector<std::pair<int, IpAddress>> updates;
  {
    absl::MutexLock lock(&updates_mu_);
    updates.swap(updates_);
  }
  for (const auto& [target_index, address] : updates) {
    auto it = slot_of_target_.find(target_index);
    if (it != slot_of_target_.end())
      slots_[it->second].target.address = address;
  }
}

void IcmpProber::PlanSchedule(int64_t start_ns) {
  std::vector<int64_t> intervals;
  for (const Slot& slot : slots_) intervals.push_back(slot.target.interval_ns);
  schedule_.AddSpread(start_ns, intervals);
}

void IcmpProber::SendDue(int64_t now_ns) {
  ApplyAddressUpdates();
  due_scratch_.clear();
  schedule_.PopDue(now_ns, &due_scratch_);
  for (const ProbeSchedule::Due& due : due_scratch_) {
    if (due.skipped > 0) {
      counters_[due.series]->skipped_probes += due.skipped;
    }
    SendOne(due.series, due.scheduled_ns);
  }
}

void IcmpProber::SendOne(int slot_index, int64_t scheduled_ns) {
  Slot& slot = slots_[slot_index];
  const IcmpTarget& target = slot.target;
  uint64_t sequence = slot.next_sequence++;
  Sample failed;
  failed.target_index = target.target_index;
  failed.kind = ProbeKind::kIcmp;
  failed.sequence = sequence;
  failed.scheduled_ns = scheduled_ns;
  failed.result = SampleResult::kSendFailed;
  if (!target.address) {
    failed.sent_ns = failed.completed_ns = clock_.MonotonicNanos();
    failed.error = "address not resolved";
    Emit(failed);
    return;
  }
  bool v6 = target.address->is_v6();
  IcmpSocket* socket = v6 ? v6_.get() : v4_.get();
  if (socket == nullptr) {
    failed.sent_ns = failed.completed_ns = clock_.MonotonicNanos();
    failed.error = v6 ? "no ICMPv6 socket" : "no ICMP socket";
    Emit(failed);
    return;
  }
  // Wire sequence numbers count per destination address, not per target:
  // two targets on one host (or an address that DNS moved) never share an
  // (address, sequence) key while probes are pending.
  Key key{*target.address, next_wire_sequence_[*target.address]++};
  uint64_t token = next_token_++;
  std::string message =
      BuildEchoRequest(v6, socket->id(), key.sequence,
                       BuildProbePayload(nonce_, token, target.payload_bytes));
  int64_t sent_ns = clock_.MonotonicNanos();
  absl::StatusOr<uint32_t> tx_key = socket->Send(*target.address, message);
  lag_.Note(sent_ns - scheduled_ns);
  if (!tx_key.ok()) {
    failed.sent_ns = failed.completed_ns = sent_ns;
    failed.error = std::string(tx_key.status().message());
    Emit(failed);
    return;
  }
  // A leftover entry under this key (sequence wrapped) is simply replaced.
  Pending pending;
  pending.slot = slot_index;
  pending.sequence = sequence;
  pending.token = token;
  pending.scheduled_ns = scheduled_ns;
  pending.sent_ns = sent_ns;
  pending.deadline_ns = sent_ns + target.timeout_ns;
  pending_[key] = pending;
  ended_.erase(key);
  deadlines_.Push(pending.deadline_ns, key);
  tx_keys_[v6 ? 1 : 0][*tx_key] = key;
}

void IcmpProber::DrainSocket(IcmpSocket& socket) {
  while (std::optional<IcmpReceived> item = socket.Receive()) {
    switch (item->kind) {
      case IcmpReceived::Kind::kTxTimestamp: {
        auto& keys = tx_keys_[socket.ipv6() ? 1 : 0];
        auto it = keys.find(item->tx_key);
        if (it == keys.end()) break;
        auto pending = pending_.find(it->second);
        // The key must still be this send's: stamps older than the send are
        // from a reused key and are ignored.
        if (pending != pending_.end() && item->kernel_monotonic_ns &&
            *item->kernel_monotonic_ns + kStampSlackNs >=
                pending->second.sent_ns) {
          pending->second.tx_kernel_realtime_ns = item->kernel_realtime_ns;
          pending->second.tx_kernel_monotonic_ns = item->kernel_monotonic_ns;
        }
        keys.erase(it);
        break;
      }
      case IcmpReceived::Kind::kMessage:
        HandleMessage(socket, *item);
        break;
      case IcmpReceived::Kind::kError: {
        if (!item->peer) break;
        absl::StatusOr<ParsedIcmp> quoted =
            ParseIcmp(item->data, socket.ipv6(), /*ip_header_included=*/false);
        if (!quoted.ok() || !quoted->sequence) break;
        bool unreachable =
            socket.ipv6() ? item->error_type == 1 : item->error_type == 3;
        HandleError(socket, Key{*item->peer, *quoted->sequence},
                    unreachable ? SampleResult::kUnreachable
                                : SampleResult::kTtlExceeded,
                    absl::StrCat("ICMP type ", item->error_type, " code ",
                                 item->error_code));
        break;
      }
    }
  }
}

void IcmpProber::HandleMessage(IcmpSocket& socket, const IcmpReceived& item) {
  absl::StatusOr<ParsedIcmp> parsed =
      ParseIcmp(item.data, socket.ipv6(), socket.ip_header_included());
  if (!parsed.ok() || !parsed->id || !parsed->sequence) return;
  if (parsed->kind == ParsedIcmp::Kind::kUnreachable ||
      parsed->kind == ParsedIcmp::Kind::kTimeExceeded) {
    // Raw sockets see errors as messages quoting our request.
    if (*parsed->id != socket.id() || !parsed->quoted_destination) return;
    HandleError(
        socket, Key{*parsed->quoted_destination, *parsed->sequence},
        parsed->kind == ParsedIcmp::Kind::kUnreachable
            ? SampleResult::kUnreachable
            : SampleResult::kTtlExceeded,
        absl::StrCat("ICMP type ", parsed->type, " code ", parsed->code,
                     item.peer ? " from " + item.peer->ToString() : ""));
    return;
  }
  if (parsed->kind != ParsedIcmp::Kind::kEchoReply || !item.peer) return;
  if (*parsed->id != socket.id()) return;  // another process's ping
  Key key{*item.peer, *parsed->sequence};
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    auto ended = ended_.find(key);
    if (ended != ended_.end()) {
      auto& counters = *counters_[ended->second.slot];
      if (ended->second.answered) {
        ++counters.duplicate_replies;
      } else {
        ++counters.late_replies;
      }
    }
    return;
  }
  const Pending& pending = it->second;
  const IcmpTarget& target = slots_[pending.slot].target;
  if (parsed->payload !=
      BuildProbePayload(nonce_, pending.token, target.payload_bytes)) {
    ++counters_[pending.slot]->mismatched_replies;
    return;
  }
  bool kernel_tx = pending.tx_kernel_realtime_ns.has_value();
  bool kernel_rx = item.kernel_realtime_ns.has_value();
  int64_t rtt = 0;
  TimestampSource source = TimestampSource::kUserspace;
  if (kernel_tx && kernel_rx) {
    rtt = *item.kernel_realtime_ns - *pending.tx_kernel_realtime_ns;
    source = TimestampSource::kKernel;
  } else {
    int64_t tx = kernel_tx ? *pending.tx_kernel_monotonic_ns : pending.sent_ns;
    int64_t rx = kernel_rx ? *item.kernel_monotonic_ns : item.userspace_ns;
    rtt = rx - tx;
    source = kernel_tx || kernel_rx ? TimestampSource::kMixed
                                    : TimestampSource::kUserspace;
  }
  if (rtt < 0) {
    // Only a clock step between the stamps can do this; fall back.
    rtt = std::max<int64_t>(0, item.userspace_ns - pending.sent_ns);
    source = TimestampSource::kUserspace;
  }
  Complete(key, SampleResult::kOk, item.userspace_ns, rtt, source, "");
}

void IcmpProber::HandleError(IcmpSocket& /*socket*/, const Key& key,
                             SampleResult result, const std::string& detail) {
  if (pending_.find(key) == pending_.end()) return;
  Complete(key, result, clock_.MonotonicNanos(), std::nullopt,
           TimestampSource::kNone, detail);
}

void IcmpProber::Complete(const Key& key, SampleResult result,
                          int64_t completed_ns, std::optional<int64_t> rtt_ns,
                          TimestampSource source, const std::string& error) {
  auto it = pending_.find(key);
  const Pending pending = it->second;
  pending_.erase(it);
  Remember(key, pending.slot, result == SampleResult::kOk, completed_ns);
  Sample sample;
  sample.target_index = slots_[pending.slot].target.target_index;
  sample.kind = ProbeKind::kIcmp;
  sample.sequence = pending.sequence;
  sample.scheduled_ns = pending.scheduled_ns;
  sample.sent_ns = pending.sent_ns;
  sample.completed_ns = completed_ns;
  sample.result = result;
  sample.rtt_ns = rtt_ns;
  sample.timestamp_source = source;
  sample.error = error;
  Emit(sample);
}

void IcmpProber::Remember(const Key& key, int slot, bool answered,
                          int64_t now_ns) {
  int64_t forget = now_ns + RetentionNs(slots_[slot].target.timeout_ns);
  ended_[key] = Ended{slot, answered, forget};
  forget_order_.Push(forget, key);
}

void IcmpProber::ExpireTimeouts(int64_t now_ns) {
  int64_t deadline = 0;
  Key key;
  while (deadlines_.PopDue(now_ns, &deadline, &key)) {
    auto it = pending_.find(key);
    if (it == pending_.end() || it->second.deadline_ns != deadline) continue;
    Complete(key, SampleResult::kTimeout, now_ns, std::nullopt,
             TimestampSource::kNone, "no reply within timeout");
  }
  int64_t forget = 0;
  while (forget_order_.PopDue(now_ns, &forget, &key)) {
    auto it = ended_.find(key);
    if (it != ended_.end() && it->second.forget_ns == forget) ended_.erase(it);
  }
  // TX stamps that never came (no kernel stamps, or a failed send) must not
  // pile up: drop keys whose probe is gone.
  for (auto& keys : tx_keys_) {
    if (keys.size() > 2 * pending_.size() + 64) {
      absl::erase_if(keys, [this](const auto& entry) {
        return pending_.find(entry.second) == pending_.end();
      });
    }
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
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u32 = 2;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  for (uint32_t i = 0; i < 2; ++i) {
    IcmpSocket* socket = i == 0 ? v4_.get() : v6_.get();
    if (socket == nullptr || socket->fd() < 0) continue;
    event.events = EPOLLIN | EPOLLERR;
    event.data.u32 = i;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, socket->fd(), &event);
  }
  PlanSchedule(clock_.MonotonicNanos());
  stop_ = false;
  loop_ = std::thread([this] { RunLoop(); });
}

void IcmpProber::Stop() {
  if (!loop_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  loop_.join();
  close(epoll_fd_);
  close(wake_fd_);
}

void IcmpProber::RunLoop() {
  auto log = Logger("prober");
  log->info("ICMP prober: {} targets (IPv4 socket: {}, IPv6 socket: {})",
            slots_.size(),
            v4_ ? v4_->mode() + (v4_->kernel_timestamps() ? ", kernel stamps"
                                                          : ", user stamps")
                : "none",
            v6_ ? v6_->mode() + (v6_->kernel_timestamps() ? ", kernel stamps"
                                                          : ", user stamps")
                : "none");
  epoll_event events[4];
  while (!stop_) {
    int64_t now = clock_.MonotonicNanos();
    std::optional<int64_t> wake = NextWakeNs();
    timespec timeout{1, 0};
    if (wake) {
      int64_t wait = std::max<int64_t>(0, *wake - now);
      timeout = {static_cast<time_t>(wait / 1'000'000'000),
                 static_cast<long>(wait % 1'000'000'000)};
    }
    int n = epoll_pwait2(epoll_fd_, events, 4, &timeout, nullptr);
    for (int i = 0; i < n; ++i) {
      uint32_t which = events[i].data.u32;
      if (which == 0 && v4_) DrainSocket(*v4_);
      if (which == 1 && v6_) DrainSocket(*v6_);
    }
    now = clock_.MonotonicNanos();
    SendDue(now);
    ExpireTimeouts(now);
  }
}

}  // namespace latency
