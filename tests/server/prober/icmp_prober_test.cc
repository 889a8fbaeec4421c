#include "server/prober/icmp_prober.h"

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

  // The reply a well-behaved host sends to sent[i].
  IcmpReceived ReplyTo(const FakeIcmpSocket& socket, size_t i,
                       std::optional<int64_t> kernel_rx_realtime = {}) {
    const FakeIcmpSocket::Sent& sent = socket.sent.at(i);
    IcmpReceived reply;
    reply.kind = IcmpReceived::Kind::kMessage;
    reply.peer = sent.to;
    reply.data = sent.message;
    reply.data[0] = static_cast<char>(socket.ipv6() ? 129 : 0);
    reply.userspace_ns = clock_.MonotonicNanos();
    if (kernel_rx_realtime) {
      reply.kernel_realtime_ns = kernel_rx_realtime;
      reply.kernel_monotonic_ns = clock_.MonotonicNanos();
    }
    return reply;
  }

  IcmpReceived TxStampFor(const FakeIcmpSocket& socket, size_t i,
                          int64_t realtime_ns, int64_t monotonic_ns) {
    IcmpReceived stamp;
    stamp.kind = IcmpReceived::Kind::kTxTimestamp;
    stamp.tx_key = socket.sent.at(i).tx_key;
    stamp.kernel_realtime_ns = realtime_ns;
    stamp.kernel_monotonic_ns = monotonic_ns;
    return stamp;
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
  v4_->inbox.push_back(TxStampFor(*v4_, 0, kRealtimeBase, sent_at + 5 * kUs));
  clock_.Advance(absl::Microseconds(300));
  v4_->inbox.push_back(ReplyTo(*v4_, 0, kRealtimeBase + 210 * kUs));
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
  v4_->inbox.push_back(TxStampFor(*v4_, 0, kRealtimeBase, sent_at + 20 * kUs));
  clock_.Advance(absl::Microseconds(100));
  v4_->inbox.push_back(ReplyTo(*v4_, 0));  // no RX stamp
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_THAT(samples[0].rtt_ns, Optional(80 * kUs));
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kMixed);
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
  EXPECT_EQ(samples[0].error, "ICMP type 3 code 1");
  EXPECT_EQ(samples[1].result, SampleResult::kTtlExceeded);
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
  EXPECT_EQ(sink_.samples()[0].error, "ICMP type 3 code 1 from 198.51.100.1");
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
  auto samples = sink_.samples();
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
  EXPECT_EQ(prober_->TakeMaxLagNs(), 3 * kMs);
  EXPECT_EQ(prober_->TakeMaxLagNs(), 0);
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

}  // namespace
}  // namespace latency
