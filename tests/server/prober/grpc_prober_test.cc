#include "server/prober/grpc_prober.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_echo_client.h"
#include "tests/testing/recording_sink.h"

namespace latency {
namespace {

using ::latency::testing::FakeClock;
using ::latency::testing::FakeEchoClient;
using ::latency::testing::RecordingSink;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kUs = 1'000;

class GrpcProberTest : public ::testing::Test {
 protected:
  FakeEchoClient* AddTarget(int index, int64_t timeout_ns = 500 * kMs,
                            int payload_bytes = 0) {
    auto client = std::make_unique<FakeEchoClient>();
    FakeEchoClient* raw = client.get();
    GrpcTarget target;
    target.target_index = index;
    target.name = absl::StrCat("t", index);
    target.interval_ns = 1000 * kMs;
    target.timeout_ns = timeout_ns;
    target.payload_bytes = payload_bytes;
    prober_.AddTarget(target, std::move(client));
    return raw;
  }
  void Step() {
    prober_.SendDue(clock_.MonotonicNanos());
    prober_.ExpireTimeouts(clock_.MonotonicNanos());
  }

  FakeClock clock_;
  RecordingSink sink_;
  GrpcProber prober_{clock_, sink_};
};

TEST_F(GrpcProberTest, ReplyGivesRttAgentTimeAndNetworkRtt) {
  FakeEchoClient* client = AddTarget(0, 500 * kMs, 32);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_EQ(client->call_count(), 1u);
  FakeEchoClient::Call call = client->TakeCall(0);
  EXPECT_EQ(call.request.sequence(), 0u);
  EXPECT_EQ(call.request.payload().size(), 32u);
  EXPECT_EQ(call.timeout, absl::Milliseconds(500));
  clock_.Advance(absl::Microseconds(400));
  client->Reply(0, /*agent_time_ns=*/30 * kUs);

  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].kind, ProbeKind::kGrpc);
  EXPECT_EQ(samples[0].result, SampleResult::kOk);
  EXPECT_THAT(samples[0].rtt_ns, Optional(400 * kUs));
  EXPECT_THAT(samples[0].agent_time_ns, Optional(30 * kUs));
  EXPECT_THAT(samples[0].network_rtt_ns(), Optional(370 * kUs));
  // The RTT is two readings of the prober's monotonic clock.
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kUserspace);
  EXPECT_EQ(prober_.pending_count(), 0u);
}

TEST_F(GrpcProberTest, ProberTimeoutWinsOverALateFailure) {
  FakeEchoClient* client = AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  for (int i = 0; i < 3; ++i) {
    Step();
    clock_.Advance(absl::Seconds(1));
  }
  client->Fail(
      0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"));
  client->Fail(1, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"));
  client->Fail(2, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, ""));
  auto samples = sink_.samples();
  // Probe 0 and 1 timed out at the prober first (500 ms < 1 s steps).
  ASSERT_THAT(samples, SizeIs(3));
  EXPECT_EQ(samples[0].result, SampleResult::kTimeout);
  EXPECT_EQ(samples[1].result, SampleResult::kTimeout);
  EXPECT_EQ(samples[2].result, SampleResult::kTimeout);
}

TEST_F(GrpcProberTest, ErrorStatusesMapToResults) {
  FakeEchoClient* client = AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  client->Fail(
      0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"));
  clock_.Advance(absl::Seconds(1));
  Step();
  client->Fail(1, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"));
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].result, SampleResult::kUnreachable);
  EXPECT_EQ(samples[0].error, "UNAVAILABLE: connection refused");
  EXPECT_FALSE(samples[0].rtt_ns.has_value());
  EXPECT_EQ(samples[0].timestamp_source, TimestampSource::kNone);
  EXPECT_EQ(samples[1].result, SampleResult::kError);
  EXPECT_EQ(samples[1].error, "PERMISSION_DENIED: no");
}

TEST_F(GrpcProberTest, NoReplyTimesOutAndALateReplyIsCounted) {
  FakeEchoClient* client = AddTarget(0, 300 * kMs);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  clock_.Advance(absl::Milliseconds(300));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].result, SampleResult::kTimeout);
  client->Reply(0, 0);
  EXPECT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(prober_.counters(0).late_replies, 1u);
}

TEST_F(GrpcProberTest, AReplyWithAnotherSequenceIsAnError) {
  FakeEchoClient* client = AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  FakeEchoClient::Call call = client->TakeCall(0);
  v1::EchoResponse wrong;
  wrong.set_sequence(99);
  call.done(grpc::Status::OK, wrong);
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kError);
  EXPECT_FALSE(sink_.samples()[0].rtt_ns.has_value());
}

