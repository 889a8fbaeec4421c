#include "server/prober/icmp_prober.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/prober/icmp_packet.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_icmp_socket.h"
#include "tests/testing/recording_sink.h"

namespace latency {
namespace {

using ::latency::testing::FakeClock;
using ::latency::testing::FakeIcmpSocket;
using ::latency::testing::RecordingSink;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kUs = 1'000;
// Arbitrary realtime epoch for kernel stamps.
constexpr int64_t kRealtimeBase = 1'800'000'000'000'000'000;

class IcmpProberTest : public ::testing::Test {
 protected:
  IcmpProberTest() {
    auto v4 = std::make_unique<FakeIcmpSocket>(false);
    auto v6 = std::make_unique<FakeIcmpSocket>(true);
    v4_ = v4.get();
    v6_ = v6.get();
    prober_ = std::make_unique<IcmpProber>(clock_, sink_, std::move(v4),
                                           std::move(v6));
  }

  void AddTarget(int index, const std::string& address,
                 int64_t interval_ns = 1000 * kMs,
                 int64_t timeout_ns = 500 * kMs) {
    IcmpTarget target;
    target.target_index = index;
    target.address = IpAddress::Parse(address);
    target.interval_ns = interval_ns;
    target.timeout_ns = timeout_ns;
    prober_->AddTarget(target);
  }

  // Runs one loop step at the current fake time.
  void Step() {
    prober_->DrainSocket(*v4_);
    prober_->DrainSocket(*v6_);
    prober_->SendDue(clock_.MonotonicNanos());
    prober_->ExpireTimeouts(clock_.MonotonicNanos());
  }

  // The reply a well-behaved host sends to sent[i]. Kernel stamps here read
  // CLOCK_REALTIME as kRealtimeBase + monotonic (no clock step).
  IcmpReceived ReplyTo(const FakeIcmpSocket& socket, size_t i,
                       std::optional<int64_t> kernel_rx_monotonic = {}) {
    const FakeIcmpSocket::Sent& sent = socket.sent.at(i);
    IcmpReceived reply;
    reply.kind = IcmpReceived::Kind::kMessage;
    reply.peer = sent.to;
    reply.data = sent.message;
    reply.data[0] = static_cast<char>(socket.ipv6() ? 129 : 0);
    reply.userspace_ns = clock_.MonotonicNanos();
    if (kernel_rx_monotonic) {
      reply.kernel_realtime_ns = kRealtimeBase + *kernel_rx_monotonic;
      reply.kernel_monotonic_ns = kernel_rx_monotonic;
    }
    return reply;
  }

  IcmpReceived TxStampFor(const FakeIcmpSocket& socket, size_t i,
                          int64_t monotonic_ns) {
    return socket.TxStamp(i, kRealtimeBase + monotonic_ns, monotonic_ns);
  }

  // An ICMP error for sent[i] as a datagram socket's error queue gives it.
  IcmpReceived QueuedError(const FakeIcmpSocket& socket, size_t i, uint8_t type,
                           uint8_t code) {
    IcmpReceived error;
    error.kind = IcmpReceived::Kind::kError;
    error.peer = socket.sent.at(i).to;
    error.data = socket.sent.at(i).message;
    error.error_type = type;
    error.error_code = code;
    error.userspace_ns = clock_.MonotonicNanos();
    return error;
  }

  // The same error as a raw IPv4 socket reads it: an ICMP message from a
  // router quoting sent[i]'s IPv4 header and first 8 bytes.
  IcmpReceived RawError(const FakeIcmpSocket& socket, size_t i, uint8_t type,
                        uint8_t code) {
    std::string quote(20, '\0');
    quote[0] = 0x45;
    sockaddr_storage to;
    socket.sent.at(i).to.ToSockaddr(0, &to);
    memcpy(&quote[16], &reinterpret_cast<sockaddr_in*>(&to)->sin_addr, 4);
    quote += socket.sent.at(i).message.substr(0, 8);
    IcmpReceived message;
    message.kind = IcmpReceived::Kind::kMessage;
    message.peer = IpAddress::Parse("198.51.100.1");
    message.data = std::string(8, '\0') + quote;
    message.data[0] = static_cast<char>(type);
    message.data[1] = static_cast<char>(code);
    message.userspace_ns = clock_.MonotonicNanos();
    return message;
  }

