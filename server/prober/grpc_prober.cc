#include "server/prober/grpc_prober.h"

#include "common/logging.h"

namespace latency {
namespace {

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "UNKNOWN";
}

SampleResult ResultOf(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return SampleResult::kOk;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return SampleResult::kTimeout;
    case grpc::StatusCode::UNAVAILABLE:
      return SampleResult::kUnreachable;
    default:
      return SampleResult::kError;
  }
}

}  // namespace

GrpcProber::GrpcProber(Clock& clock, SampleSink& sink, WireRoundTrips* wire_tap)
    : clock_(clock), sink_(sink), wire_tap_(wire_tap) {}

GrpcProber::~GrpcProber() { Stop(); }

void GrpcProber::AddTarget(const GrpcTarget& target,
                           std::unique_ptr<EchoClient> client) {
  if (wire_tap_ != nullptr && target.port != 0) {
    wire_tap_->AddServicePort(target.port);
  }
  Slot slot;
  slot.target = target;
  slot.client = std::move(client);
  slot.payload.assign(static_cast<size_t>(std::max(0, target.payload_bytes)),
                      'p');
  absl::MutexLock lock(&mu_);
  const int index = static_cast<int>(counters_.size());
  slot_of_target_[target.target_index] = index;
  counters_.push_back(std::make_unique<GrpcTargetCounters>());
  slot.counters = counters_.back().get();
  forgotten_below_.push_back(0);
  if (!planned_) {
    slots_.push_back(std::move(slot));
    return;
  }
  // Running: connect now, as Start does, while the loop picks it up.
  slot.client->Connect();
  additions_.push_back(std::move(slot));
}

void GrpcProber::RemoveTarget(int target_index) {
  absl::MutexLock lock(&mu_);
  auto it = slot_of_target_.find(target_index);
  if (it == slot_of_target_.end()) return;
  removals_.push_back(it->second);
  slot_of_target_.erase(it);
}

void GrpcProber::ReplaceClient(int target_index,
                               std::unique_ptr<EchoClient> client) {
  client->Connect();
  absl::MutexLock lock(&mu_);
  auto it = slot_of_target_.find(target_index);
  if (it == slot_of_target_.end()) return;  // removed meanwhile
  replacements_.emplace_back(it->second, std::move(client));
}

void GrpcProber::ForgetPending(int slot) {
  forgotten_below_[slot] = slots_[slot].next_sequence;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->first.slot == slot) {
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
}

void GrpcProber::ApplyChanges() {
  std::vector<Slot> additions;
  std::vector<std::pair<int, std::unique_ptr<EchoClient>>> replacements;
  std::vector<int> removals;
  std::vector<std::unique_ptr<EchoClient>> retired;
  {
    absl::MutexLock lock(&mu_);
    additions.swap(additions_);
    replacements.swap(replacements_);
    removals.swap(removals_);
    if (additions.empty() && replacements.empty() && removals.empty()) return;
    // Slots are numbered in AddTarget order, as the schedule numbers series.
    const int64_t now = clock_.MonotonicNanos();
    std::vector<int64_t> intervals;
    for (Slot& slot : additions) {
      intervals.push_back(slot.target.interval_ns);
      slots_.push_back(std::move(slot));
    }
    schedule_.AddSpread(now, intervals);
    // The old clients' calls are forgotten first, so their cancellation
    // below finds nothing pending.
    for (auto& [slot, client] : replacements) {
      if (slots_[slot].removed) continue;
      ForgetPending(slot);
      retired.push_back(std::exchange(slots_[slot].client, std::move(client)));
    }
    for (int slot : removals) {
      if (slots_[slot].removed) continue;
      ForgetPending(slot);
      awaiting_.erase(slot);  // the target is gone: so are its samples
      schedule_.Remove(slot);
      slots_[slot].removed = true;
      retired.push_back(std::move(slots_[slot].client));
    }
  }
  // Outside mu_: destroying a client cancels and waits for its callbacks,
  // which take mu_.
  retired.clear();
  replacements.clear();
}

const GrpcTargetCounters& GrpcProber::counters(int target_index) const {
  static const GrpcTargetCounters kNone;
  absl::MutexLock lock(&mu_);
  auto it = slot_of_target_.find(target_index);
  return it == slot_of_target_.end() ? kNone : *counters_[it->second];
}

void GrpcProber::PlanSchedule(int64_t start_ns) {
  {
    absl::MutexLock lock(&mu_);
    planned_ = true;
  }
  std::vector<int64_t> intervals;
  for (const Slot& slot : slots_) intervals.push_back(slot.target.interval_ns);
  schedule_.AddSpread(start_ns, intervals);
}

void GrpcProber::SendDue(int64_t now_ns) {
  due_scratch_.clear();
  schedule_.PopDue(now_ns, &due_scratch_);
  for (const ProbeSchedule::Due& due : due_scratch_) {
    if (due.skipped > 0) {
      slots_[due.series].counters->skipped_probes += due.skipped;
    }
    SendOne(due.series, due.scheduled_ns);
  }
}