TEST_F(GrpcProberTest, ImplausibleAgentTimeIsDropped) {
  FakeEchoClient* client = AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  clock_.Advance(absl::Microseconds(100));
  client->Reply(0, /*agent_time_ns=*/500 * kUs);  // longer than the RTT
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_TRUE(sink_.samples()[0].rtt_ns.has_value());
  EXPECT_FALSE(sink_.samples()[0].agent_time_ns.has_value());
}

TEST_F(GrpcProberTest, AHungTargetDoesNotDelayAnother) {
  FakeEchoClient* hung = AddTarget(0, 900 * kMs);
  FakeEchoClient* live = AddTarget(1, 900 * kMs);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  size_t answered = 0;
  for (int tick = 0; tick < 50; ++tick) {
    Step();
    while (answered < live->call_count()) live->Reply(answered++, 0);
    clock_.Advance(absl::Milliseconds(100));
  }
  EXPECT_EQ(hung->call_count(), 5u);
  int live_ok = 0, hung_timeouts = 0;
  for (const Sample& s : sink_.samples()) {
    if (s.target_index == 1 && s.result == SampleResult::kOk) ++live_ok;
    if (s.target_index == 0 && s.result == SampleResult::kTimeout)
      ++hung_timeouts;
  }
  EXPECT_EQ(live_ok, 5);
  EXPECT_GE(hung_timeouts, 4);
}

TEST_F(GrpcProberTest, ChannelStateChangesAreCounted) {
  FakeEchoClient* client = AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();  // IDLE -> READY
  client->state = GRPC_CHANNEL_TRANSIENT_FAILURE;
  clock_.Advance(absl::Seconds(1));
  Step();
  client->state = GRPC_CHANNEL_READY;
  clock_.Advance(absl::Seconds(1));
  Step();
  EXPECT_EQ(prober_.counters(0).channel_state_changes, 3u);
  EXPECT_EQ(prober_.counters(0).channel_state, GRPC_CHANNEL_READY);
}

TEST_F(GrpcProberTest, CallsCancelledByStopAreNotSamples) {
  AddTarget(0);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_EQ(prober_.pending_count(), 1u);
  // Stop destroys the client, which cancels the open call (CANCELLED).
  prober_.Stop();
  EXPECT_THAT(sink_.samples(), SizeIs(0));
}

TEST_F(GrpcProberTest, AProbeThatWaitedForTheConnectionIsNotAnRtt) {
  FakeEchoClient* client = AddTarget(0);
  client->state = GRPC_CHANNEL_CONNECTING;
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  clock_.Advance(absl::Milliseconds(300));  // TCP + TLS set-up, then echo
  client->Reply(0, 0);
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  EXPECT_EQ(prober_.counters(0).connect_replies, 1u);

  client->state = GRPC_CHANNEL_READY;
  clock_.Advance(absl::Milliseconds(700));
  Step();
  clock_.Advance(absl::Milliseconds(2));
  client->Reply(1, 0);
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_THAT(sink_.samples()[0].rtt_ns, Optional(2 * kMs));
}

TEST_F(GrpcProberTest, AFailureWhileConnectingIsStillASample) {
  FakeEchoClient* client = AddTarget(0);
  client->state = GRPC_CHANNEL_TRANSIENT_FAILURE;
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  client->Fail(
      0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"));
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kUnreachable);
}

TEST_F(GrpcProberTest, StartConnectsBeforeTheFirstProbe) {
  FakeEchoClient* client = AddTarget(0);
  prober_.Start();
  EXPECT_EQ(client->connects, 1);
  prober_.Stop();
}

TEST_F(GrpcProberTest, AReplacedClientsCancelledCallsAreNotSamples) {
  FakeEchoClient* old_client = AddTarget(0, 500 * kMs);
  prober_.PlanSchedule(clock_.MonotonicNanos());
  Step();
  ASSERT_EQ(old_client->call_count(), 1u);
  FakeEchoClient::Call old_call = old_client->TakeCall(0);
  auto fresh = std::make_unique<FakeEchoClient>();
  FakeEchoClient* new_client = fresh.get();
  prober_.ReplaceClient(0, std::move(fresh));
  EXPECT_EQ(new_client->connects, 1);
  // Destroys the old client, which cancels its open call.
  prober_.ApplyChanges();
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  EXPECT_EQ(prober_.pending_count(), 0u);
  // A reply that raced the replacement is neither a sample nor "late".
  v1::EchoResponse reply;
  reply.set_sequence(0);
  old_call.done(grpc::Status::OK, reply);
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  EXPECT_EQ(prober_.counters(0).late_replies, 0u);

  clock_.Advance(absl::Seconds(1));
  Step();
  ASSERT_EQ(new_client->call_count(), 1u);
  clock_.Advance(absl::Milliseconds(1));
  new_client->Reply(0, 0);
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(sink_.samples()[0].result, SampleResult::kOk);
  EXPECT_EQ(sink_.samples()[0].sequence, 1u);
}