  FakeClock clock_;
  RecordingSink sink_;
  FakeIcmpSocket* v4_;
  FakeIcmpSocket* v6_;
  std::unique_ptr<IcmpProber> prober_;
  size_t answered_ = 0;
};

TEST_F(IcmpProberTest, KernelStampsGiveTheRtt) {
  AddTarget(0, "192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(1));
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 5 * kUs));
  clock_.Advance(absl::Microseconds(300));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, sent_at + 215 * kUs));
  Step();

  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].result, SampleResult::kOk);
  EXPECT_THAT(samples[0].rtt_ns, Optional(210 * kUs));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kKernel);
  EXPECT_EQ(samples[0].kind, ProbeKind::kIcmp);
  EXPECT_EQ(samples[0].sequence, 0u);
  EXPECT_EQ(prober_->pending_count(), 0u);
}

TEST_F(IcmpProberTest, UserspaceStampsWhenTheKernelGivesNone) {
  AddTarget(0, "::1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_THAT(v6_->sent, SizeIs(1));
  EXPECT_EQ(static_cast<uint8_t>(v6_->sent[0].message[0]), 128);
  clock_.Advance(absl::Microseconds(450));
  v6_->inbox.push_back(ReplyTo(*v6_, 0));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_THAT(samples[0].rtt_ns, Optional(450 * kUs));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kUserspace);
}

TEST_F(IcmpProberTest, OneKernelStampIsMixed) {
  AddTarget(0, "192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 20 * kUs));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));  // no RX stamp
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_THAT(samples[0].rtt_ns, Optional(80 * kUs));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kMixed);
}

// TX stamps as kernels name them: with the packet as it left, or (Linux
// 6.13+, GetParam()) by the ID the prober gave the send, without the
// packet.
class IcmpProberStampModeTest : public IcmpProberTest,
                                public ::testing::WithParamInterface<bool> {
 protected:
  IcmpProberStampModeTest() { v4_->by_id = v6_->by_id = GetParam(); }
};
std::string StampModeName(const ::testing::TestParamInfo<bool>& mode) {
  return mode.param ? "ById" : "WithThePacket";
}
INSTANTIATE_TEST_SUITE_P(PacketOrId, IcmpProberStampModeTest, ::testing::Bool(),
                         StampModeName);

TEST_P(IcmpProberStampModeTest, StampsInAnyOrderGiveTheRtt) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "2001:db8::1");
  AddTarget(2, "192.0.2.2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(700));  // all three due in one step
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  ASSERT_THAT(v6_->sent, SizeIs(1));
  std::set<uint32_t> ids = {v4_->sent[0].stamp_id, v4_->sent[1].stamp_id,
                            v6_->sent[0].stamp_id};
  EXPECT_THAT(ids, SizeIs(3));
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 9 * kUs));
  v6_->inbox.push_back(TxStampFor(*v6_, 0, sent_at + 7 * kUs));
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 5 * kUs));
  EXPECT_EQ(v4_->inbox.front().stamp_id.has_value(), GetParam());
  clock_.Advance(absl::Microseconds(400));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, sent_at + 205 * kUs));
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 309 * kUs));
  v6_->inbox.push_back(ReplyTo(*v6_, 0, sent_at + 107 * kUs));
  Step();

  std::map<int, int64_t> rtt_of_target;
  for (const Sample& sample : sink_.samples()) {
    EXPECT_EQ(sample.timestamp_source, TimestampSource::kKernel);
    rtt_of_target[sample.target_index] = sample.rtt_ns.value_or(-1);
  }
  EXPECT_THAT(rtt_of_target,
              ::testing::ElementsAre(::testing::Pair(0, 200 * kUs),
                                     ::testing::Pair(1, 100 * kUs),
                                     ::testing::Pair(2, 300 * kUs)));
  EXPECT_EQ(prober_->pending_count(), 0u);
}

// A send the firewall rejects would have used up a key of the kernel's own
// count of sends (OPT_ID without a per-send ID): the stamps of the probes
// sent after it must still land on their own probes.
TEST_P(IcmpProberStampModeTest, RejectedSendDoesNotShiftKernelStamps) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "192.0.2.2");
  AddTarget(2, "192.0.2.3");
  v4_->rejected.insert("192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(700));  // all three due in one batch
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  ASSERT_EQ(v4_->sent[0].to.ToString(), "192.0.2.2");
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at));
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 10 * kUs));
  clock_.Advance(absl::Microseconds(400));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, sent_at + 200 * kUs));
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 300 * kUs));
  Step();

  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(3));
  EXPECT_EQ(samples[0].target_index, 0);
  EXPECT_EQ(samples[0].result, SampleResult::kSendFailed);
  EXPECT_EQ(samples[1].target_index, 1);
  EXPECT_THAT(samples[1].rtt_ns, Optional(200 * kUs));
  EXPECT_EQ(samples[1].timestamp_source, TimestampSource::kKernel);
  EXPECT_EQ(samples[2].target_index, 2);
  EXPECT_THAT(samples[2].rtt_ns, Optional(290 * kUs));
  EXPECT_EQ(samples[2].timestamp_source, TimestampSource::kKernel);
}