grpc_connectivity_state GrpcProber::NoteChannelState(Slot& slot) {
  GrpcTargetCounters& counters = *slot.counters;
  int state = slot.client->State();
  int previous = counters.channel_state.exchange(state);
  if (state != previous) {
    ++counters.channel_state_changes;
    auto log = Logger("prober");
    auto level = state == GRPC_CHANNEL_TRANSIENT_FAILURE ? spdlog::level::warn
                                                         : spdlog::level::info;
    log->log(level, "target {} gRPC channel {} -> {}", slot.target.name,
             StateName(static_cast<grpc_connectivity_state>(previous)),
             StateName(static_cast<grpc_connectivity_state>(state)));
  }
  return static_cast<grpc_connectivity_state>(state);
}

void GrpcProber::SendOne(int slot_index, int64_t scheduled_ns) {
  Slot& slot = slots_[slot_index];
  const bool ready = NoteChannelState(slot) == GRPC_CHANNEL_READY;
  uint64_t sequence = slot.next_sequence++;
  v1::EchoRequest request;
  request.set_sequence(sequence);
  request.set_payload(slot.payload);
  int64_t sent_ns = clock_.MonotonicNanos();
  request.set_client_send_time_ns(sent_ns);
  lag_.Note(sent_ns - scheduled_ns, sent_ns);
  {
    absl::MutexLock lock(&mu_);
    Pending pending{scheduled_ns, sent_ns, sent_ns + slot.target.timeout_ns,
                    ready, slot.target.interval_ns + slot.target.timeout_ns};
    pending_[PendingKey{slot_index, sequence}] = pending;
    deadlines_.Push(pending.deadline_ns, PendingKey{slot_index, sequence});
  }
  // Outside mu_: the client may call back inline.
  // The callback carries what it needs: slots_ belongs to the loop thread.
  slot.client->Echo(
      request, absl::Nanoseconds(slot.target.timeout_ns),
      [this, slot_index, target_index = slot.target.target_index,
       counters = slot.counters,
       sequence](const grpc::Status& status, const v1::EchoResponse& response) {
        OnReply(slot_index, target_index, counters, sequence, status, response);
      });
}

void GrpcProber::OnReply(int slot_index, int target_index,
                         GrpcTargetCounters* counters, uint64_t sequence,
                         const grpc::Status& status,
                         const v1::EchoResponse& response) {
  int64_t completed_ns = clock_.MonotonicNanos();
  Pending pending;
  {
    absl::MutexLock lock(&mu_);
    if (cancelling_) return;  // our own cancellation, not a result
    auto it = pending_.find(PendingKey{slot_index, sequence});
    if (it == pending_.end()) {
      // Already timed out by the prober, or sent on a replaced client.
      if (status.ok() && sequence >= forgotten_below_[slot_index]) {
        ++counters->late_replies;
      }
      return;
    }
    pending = it->second;
    pending_.erase(it);
  }
  if (status.ok() && !pending.channel_ready) {
    ++counters->connect_replies;
    return;
  }
  Sample sample;
  sample.target_index = target_index;
  sample.kind = ProbeKind::kGrpc;
  sample.sequence = sequence;
  sample.scheduled_ns = pending.scheduled_ns;
  sample.sent_ns = pending.sent_ns;
  sample.completed_ns = completed_ns;
  sample.result = ResultOf(status);
  if (status.ok() && response.sequence() != sequence) {
    sample.result = SampleResult::kError;
    sample.error =
        "reply carries sequence " + std::to_string(response.sequence());
  } else if (status.ok()) {
    sample.rtt_ns = completed_ns - pending.sent_ns;
    // The call's start and its completion callback, both read from the
    // monotonic clock in this process.
    sample.timestamp_source = TimestampSource::kUserspace;
    int64_t agent =
        response.agent_send_time_ns() - response.agent_receive_time_ns();
    // A clockless or misbehaving agent must not produce a negative or
    // larger-than-RTT agent time.
    if (agent >= 0 && agent <= *sample.rtt_ns) sample.agent_time_ns = agent;
  } else {
    sample.error = GrpcStatusText(status);
  }
  EmitAwaiting(slot_index, status.ok() ? &response : nullptr);
  if (std::optional<int64_t> round_trip = WireRoundTrip(sample, response)) {
    absl::MutexLock lock(&mu_);
    AwaitingHold& awaiting = awaiting_[slot_index];
    awaiting.wire_round_trip_ns = *round_trip;
    // By then the next probe has had its reply, or its timeout.
    awaiting.give_up_ns = completed_ns + pending.hold_wait_ns;
    awaiting.sample = std::move(sample);
    give_ups_.Push(awaiting.give_up_ns, slot_index);
    return;
  }
  Emit(std::move(sample));
}