// A reload adds and removes targets while the prober runs: the others keep
// their client, sequence and counters; a removed target's open call is the
// prober's own cancellation, not a sample, and it is never probed again.
TEST_F(GrpcProberTest, TargetsAddedAndRemovedWhileRunningLeaveTheOthersAlone) {
  FakeEchoClient* kept = AddTarget(0);
  FakeEchoClient* leaving = AddTarget(1);
  leaving->state = GRPC_CHANNEL_CONNECTING;
  prober_.PlanSchedule(clock_.MonotonicNanos());
  clock_.Advance(absl::Milliseconds(999));
  Step();
  ASSERT_EQ(kept->call_count(), 1u);
  ASSERT_EQ(leaving->call_count(), 1u);
  kept->Reply(0, 0);
  ASSERT_THAT(sink_.samples(), SizeIs(1));
  ASSERT_EQ(prober_.counters(1).channel_state_changes, 1u);

  // Added after the start: connects at once, probed from the next step.
  FakeEchoClient* added = AddTarget(7);
  EXPECT_EQ(added->connects, 1);
  EXPECT_EQ(added->call_count(), 0u);
  FakeEchoClient::Call open = leaving->TakeCall(0);
  prober_.RemoveTarget(1);
  prober_.ApplyChanges();  // destroys `leaving`, cancelling its open call
  EXPECT_THAT(sink_.samples(), SizeIs(1));
  EXPECT_EQ(prober_.pending_count(), 0u);
  EXPECT_EQ(prober_.counters(1).channel_state_changes, 0u);  // unknown now
  Step();
  ASSERT_EQ(added->call_count(), 1u);
  EXPECT_EQ(added->TakeCall(0).request.sequence(), 0u);
  added->Reply(0, 0);

  clock_.Advance(absl::Seconds(1));
  Step();
  ASSERT_EQ(kept->call_count(), 2u);
  EXPECT_EQ(kept->TakeCall(1).request.sequence(), 1u);  // continues
  // A reply that raced the removal is neither a sample nor "late".
  v1::EchoResponse reply;
  reply.set_sequence(0);
  open.done(grpc::Status::OK, reply);
  kept->Reply(1, 0);
  std::vector<Sample> samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(3));
  EXPECT_EQ(samples[1].target_index, 7);
  EXPECT_EQ(samples[2].target_index, 0);
  EXPECT_EQ(samples[2].sequence, 1u);
  for (const Sample& sample : samples) EXPECT_TRUE(sample.ok());
  EXPECT_EQ(prober_.counters(0).late_replies, 0u);
  prober_.Stop();
}

// A tap that saw every echo take the same wire round trip.
class FakeWireTap final : public WireRoundTrips {
 public:
  void AddServicePort(uint16_t port) override { ports.push_back(port); }
  std::optional<int64_t> TakeRoundTripNs(int64_t key) override {
    keys.push_back(key);
    return round_trip_ns;
  }
  std::optional<int64_t> round_trip_ns = 300 * kUs;
  std::vector<uint16_t> ports;
  std::vector<int64_t> keys;
};

class GrpcProberWireTest : public ::testing::Test {
 protected:
  FakeEchoClient* AddTarget() {
    auto client = std::make_unique<FakeEchoClient>();
    FakeEchoClient* raw = client.get();
    GrpcTarget target;
    target.name = "t0";
    target.interval_ns = 1000 * kMs;
    target.timeout_ns = 500 * kMs;
    target.port = 50051;
    prober_.AddTarget(target, std::move(client));
    prober_.PlanSchedule(clock_.MonotonicNanos());
    return raw;
  }
  void Step() {
    prober_.SendDue(clock_.MonotonicNanos());
    prober_.ExpireTimeouts(clock_.MonotonicNanos());
  }
  // Answers call i 400 us after it left, as an agent that stamps its wire
  // and reports the earlier echoes' holds.
  void Reply(FakeEchoClient* client, size_t i,
             std::vector<std::pair<int64_t, int64_t>> holds = {},
             bool agent_stamps = true) {
    clock_.Advance(absl::Microseconds(400));
    client->Reply(i, 30 * kUs, [&](v1::EchoResponse& response) {
      response.set_wire_stamps(agent_stamps);
      for (auto [key, hold_ns] : holds) {
        v1::WireHold* hold = response.add_wire_holds();
        hold->set_client_send_time_ns(key);
        hold->set_hold_ns(hold_ns);
      }
    });
  }
  int64_t KeyOf(FakeEchoClient* client, size_t i) {
    return client->TakeCall(i).request.client_send_time_ns();
  }