// A removed target's open probe ends unreported, and its record may be
// given to the very next probe; a stamp for the removed probe, read after
// that, must not become the new probe's send time (sent within the stamps'
// 100 us slack of each other, only the record's generation tells them
// apart in ID mode, and only the key in packet mode).
TEST_P(IcmpProberStampModeTest, AStampOfARemovedTargetsProbeIsNotTheNextOnes) {
  AddTarget(0, "192.0.2.1", /*interval_ns=*/100 * kUs);
  AddTarget(1, "192.0.2.2", /*interval_ns=*/100 * kUs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();  // target 0's probe
  ASSERT_THAT(v4_->sent, SizeIs(1));
  int64_t removed_sent_at = clock_.MonotonicNanos();
  prober_->RemoveTarget(0);
  clock_.Advance(absl::Microseconds(50));
  Step();  // target 1's probe, in the record target 0's probe had
  ASSERT_THAT(v4_->sent, SizeIs(2));
  ASSERT_EQ(v4_->sent[1].to.ToString(), "192.0.2.2");
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, removed_sent_at + 2 * kUs));
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 5 * kUs));
  clock_.Advance(absl::Microseconds(30));
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 25 * kUs));
  prober_->DrainSocket(*v4_);

  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].target_index, 1);
  EXPECT_THAT(samples[0].rtt_ns, Optional(20 * kUs));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kKernel);
}

// Sockets whose kernel takes a TX stamp ID with each send.
class IcmpProberStampsByIdTest : public IcmpProberTest {
 protected:
  IcmpProberStampsByIdTest() { v4_->by_id = v6_->by_id = true; }
};

// A stamp whose ID names no pending probe (one never given, one of the
// other socket's family) or whose time is before its probe was sent changes
// nothing: the reply then has only its receive stamp from the kernel.
TEST_F(IcmpProberStampsByIdTest, StampsThatNameNoPendingProbeAreIgnored) {
  AddTarget(0, "192.0.2.1", /*interval_ns=*/100 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();  // probe 0
  int64_t first_sent = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, first_sent + 5 * kUs));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, first_sent + 95 * kUs));
  Step();
  ASSERT_THAT(sink_.samples(), SizeIs(1));

  clock_.Advance(absl::Milliseconds(100));
  Step();  // probe 1, in a new record: probe 0 is remembered as ended
  ASSERT_THAT(v4_->sent, SizeIs(2));
  ASSERT_NE(v4_->sent[1].stamp_id, v4_->sent[0].stamp_id);
  int64_t sent_at = clock_.MonotonicNanos();
  IcmpReceived unknown = TxStampFor(*v4_, 1, sent_at + 5 * kUs);
  unknown.stamp_id = 1'000'000;
  v4_->inbox.push_back(unknown);
  // Probe 1's own ID, but stamped before it was sent.
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at - kMs));
  // Probe 1's ID and time, but from the other family's socket.
  v6_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 5 * kUs));
  prober_->DrainSocket(*v6_);
  clock_.Advance(absl::Microseconds(300));
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 250 * kUs));
  Step();

  ASSERT_THAT(sink_.samples(), SizeIs(2));
  Sample second = sink_.samples().back();
  EXPECT_EQ(second.sequence, 1u);
  // From the send's userspace reading to the reply's kernel stamp.
  EXPECT_THAT(second.rtt_ns, Optional(250 * kUs));
  EXPECT_EQ(second.timestamp_source, TimestampSource::kMixed);
}

TEST_F(IcmpProberTest, TimeoutThenLateReplyIsCountedNotSampled) {
  AddTarget(0, "192.0.2.1", 1000 * kMs, 500 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  clock_.Advance(absl::Milliseconds(499));
  Step();
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  clock_.Advance(absl::Milliseconds(1));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].result, SampleResult::kTimeout);
  EXPECT_FALSE(samples[0].rtt_ns.has_value());

  clock_.Advance(absl::Milliseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  EXPECT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(prober_->counters(0).late_replies, 1u);
}