std::optional<int64_t> GrpcProber::WireRoundTrip(
    const Sample& sample, const v1::EchoResponse& response) {
  if (wire_tap_ == nullptr || !sample.ok() || !response.wire_stamps()) {
    return std::nullopt;
  }
  // The request's client_send_time_ns is the echo's key.
  std::optional<int64_t> round_trip =
      wire_tap_->TakeRoundTripNs(sample.sent_ns);
  // Inside the call's own time, or a clock step: not a wire round trip.
  if (!round_trip || *round_trip <= 0 || *round_trip > *sample.rtt_ns) {
    return std::nullopt;
  }
  return round_trip;
}

void GrpcProber::EmitAwaiting(int slot_index,
                              const v1::EchoResponse* response) {
  AwaitingHold awaiting;
  {
    absl::MutexLock lock(&mu_);
    auto it = awaiting_.find(slot_index);
    if (it == awaiting_.end()) return;
    awaiting = std::move(it->second);
    awaiting_.erase(it);
  }
  if (response != nullptr) {
    for (const v1::WireHold& hold : response->wire_holds()) {
      if (hold.client_send_time_ns() != awaiting.sample.sent_ns) continue;
      const int64_t network = awaiting.wire_round_trip_ns - hold.hold_ns();
      if (hold.hold_ns() >= 0 && network >= 0) {
        awaiting.sample.wire_network_rtt_ns = network;
      }
    }
  }
  Emit(std::move(awaiting.sample));
}

void GrpcProber::ExpireTimeouts(int64_t now_ns) {
  std::vector<std::pair<PendingKey, Pending>> expired;
  std::vector<int> given_up;  // slots whose awaited hold did not come
  {
    absl::MutexLock lock(&mu_);
    int64_t give_up = 0;
    int slot = 0;
    while (give_ups_.PopDue(now_ns, &give_up, &slot)) {
      // Still waiting, and for this reply (not one that came since).
      auto it = awaiting_.find(slot);
      if (it != awaiting_.end() && it->second.give_up_ns == give_up) {
        given_up.push_back(slot);
      }
    }
    int64_t deadline = 0;
    PendingKey key{0, 0};
    while (deadlines_.PopDue(now_ns, &deadline, &key)) {
      auto it = pending_.find(key);
      if (it == pending_.end()) continue;
      expired.emplace_back(key, it->second);
      pending_.erase(it);
    }
  }
  for (int slot : given_up) EmitAwaiting(slot, nullptr);
  for (const auto& [key, pending] : expired) {
    // The earlier probe's sample goes first.
    EmitAwaiting(key.slot, nullptr);
    Sample sample;
    sample.target_index = slots_[key.slot].target.target_index;
    sample.kind = ProbeKind::kGrpc;
    sample.sequence = key.sequence;
    sample.scheduled_ns = pending.scheduled_ns;
    sample.sent_ns = pending.sent_ns;
    sample.completed_ns = now_ns;
    sample.result = SampleResult::kTimeout;
    sample.error = "no reply within timeout";
    Emit(std::move(sample));
  }
}

std::optional<int64_t> GrpcProber::NextWakeNs() {
  std::optional<int64_t> next = schedule_.NextDueNs();
  absl::MutexLock lock(&mu_);
  if (!deadlines_.empty() && (!next || deadlines_.next_ns() < *next)) {
    next = deadlines_.next_ns();
  }
  return next;
}

size_t GrpcProber::pending_count() {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

void GrpcProber::Emit(Sample sample) {
  sample.scheduled_wall = clock_.WallTimeOf(sample.scheduled_ns);
  sink_.Record(sample);
}

void GrpcProber::Start() {
  if (loop_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
  }
  // Connect ahead of the first probes, which the phase spread delays by up
  // to one interval.
  for (Slot& slot : slots_) slot.client->Connect();
  PlanSchedule(clock_.MonotonicNanos());
  loop_ = std::thread([this] { RunLoop(); });
}

void GrpcProber::Stop() {
  if (loop_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    loop_.join();
  }
  {
    absl::MutexLock lock(&mu_);
    cancelling_ = true;
    awaiting_.clear();
    replacements_.clear();
    additions_.clear();
  }
  // Destroying the clients cancels in-flight calls and waits for their
  // callbacks, which still find this prober alive.
  for (Slot& slot : slots_) slot.client.reset();
}

void GrpcProber::RunLoop() {
  Logger("prober")->info("gRPC prober: {} targets", slots_.size());
  while (true) {
    ApplyChanges();
    int64_t now = clock_.MonotonicNanos();
    SendDue(now);
    ExpireTimeouts(now);
    std::optional<int64_t> wake = NextWakeNs();
    int64_t wait_ns =
        wake ? std::max<int64_t>(0, *wake - clock_.MonotonicNanos())
             : 1'000'000'000;
    absl::MutexLock lock(&mu_);
    // Wakes early only to stop or to apply changes; sends are driven by the
    // timetable.
    mu_.AwaitWithTimeout(absl::Condition(this, &GrpcProber::HasWork),
                         absl::Nanoseconds(wait_ns));
    if (stop_) return;
  }
}

}  // namespace latency