  FakeClock clock_;
  RecordingSink sink_;
  FakeWireTap tap_;
  GrpcProber prober_{clock_, sink_, &tap_};
};

TEST_F(GrpcProberWireTest, ASampleWaitsForItsHoldOnTheNextReply) {
  FakeEchoClient* client = AddTarget();
  EXPECT_THAT(tap_.ports, ::testing::ElementsAre(50051));
  Step();
  Reply(client, 0);
  // The tap was asked about this echo; its hold comes later.
  EXPECT_THAT(tap_.keys, ::testing::ElementsAre(KeyOf(client, 0)));
  EXPECT_THAT(sink_.samples(), SizeIs(0));

  clock_.Advance(absl::Milliseconds(1000));
  Step();
  Reply(client, 1, {{KeyOf(client, 0), 50 * kUs}});
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].sequence, 0u);
  EXPECT_THAT(samples[0].rtt_ns, Optional(400 * kUs));
  EXPECT_THAT(samples[0].agent_time_ns, Optional(30 * kUs));
  // Wire round trip 300 us - the agent host's 50 us, not 400 - 30.
  EXPECT_THAT(samples[0].wire_network_rtt_ns, Optional(250 * kUs));
  EXPECT_THAT(samples[0].network_rtt_ns(), Optional(250 * kUs));
}

TEST_F(GrpcProberWireTest, WithoutTheAgentsStampsASampleIsRecordedAtOnce) {
  FakeEchoClient* client = AddTarget();
  Step();
  Reply(client, 0, {}, /*agent_stamps=*/false);
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].wire_network_rtt_ns, std::nullopt);
  EXPECT_THAT(samples[0].network_rtt_ns(), Optional(370 * kUs));
}

TEST_F(GrpcProberWireTest, WithoutAWireRoundTripASampleIsRecordedAtOnce) {
  FakeEchoClient* client = AddTarget();
  // TLS hides the keys; or the tap reads a stepped clock: longer than the
  // call itself.
  for (std::optional<int64_t> seen :
       {std::optional<int64_t>(), std::optional<int64_t>(401 * kUs)}) {
    tap_.round_trip_ns = seen;
    Step();
    Reply(client, client->call_count() - 1);
    clock_.Advance(absl::Milliseconds(1000));
  }
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  for (const Sample& sample : samples) {
    EXPECT_EQ(sample.wire_network_rtt_ns, std::nullopt);
    EXPECT_THAT(sample.network_rtt_ns(), Optional(370 * kUs));
  }
}

TEST_F(GrpcProberWireTest, AHoldThatNeverComesFallsBackInOrder) {
  FakeEchoClient* client = AddTarget();
  Step();
  Reply(client, 0);
  clock_.Advance(absl::Milliseconds(1000));
  Step();  // probe 1 leaves and is never answered
  EXPECT_THAT(sink_.samples(), SizeIs(0));
  clock_.Advance(absl::Milliseconds(500));
  Step();
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].sequence, 0u);
  EXPECT_EQ(samples[0].result, SampleResult::kOk);
  EXPECT_EQ(samples[0].wire_network_rtt_ns, std::nullopt);
  EXPECT_THAT(samples[0].network_rtt_ns(), Optional(370 * kUs));
  EXPECT_EQ(samples[1].sequence, 1u);
  EXPECT_EQ(samples[1].result, SampleResult::kTimeout);
}

TEST_F(GrpcProberWireTest, AnImplausibleHoldIsNotUsed) {
  FakeEchoClient* client = AddTarget();
  Step();
  Reply(client, 0);
  clock_.Advance(absl::Milliseconds(1000));
  Step();
  // Longer than the server's wire round trip: a stepped clock on the agent.
  Reply(client, 1, {{KeyOf(client, 0), 301 * kUs}});
  auto samples = sink_.samples();
  ASSERT_THAT(samples, SizeIs(1));
  EXPECT_EQ(samples[0].wire_network_rtt_ns, std::nullopt);
  EXPECT_THAT(samples[0].network_rtt_ns(), Optional(370 * kUs));
}

}  // namespace
}  // namespace latency