TEST_F(IcmpProberTest, DuplicateReplyIsCounted) {
  AddTarget(0, "192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  EXPECT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(prober_->counters(0).duplicate_replies, 1u);
  EXPECT_EQ(prober_->counters(0).late_replies, 0u);
}

TEST_F(IcmpProberTest, WrongPayloadOrIdOrSourceDoesNotMatch) {
  AddTarget(0, "192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  IcmpReceived corrupted = ReplyTo(*v4_, 0);
  corrupted.data.back() ^= 0x55;
  IcmpReceived other_id = ReplyTo(*v4_, 0);
  other_id.data[4] ^= 0x01;
  IcmpReceived other_host = ReplyTo(*v4_, 0);
  other_host.peer = IpAddress::Parse("192.0.2.99");
  v4_->inbox = {corrupted, other_id, other_host};
  Step();
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  EXPECT_EQ(prober_->counters(0).mismatched_replies, 1u);
  EXPECT_EQ(prober_->pending_count(), 1u);
  // The real reply still matches afterwards.
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kOk);
}

TEST_F(IcmpProberTest, QueuedIcmpErrorsBecomeUnreachableAndTtlExceeded) {
  AddTarget(0, "192.0.2.1", 1000 * kMs);
  AddTarget(1, "192.0.2.2", 1000 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(600));  // both due
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  IcmpReceived unreachable;
  unreachable.kind = IcmpReceived::Kind::kError;
  unreachable.peer = v4_->sent[0].to;
  unreachable.data = v4_->sent[0].message;
  unreachable.error_type = 3;
  unreachable.error_code = 1;
  IcmpReceived ttl = unreachable;
  ttl.peer = v4_->sent[1].to;
  ttl.data = v4_->sent[1].message;
  ttl.error_type = 11;
  ttl.error_code = 0;
  v4_->inbox = {unreachable, ttl};
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].result, SampleResult::kUnreachable);
  EXPECT_EQ(samples[0].error, "ICMP type 3 code 1 (host unreachable)");
  EXPECT_EQ(samples[1].result, SampleResult::kTtlExceeded);
  EXPECT_EQ(samples[1].error, "ICMP type 11 code 0 (TTL exceeded in transit)");
}

// Redirects and source quench say the packet still went on: the reply can
// come, so the probe goes on (before, a queued one read as ttl_exceeded).
TEST_F(IcmpProberTest, RedirectAndSourceQuenchDoNotEndTheProbe) {
  AddTarget(0, "192.0.2.1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(1));
  v4_->inbox = {QueuedError(*v4_, 0, 5, 1), QueuedError(*v4_, 0, 4, 0),
                RawError(*v4_, 0, 5, 1), RawError(*v4_, 0, 4, 0)};
  Step();
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  EXPECT_EQ(prober_->pending_count(), 1u);
  clock_.Advance(absl::Microseconds(700));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kOk);
}

// Every error type is mapped explicitly, the same whether a datagram
// socket's error queue or a raw socket's message reported it.
TEST_F(IcmpProberTest, IcmpErrorsMapTheSameForRawAndDatagramSockets) {
  struct Case {
    uint8_t type, code;
    SampleResult result;
    std::string text;
  };
  const Case cases[] = {
      {3, 13, SampleResult::kUnreachable,
       "ICMP type 3 code 13 (communication administratively prohibited)"},
      {3, 4, SampleResult::kError,
       "ICMP type 3 code 4 (fragmentation needed: packet too big)"},
      {11, 1, SampleResult::kTtlExceeded,
       "ICMP type 11 code 1 (fragment reassembly time exceeded)"},
      {12, 0, SampleResult::kError, "ICMP type 12 code 0 (parameter problem)"},
  };
  for (int k = 0; k < static_cast<int>(2 * std::size(cases)); ++k) {
    AddTarget(k, "192.0.2." + std::to_string(k + 1));
  }
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(999));  // every target due
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2 * std::size(cases)));
  size_t i = 0;
  for (const Case& c : cases) {
    v4_->inbox.push_back(QueuedError(*v4_, i++, c.type, c.code));
    v4_->inbox.push_back(RawError(*v4_, i++, c.type, c.code));
  }
  Step();
  // By target: the datagram errors (error queue) are read before the raw
  // ones (receive queue).
  auto samples = sink_.samples();
  std::sort(samples.begin(), samples.end(),
            [](const Sample& a, const Sample& b) {
              return a.target_index < b.target_index;
            });
  ASSERT_THAT(samples, SizeIs(2 * std::size(cases)));
  for (size_t k = 0; k < samples.size(); ++k) {
    const Case& c = cases[k / 2];
    EXPECT_EQ(samples[k].result, c.result) << c.text;
    EXPECT_EQ(samples[k].error,
              k % 2 == 0 ? c.text : c.text + " from 198.51.100.1");
  }
}

