// Drives an IcmpProber (fake clock, fake sockets) with fuzzer-chosen
// replies, ICMP errors, raw-socket error messages, TX stamps, garbage,
// duplicates, address changes and send failures, interleaved with clock
// steps, and checks the matching contract after every step:
//  - at most one Sample per probe (target, sequence); only kOk has an RTT,
//    which is never negative; failures carry an error and no RTT;
//  - scheduled <= sent <= completed; a timeout never comes before its
//    timeout; pending_count() never exceeds the probes still outstanding;
//  - once every timeout has passed, every probe sent has exactly one Sample
//    and nothing is pending.
//
// Input: a header (targets: address, interval, timeout, payload size), then
// operations until the input ends (see Op).
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/prober/icmp_packet.h"
#include "server/prober/icmp_prober.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_icmp_socket.h"
#include "tests/testing/recording_sink.h"

namespace latency {
namespace {

using ::latency::fuzz::Input;
using ::latency::testing::FakeClock;
using ::latency::testing::FakeIcmpSocket;
using ::latency::testing::RecordingSink;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kRealtimeBase = 1'800'000'000'000'000'000;
constexpr size_t kMaxOps = 4000;

const char* const kAddresses[] = {"127.0.0.1", "127.0.0.2", "10.1.2.3", "::1",
                                  "2001:db8::2"};
constexpr uint32_t kNumAddresses = sizeof(kAddresses) / sizeof(kAddresses[0]);
constexpr int64_t kIntervals[] = {10 * kMs, 100 * kMs, 250 * kMs, 1000 * kMs};
constexpr int64_t kTimeouts[] = {1 * kMs, 50 * kMs, 500 * kMs, 1000 * kMs,
                                 3000 * kMs};

enum Op : uint8_t {
  kAdvance,        // move the clock, then SendDue + ExpireTimeouts
  kReply,          // a (possibly mutated) echo reply to an earlier send
  kGarbage,        // arbitrary bytes as a received message
  kQueuedError,    // an IP_RECVERR error for an earlier send
  kErrorMessage,   // an ICMP error message quoting an earlier send
  kTxStamp,        // a kernel TX stamp, for an earlier send or any key
  kDrain,          // DrainSocket on one or both sockets
  kUpdateAddress,  // UpdateAddress (DNS change)
  kSendError,      // toggle a socket's send failure
  kDuplicate,      // queue the last queued item again
  kNumOps
};

class Harness {
 public:
  explicit Harness(Input& in) : in_(in) {
    auto v4 = std::make_unique<FakeIcmpSocket>(false);
    auto v6 = std::make_unique<FakeIcmpSocket>(true, 0x4321);
    sockets_[0] = v4.get();
    sockets_[1] = v6.get();
    prober_ = std::make_unique<IcmpProber>(clock_, sink_, std::move(v4),
                                           std::move(v6));
    int targets = 1 + in_.Below(4);
    for (int i = 0; i < targets; ++i) {
      IcmpTarget target;
      target.target_index = 10 + i;  // not the slot number
      uint32_t wanted = in_.Below(kNumAddresses + 1);
      // Targets may share an address (the same host twice, or after a
      // DNS change): each must still get a sample for every probe.
      if (wanted < kNumAddresses) {
        target.address = IpAddress::Parse(kAddresses[wanted]);
      }
      target.interval_ns = kIntervals[in_.Below(4)];
      target.timeout_ns = kTimeouts[in_.Below(5)];
      // At least kMinIcmpPayloadBytes (16), as config validation ensures:
      // the nonce and token are what tell replies apart.
      target.payload_bytes = 16 + static_cast<int>(in_.Below(64));
      timeout_of_[target.target_index] = target.timeout_ns;
      max_timeout_ns_ = std::max(max_timeout_ns_, target.timeout_ns);
      prober_->AddTarget(target);
    }
    prober_->PlanSchedule(clock_.MonotonicNanos());
  }

  void Run() {
    for (size_t ops = 0; ops < kMaxOps && !in_.empty(); ++ops) {
      RunOp(static_cast<Op>(in_.Byte() % kNumOps));
      Check();
    }
    // Let every probe end: no new sends, every deadline passed.
    for (FakeIcmpSocket* socket : sockets_) Drain(*socket);
    clock_.Advance(absl::Nanoseconds(max_timeout_ns_ + 1));
    prober_->ExpireTimeouts(clock_.MonotonicNanos());
    Check();
    FUZZ_CHECK(prober_->pending_count() == 0,
               absl::StrCat(prober_->pending_count(), " still pending"));
    FUZZ_CHECK(Outstanding() == 0,
               absl::StrCat(Outstanding(), " probes sent but never reported"));
  }

 private:
  FakeIcmpSocket& Socket(bool v6) { return *sockets_[v6 ? 1 : 0]; }

  IpAddress AddressFromInput() {
    return *IpAddress::Parse(kAddresses[in_.Below(kNumAddresses)]);
  }