// Probes due together leave in one batch (one sendmmsg) when the kernel
// stamps each send; without kernel stamps each leaves alone, right after
// its userspace send time is read.
TEST_F(IcmpProberTest, DueProbesLeaveInOneBatchWhenTheKernelStamps) {
  for (int k = 0; k < 5; ++k) AddTarget(k, "192.0.2." + std::to_string(k + 1));
  AddTarget(5, "2001:db8::1");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(999));  // every target due
  Step();
  EXPECT_THAT(v4_->sent, SizeIs(5));
  EXPECT_EQ(v4_->batch_sizes, std::vector<size_t>({5}));
  EXPECT_EQ(v6_->batch_sizes, std::vector<size_t>({1}));

  v4_->stamps = false;
  v4_->batch_sizes.clear();
  clock_.Advance(absl::Seconds(1));
  Step();
  EXPECT_THAT(v4_->sent, SizeIs(10));
  EXPECT_EQ(v4_->batch_sizes, std::vector<size_t>({1, 1, 1, 1, 1}));
}

// The loop may gather wakes (read replies late) only while replies carry
// kernel RX stamps. They do not until the kernel has switched its receive
// stamping on, which it does a moment after the first socket in the machine
// asks for it: a reply read then has only its userspace time, and a gathered
// wake would have added up to the gap to its RTT (a 4 ms first sample on
// loopback). Targets that never answer still have their wakes gathered
// once that moment is surely past.
TEST_F(IcmpProberTest, WakesAreGatheredOnlyWhileRepliesCarryKernelStamps) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "192.0.2.2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  EXPECT_EQ(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0)
      << "at start, before any reply";

  clock_.Advance(absl::Milliseconds(999));  // both due
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 5 * kUs));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));  // no RX stamp yet
  Step();
  EXPECT_EQ(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0)
      << "after an unstamped reply";

  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 6 * kUs));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 150 * kUs));
  Step();
  EXPECT_GT(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0)
      << "after a stamped reply";

  v4_->stamps = false;  // a socket that never stamps: no gathering at all
  EXPECT_EQ(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0)
      << "without kernel stamps";
  ASSERT_THAT(sink_.samples(), SizeIs(2));
}

TEST_F(IcmpProberTest, WakesForTargetsThatNeverAnswerAreGatheredAfterStart) {
  for (int k = 0; k < 3; ++k) AddTarget(k, "192.0.2." + std::to_string(k + 1));
  prober_->PlanSchedule(clock_.MonotonicNanos());
  EXPECT_EQ(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0);
  for (int i = 0; i < 30; ++i) {
    clock_.Advance(absl::Milliseconds(100));
    Step();
  }
  EXPECT_GE(v4_->sent.size(), 9u);  // three seconds of unanswered probes
  EXPECT_GT(prober_->MinWakeGapNs(clock_.MonotonicNanos()), 0);
}

// The error queue (TX stamps, ICMP errors) is read when the poller says it
// holds something (EPOLLERR), not before every read; a reply whose TX stamp
// was queued after the poller looked still gets it (the queue is read then).
TEST_F(IcmpProberTest, ErrorQueueIsReadOnEpollErrOrForAMissingStamp) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "192.0.2.2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(999));
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  int64_t sent_at = clock_.MonotonicNanos();
  // Probe 0's stamp arrives with EPOLLERR and is read.
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 5 * kUs));
  prober_->DrainSocket(*v4_, /*error_queue_pending=*/true);
  EXPECT_TRUE(v4_->inbox.empty());

  // Its reply alone (EPOLLIN): one read of the receive queue, none of the
  // error queue, where probe 1's stamp now waits untouched.
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 6 * kUs));
  clock_.Advance(absl::Microseconds(300));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, sent_at + 205 * kUs));
  v4_->receive_calls = 0;
  prober_->DrainSocket(*v4_, /*error_queue_pending=*/false);
  EXPECT_EQ(v4_->receive_calls, 1);
  ASSERT_THAT(v4_->inbox, SizeIs(1));
  EXPECT_EQ(v4_->inbox.front().kind, IcmpReceived::Kind::kTxTimestamp);

  // Probe 1's reply without EPOLLERR: its stamp is read on demand.
  v4_->inbox.push_back(ReplyTo(*v4_, 1, sent_at + 256 * kUs));
  prober_->DrainSocket(*v4_, /*error_queue_pending=*/false);
  EXPECT_TRUE(v4_->inbox.empty());

  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kKernel);
  EXPECT_THAT(samples[0].rtt_ns, Optional(200 * kUs));
  EXPECT_EQ(samples[1].timestamp_source, TimestampSource::kKernel);
  EXPECT_THAT(samples[1].rtt_ns, Optional(250 * kUs));
}

TEST_F(IcmpProberTest, Icmp6ErrorsNameTypeAndCode) {
  AddTarget(0, "2001:db8::1");
  AddTarget(1, "2001:db8::2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(600));
  Step();
  ASSERT_THAT(v6_->sent, SizeIs(2));
  v6_->inbox = {QueuedError(*v6_, 0, 2, 0), QueuedError(*v6_, 1, 1, 4)};
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].result, SampleResult::kError);
  EXPECT_EQ(samples[0].error, "ICMPv6 type 2 code 0 (packet too big)");
  EXPECT_EQ(samples[1].result, SampleResult::kUnreachable);
  EXPECT_EQ(samples[1].error, "ICMPv6 type 1 code 4 (port unreachable)");
}

// The loop drains sockets before it expires probes: a reply it reads after
// the deadline is late, never ok.
TEST_F(IcmpProberTest, ReplyReadAfterTheDeadlineIsLate) {
  AddTarget(0, "192.0.2.1", 1000 * kMs, 500 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  int64_t sent_at = clock_.MonotonicNanos();
  clock_.Advance(absl::Milliseconds(600));  // the loop lagged
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].result, SampleResult::kTimeout);
  EXPECT_FALSE(samples[0].rtt_ns.has_value());
  EXPECT_EQ(samples[0].completed_ns, sent_at + 500 * kMs);
  EXPECT_EQ(prober_->counters(0).late_replies, 1u);
}

// What counts is when the reply arrived: the kernel's receive stamp, when
// there is one, not when the lagging loop read it.
TEST_F(IcmpProberTest, ReplyStampedBeforeTheDeadlineButReadAfterIsOk) {
  AddTarget(0, "192.0.2.1", 1000 * kMs, 500 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  int64_t sent_at = clock_.MonotonicNanos();
  clock_.Advance(absl::Milliseconds(600));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, sent_at + 400 * kMs));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].result, SampleResult::kOk);
  EXPECT_THAT(samples[0].rtt_ns, Optional(400 * kMs));
  EXPECT_EQ(prober_->counters(0).late_replies, 0u);
}

// Kernel stamps are wall-clock: a step between send and receive (NTP, VM
// resume) must not become RTT. The monotonic userspace RTT replaces it.
TEST_F(IcmpProberTest, WallClockStepBetweenKernelStampsFallsBack) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "192.0.2.2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(600));
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  int64_t sent_at = clock_.MonotonicNanos();
  v4_->inbox.push_back(TxStampFor(*v4_, 0, sent_at + 5 * kUs));
  v4_->inbox.push_back(TxStampFor(*v4_, 1, sent_at + 5 * kUs));
  clock_.Advance(absl::Microseconds(300));
  IcmpReceived forward = ReplyTo(*v4_, 0, sent_at + 215 * kUs);
  *forward.kernel_realtime_ns += 2'000 * kMs;  // stepped 2 s forward
  IcmpReceived backward = ReplyTo(*v4_, 1, sent_at + 215 * kUs);
  *backward.kernel_realtime_ns -= 150 * kUs;  // stepped 150 us back
  v4_->inbox.push_back(forward);
  v4_->inbox.push_back(backward);
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  for (const Sample& sample : samples) {
    EXPECT_EQ(sample.result, SampleResult::kOk);
    EXPECT_THAT(sample.rtt_ns, Optional(300 * kUs));
    EXPECT_EQ(sample.timestamp_source, TimestampSource::kUserspace);
  }
}

TEST_F(IcmpProberTest, RawSocketErrorMessagesQuoteTheRequest) {
  AddTarget(0, "192.0.2.7");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  Step();
  // A router's "host unreachable": ICMP header + quoted IPv4 header + our
  // echo request's first 8 bytes.
  std::string quote(20, '\0');
  quote[0] = 0x45;
  quote[16] = static_cast<char>(192);
  quote[17] = 0;
  quote[18] = 2;
  quote[19] = 7;
  quote += v4_->sent[0].message.substr(0, 8);
  IcmpReceived message;
  message.kind = IcmpReceived::Kind::kMessage;
  message.peer = IpAddress::Parse("198.51.100.1");
  message.data = std::string("\x03\x01\0\0\0\0\0\0", 8) + quote;
  v4_->inbox.push_back(message);
  Step();
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kUnreachable);
  EXPECT_EQ(sink_.samples()[0].error,
            "ICMP type 3 code 1 (host unreachable) from 198.51.100.1");
}