  // An earlier send on `socket`, or nullptr when there is none.
  const FakeIcmpSocket::Sent* PickSent(FakeIcmpSocket& socket) {
    if (socket.sent.empty()) return nullptr;
    // Mostly recent sends: the interesting ones are still pending.
    size_t back = in_.Below(8);
    if (in_.Bool()) back = in_.Below(static_cast<uint32_t>(socket.sent.size()));
    if (back >= socket.sent.size()) back = socket.sent.size() - 1;
    return &socket.sent[socket.sent.size() - 1 - back];
  }

  // The real socket stamps userspace_ns when recvmsg returns, which is
  // after every send so far; a stamp from when the item was queued could
  // predate a later probe that a mutated reply happens to match (seen: a
  // reply "received" 3 ms before its probe was sent).
  void Drain(FakeIcmpSocket& socket) {
    for (IcmpReceived& item : socket.inbox) {
      item.userspace_ns = clock_.MonotonicNanos();
    }
    prober_->DrainSocket(socket);
  }

  void Queue(FakeIcmpSocket& socket, IcmpReceived item) {
    socket.inbox.push_back(item);
    last_queued_ = {&socket, std::move(item)};
  }

  void AddKernelStamps(IcmpReceived& item) {
    if (!in_.Bool()) return;
    int64_t skew = static_cast<int16_t>(in_.U16()) * 1000;  // +-32 ms
    item.kernel_monotonic_ns = clock_.MonotonicNanos() + skew;
    item.kernel_realtime_ns = kRealtimeBase + *item.kernel_monotonic_ns;
  }

  void RunOp(Op op) {
    bool v6 = in_.Bool();
    FakeIcmpSocket& socket = Socket(v6);
    switch (op) {
      case kAdvance: {
        clock_.Advance(absl::Milliseconds(in_.Byte()) * (in_.Bool() ? 20 : 1));
        int64_t now = clock_.MonotonicNanos();
        prober_->SendDue(now);
        prober_->ExpireTimeouts(now);
        break;
      }
      case kReply: {
        const FakeIcmpSocket::Sent* sent = PickSent(socket);
        if (sent == nullptr) break;
        IcmpReceived reply;
        reply.peer = sent->to;
        reply.data = sent->message;
        reply.data[0] = static_cast<char>(v6 ? 129 : 0);
        uint8_t mutate = in_.Byte();
        if (mutate & 0x01 && reply.data.size() > 8) {
          reply.data[8 +
                     in_.Below(static_cast<uint32_t>(reply.data.size() - 8))] ^=
              static_cast<char>(1 + in_.Below(255));
        }
        if (mutate & 0x02) reply.peer = AddressFromInput();
        if (mutate & 0x04) reply.peer.reset();
        if (mutate & 0x08) {
          uint16_t id = in_.U16();
          reply.data[4] = static_cast<char>(id >> 8);
          reply.data[5] = static_cast<char>(id);
        }
        if (mutate & 0x10) reply.data[0] = static_cast<char>(in_.Byte());
        if (mutate & 0x20) reply.data.resize(in_.Below(40));
        AddKernelStamps(reply);
        Queue(socket, std::move(reply));
        break;
      }
      case kGarbage: {
        IcmpReceived item;
        if (in_.Bool()) item.peer = AddressFromInput();
        item.data = std::string(in_.Bytes(96));
        AddKernelStamps(item);
        Queue(socket, std::move(item));
        break;
      }
      case kQueuedError: {
        const FakeIcmpSocket::Sent* sent = PickSent(socket);
        IcmpReceived error;
        error.kind = IcmpReceived::Kind::kError;
        if (sent != nullptr) {
          error.peer = sent->to;
          error.data = sent->message.substr(0, 8 + in_.Below(32));
        }
        if (in_.Bool()) error.peer = AddressFromInput();
        if (in_.Bool()) error.peer.reset();
        error.error_type = in_.Bool() ? in_.Byte() : (v6 ? 1 : 3);
        error.error_code = in_.Byte();
        Queue(socket, std::move(error));
        break;
      }
      case kErrorMessage: {
        const FakeIcmpSocket::Sent* sent = PickSent(socket);
        if (sent == nullptr) break;
        // ICMP error header, then the quoted IP header and our request.
        std::string data(8, '\0');
        data[0] = static_cast<char>(in_.Bool() ? (v6 ? 1 : 3) : (v6 ? 3 : 11));
        data[1] = static_cast<char>(in_.Byte());
        std::string ip(v6 ? 40 : 20, '\0');
        ip[0] = static_cast<char>(v6 ? 0x60 : 0x45);
        IpAddress destination = in_.Bool() ? AddressFromInput() : sent->to;
        sockaddr_storage storage{};
        destination.ToSockaddr(0, &storage);
        if (v6 && destination.is_v6()) {
          ip.replace(24, 16,
                     reinterpret_cast<const char*>(
                         &reinterpret_cast<sockaddr_in6*>(&storage)->sin6_addr),
                     16);
        } else if (!v6 && !destination.is_v6()) {
          ip.replace(16, 4,
                     reinterpret_cast<const char*>(
                         &reinterpret_cast<sockaddr_in*>(&storage)->sin_addr),
                     4);
        }
        data += ip;
        data += sent->message.substr(0, 8 + in_.Below(24));
        IcmpReceived item;
        item.peer = AddressFromInput();
        item.data = std::move(data);
        Queue(socket, std::move(item));
        break;
      }
      case kTxStamp: {
        const FakeIcmpSocket::Sent* sent = PickSent(socket);
        IcmpReceived stamp;
        stamp.kind = IcmpReceived::Kind::kTxTimestamp;
        // Named as the kernel names it: by the looped-back packet of an
        // earlier send, or by that send's stamp ID; or garbage, or an ID
        // that names nothing (or a record that moved on).
        switch (in_.Below(4)) {
          case 0:
            if (sent != nullptr) {
              stamp.data = socket.LoopedPacket(
                  static_cast<size_t>(sent - socket.sent.data()));
            }
            break;
          case 1:
            if (sent != nullptr) stamp.stamp_id = sent->stamp_id;
            break;
          case 2:
            stamp.stamp_id = in_.Bool() ? in_.Below(64) : in_.U32();
            break;
          default:
            stamp.data = std::string(in_.Bytes(96));
        }
        if (in_.Byte() != 0) {
          int64_t at = clock_.MonotonicNanos() -
                       static_cast<int64_t>(in_.U16()) * 10'000;  // <= 655 ms
          stamp.kernel_monotonic_ns = at;
          stamp.kernel_realtime_ns = kRealtimeBase + at;
        }
        Queue(socket, std::move(stamp));
        break;
      }
      case kDrain:
        if (in_.Bool()) {
          Drain(*sockets_[0]);
          Drain(*sockets_[1]);
        } else {
          Drain(socket);
        }
        break;
      case kUpdateAddress: {
        int slot = static_cast<int>(in_.Below(4));
        prober_->UpdateAddress(
            10 + slot, *IpAddress::Parse(kAddresses[in_.Below(kNumAddresses)]));
        break;
      }
      case kSendError:
        socket.send_error = socket.send_error.ok()
                                ? absl::UnavailableError("fuzz: send failed")
                                : absl::OkStatus();
        break;
      case kDuplicate:
        if (last_queued_.first != nullptr) {
          last_queued_.first->inbox.push_back(last_queued_.second);
        }
        break;
      case kNumOps:
        break;
    }
  }