TEST_F(IcmpProberTest, LossAccountingOverManyProbes) {
  AddTarget(0, "192.0.2.1", 100 * kMs, 50 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  for (int i = 0; i < 20; ++i) {
    Step();  // sends probe i
    clock_.Advance(absl::Milliseconds(1));
    if (i % 4 != 3) v4_->inbox.push_back(ReplyTo(*v4_, i));
    Step();
    clock_.Advance(absl::Milliseconds(99));
  }
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(20));
  int ok = 0, timeouts = 0;
  for (const Sample& s : samples) {
    (s.result == SampleResult::kOk ? ok : timeouts)++;
  }
  EXPECT_EQ(ok, 15);
  EXPECT_EQ(timeouts, 5);
}

TEST_F(IcmpProberTest, SendFailuresAndUnresolvedTargetsAreSamples) {
  AddTarget(0, "192.0.2.1");
  IcmpTarget unresolved;
  unresolved.target_index = 1;
  prober_->AddTarget(unresolved);
  v4_->send_error =
      absl::UnavailableError("sendto 192.0.2.1: Network is unreachable");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(600));
  Step();
  // By target: the unresolved one fails before the batch is sent.
  auto samples = sink_.samples();
  std::sort(samples.begin(), samples.end(),
            [](const Sample& a, const Sample& b) {
              return a.target_index < b.target_index;
            });
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].result, SampleResult::kSendFailed);
  EXPECT_EQ(samples[0].error, "sendto 192.0.2.1: Network is unreachable");
  EXPECT_EQ(samples[1].result, SampleResult::kSendFailed);
  EXPECT_EQ(samples[1].error, "address not resolved");

  // Resolution later makes the target probe-able.
  v4_->send_error = absl::OkStatus();
  prober_->UpdateAddress(1, *IpAddress::Parse("192.0.2.3"));
  clock_.Advance(absl::Seconds(1));
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  EXPECT_EQ(v4_->sent[1].to.ToString(), "192.0.2.3");
}

// Without permission for a family, its probes are not loss: nothing is
// sent and nothing reported (the store shows no_permission instead); the
// other family's targets are probed as usual.
TEST_F(IcmpProberTest, NoPermissionFamilySendsAndReportsNothing) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "2001:db8::1");
  prober_->SetNoPermission(false);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  for (int i = 0; i < 5; ++i) {
    Step();
    clock_.Advance(absl::Milliseconds(600));
  }
  EXPECT_THAT(v4_->sent, SizeIs(0));
  EXPECT_THAT(v6_->sent, SizeIs(2));
  for (const Sample& sample : sink_.samples()) {
    EXPECT_EQ(sample.target_index, 1);
  }
}

TEST_F(IcmpProberTest, LateSendKeepsTheScheduledTime) {
  AddTarget(0, "192.0.2.1");
  int64_t start = clock_.MonotonicNanos();
  prober_->PlanSchedule(start);
  clock_.Advance(absl::Milliseconds(3));  // the loop woke up late
  Step();
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].scheduled_ns, start);
  EXPECT_EQ(samples[0].sent_ns, start + 3 * kMs);
  // Reading does not reset it (every scraper sees the minute's maximum).
  EXPECT_EQ(prober_->MaxLagNs(clock_.MonotonicNanos()), 3 * kMs);
  EXPECT_EQ(prober_->MaxLagNs(clock_.MonotonicNanos()), 3 * kMs);
}

TEST_F(IcmpProberTest, ADeadTargetDoesNotDelayALiveOne) {
  AddTarget(0, "192.0.2.1", 1000 * kMs, 900 * kMs);  // never answers
  AddTarget(1, "192.0.2.2", 1000 * kMs, 900 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  for (int second = 0; second < 5; ++second) {
    for (int tick = 0; tick < 10; ++tick) {
      Step();
      for (size_t i = 0; i < v4_->sent.size(); ++i) {
        if (v4_->sent[i].to.ToString() == "192.0.2.2" && i >= answered_) {
          v4_->inbox.push_back(ReplyTo(*v4_, i));
          answered_ = i + 1;
        }
      }
      clock_.Advance(absl::Milliseconds(100));
    }
  }
  int live_ok = 0;
  for (const Sample& s : sink_.samples()) {
    if (s.target_index == 1) {
      EXPECT_EQ(s.result, SampleResult::kOk);
      EXPECT_LE(*s.rtt_ns, 100 * kMs);
      ++live_ok;
    }
  }
  EXPECT_EQ(live_ok, 5);
}

TEST_F(IcmpProberTest, NextWakeIsTheEarlierOfSendAndTimeout) {
  AddTarget(0, "192.0.2.1", 1000 * kMs, 200 * kMs);
  int64_t start = clock_.MonotonicNanos();
  prober_->PlanSchedule(start);
  EXPECT_EQ(prober_->NextWakeNs(), start);
  Step();
  EXPECT_EQ(prober_->NextWakeNs(), start + 200 * kMs);
  clock_.Advance(absl::Milliseconds(200));
  Step();
  EXPECT_EQ(prober_->NextWakeNs(), start + 1000 * kMs);
}

}  // namespace
}  // namespace latency

namespace latency {
namespace {

// A target that DNS moves onto another target's address counts on in that
// address's sequence numbers: their probes never share a key.
TEST_F(IcmpProberTest, AMovedTargetTakesUpItsNewAddresssSequence) {
  AddTarget(0, "192.0.2.5", 1000 * kMs, 500 * kMs);
  AddTarget(1, "192.0.2.6", 1000 * kMs, 500 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Milliseconds(600));
    Step();
  }
  prober_->UpdateAddress(1, *IpAddress::Parse("192.0.2.5"));
  size_t before = v4_->sent.size();
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Milliseconds(600));
    Step();
  }
  std::set<std::string> sequences;
  for (size_t i = before; i < v4_->sent.size(); ++i) {
    ASSERT_EQ(v4_->sent[i].to.ToString(), "192.0.2.5");
    sequences.insert(v4_->sent[i].message.substr(6, 2));
  }
  size_t sent_after_move = v4_->sent.size() - before;
  EXPECT_GE(sent_after_move, 4u);
  EXPECT_EQ(sequences.size(), sent_after_move);
}

// Two targets on one host (two agents on different ports) share an address:
// each probe must still get its own sample.
TEST_F(IcmpProberTest, TargetsSharingAnAddressKeepTheirOwnProbes) {
  AddTarget(0, "192.0.2.5", 1000 * kMs, 500 * kMs);
  AddTarget(1, "192.0.2.5", 1000 * kMs, 500 * kMs);
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(600));  // both due
  Step();
  ASSERT_THAT(v4_->sent, SizeIs(2));
  EXPECT_NE(v4_->sent[0].message.substr(6, 2),
            v4_->sent[1].message.substr(6, 2));
  EXPECT_EQ(prober_->pending_count(), 2u);
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 1));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].target_index + samples[1].target_index, 1);
  EXPECT_EQ(samples[0].result, SampleResult::kOk);
  EXPECT_EQ(samples[1].result, SampleResult::kOk);
  EXPECT_EQ(prober_->counters(0).mismatched_replies, 0u);
  EXPECT_EQ(prober_->counters(1).mismatched_replies, 0u);
}

// A reload adds and removes targets while the prober runs: the others keep
// their sequence, open probes and counters; a removed target's open probe
// ends without a sample and a reply to it is nobody's.
TEST_F(IcmpProberTest, TargetsAddedAndRemovedWhileRunningLeaveTheOthersAlone) {
  AddTarget(0, "192.0.2.1");
  AddTarget(1, "192.0.2.2");
  prober_->PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(999));
  Step();
  ASSERT_EQ(v4_->sent.size(), 2u);
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));  // a duplicate, counted
  Step();
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  ASSERT_EQ(prober_->counters(0).duplicate_replies, 1u);

  AddTarget(5, "192.0.2.5");
  prober_->RemoveTarget(1);  // its probe (sent[1]) is still open
  Step();
  ASSERT_EQ(v4_->sent.size(), 3u);  // the added one, at once
  EXPECT_EQ(v4_->sent[2].to, *IpAddress::Parse("192.0.2.5"));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 1));
  v4_->inbox.push_back(ReplyTo(*v4_, 2));
  Step();
  // Past target 1's timeout, then past the next probes' (0's and 5's).
  clock_.Advance(absl::Seconds(1));
  Step();
  clock_.Advance(absl::Milliseconds(600));
  Step();
  std::vector<Sample> samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(4));
  EXPECT_EQ(samples[1].target_index, 5);
  EXPECT_TRUE(samples[1].ok());
  std::vector<uint64_t> target0;
  for (const Sample& sample : samples) {
    EXPECT_NE(sample.target_index, 1);
    if (sample.target_index == 0) target0.push_back(sample.sequence);
  }
  EXPECT_THAT(target0, ::testing::ElementsAre(0u, 1u));  // continues
  for (const FakeIcmpSocket::Sent& sent : v4_->sent) {
    if (&sent == &v4_->sent[1]) continue;
    EXPECT_NE(sent.to, *IpAddress::Parse("192.0.2.2"));
  }
  EXPECT_EQ(prober_->counters(0).duplicate_replies, 1u);
  EXPECT_EQ(prober_->counters(1).late_replies, 0u);  // unknown now
}

}  // namespace
}  // namespace latency