  // Probes sent but not yet reported.
  int64_t Outstanding() const {
    return static_cast<int64_t>(sockets_[0]->sent.size() +
                                sockets_[1]->sent.size()) -
           reported_after_send_;
  }

  void Check() {
    std::vector<Sample> samples = sink_.samples();
    for (; checked_ < samples.size(); ++checked_) {
      const Sample& s = samples[checked_];
      std::string what =
          absl::StrCat("target ", s.target_index, " seq ", s.sequence, " ",
                       SampleResultName(s.result), " err '", s.error, "'");
      auto timeout = timeout_of_.find(s.target_index);
      FUZZ_CHECK(timeout != timeout_of_.end(), what);
      FUZZ_CHECK(seen_.insert({s.target_index, s.sequence}).second,
                 "second sample for one probe: " + what);
      FUZZ_CHECK(s.kind == ProbeKind::kIcmp, what);
      FUZZ_CHECK(s.ok() == s.rtt_ns.has_value(), what);
      FUZZ_CHECK(!s.rtt_ns || *s.rtt_ns >= 0, what);
      FUZZ_CHECK(s.ok() == s.error.empty(), what);
      FUZZ_CHECK(s.ok() == (s.timestamp_source != TimestampSource::kNone),
                 what);
      FUZZ_CHECK(!s.agent_time_ns, what);
      FUZZ_CHECK(s.scheduled_ns <= s.sent_ns && s.sent_ns <= s.completed_ns,
                 absl::StrCat(what, " times ", s.scheduled_ns, " ", s.sent_ns,
                              " ", s.completed_ns));
      if (s.result == SampleResult::kTimeout) {
        FUZZ_CHECK(s.completed_ns - s.sent_ns >= timeout->second,
                   "early timeout: " + what);
      }
      if (s.result != SampleResult::kSendFailed) ++reported_after_send_;
    }
    FUZZ_CHECK(static_cast<int64_t>(prober_->pending_count()) <= Outstanding(),
               absl::StrCat(prober_->pending_count(), " pending, ",
                            Outstanding(), " outstanding"));
    FUZZ_CHECK(Outstanding() >= 0, "more samples than sends");
  }

  Input& in_;
  FakeClock clock_;
  RecordingSink sink_;
  FakeIcmpSocket* sockets_[2] = {nullptr, nullptr};
  std::unique_ptr<IcmpProber> prober_;
  std::map<int, int64_t> timeout_of_;
  int64_t max_timeout_ns_ = 0;
  std::pair<FakeIcmpSocket*, IcmpReceived> last_queued_{nullptr, {}};
  size_t checked_ = 0;
  int64_t reported_after_send_ = 0;
  std::set<std::pair<int, uint64_t>> seen_;
};

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latency::fuzz::Input in(data, size);
  latency::Harness harness(in);
  harness.Run();
  return 0;
}
