// QueryHandler against a store of known samples: the original tool's
// contract (latency_ms = the first target's ICMP RTT, status = the worst over
// every probe of every target, for every combination of statuses), the
// JSON field names and nulls the gateway prints, and error codes.
#include "server/api/query.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/api/api_test_store.h"
#include "tests/testing/status_matchers.h"

namespace latency {
namespace {

using ::latency::testing::ApiTarget;
using ::latency::testing::ApiTestStore;
using ::latency::testing::IsOk;
using ::latency::testing::kApiMs;
using ::latency::testing::StatusIs;
using ::latency::testing::StatusTarget;
using ::testing::HasSubstr;

constexpr ProbeStatus kAllStatuses[] = {
    ProbeStatus::kUnknown, ProbeStatus::kOk,    ProbeStatus::kDegraded,
    ProbeStatus::kDown,    ProbeStatus::kStale, ProbeStatus::kNoPermission};

// The documented order (status.h):
// ok < unknown < no_permission < degraded < stale < down.
int Rank(ProbeStatus s) {
  switch (s) {
    case ProbeStatus::kOk:
      return 0;
    case ProbeStatus::kUnknown:
      return 1;
    case ProbeStatus::kNoPermission:
      return 2;
    case ProbeStatus::kDegraded:
      return 3;
    case ProbeStatus::kStale:
      return 4;
    case ProbeStatus::kDown:
      return 5;
  }
  return -1;
}

QueryHandler HandlerFor(const ApiTestStore& data) {
  return QueryHandler([&data] { return data.View(); });
}

TEST(QueryStatusTest, ProducedStatusesAreTheOnesAsked) {
  // The fixture's recipes themselves, so the combinations below mean
  // what they say.
  for (ProbeStatus status : kAllStatuses) {
    ApiTestStore data({StatusTarget("t", status, /*grpc=*/true)});
    data.clock().Advance(absl::Seconds(10));
    data.Produce(0, status);
    EXPECT_EQ(data.store().Probe(0, ProbeKind::kIcmp).status, status)
        << ProbeStatusName(status);
    EXPECT_EQ(data.store().Probe(0, ProbeKind::kGrpc).status, status)
        << ProbeStatusName(status);
  }
}

// The Flask contract: `status` is the worst over all targets, whatever the
// first target says, for each of the 25 pairs of target statuses.
TEST(QueryStatusTest, OverallStatusIsTheWorstOverEveryTarget) {
  for (ProbeStatus first : kAllStatuses) {
    for (ProbeStatus second : kAllStatuses) {
      SCOPED_TRACE(
          absl::StrCat(ProbeStatusName(first), " + ", ProbeStatusName(second)));
      ApiTestStore data(
          {StatusTarget("first", first), StatusTarget("second", second)});
      data.clock().Advance(absl::Seconds(10));
      data.Produce(0, first);
      data.Produce(1, second);
      QueryHandler query = HandlerFor(data);
      absl::StatusOr<v1::GetLatencyResponse> r =
          query.GetLatency(v1::GetLatencyRequest());
      ASSERT_THAT(r, IsOk());
      ProbeStatus want = Rank(first) >= Rank(second) ? first : second;
      EXPECT_EQ(r->status(), ProbeStatusName(want));
      EXPECT_EQ(r->target(), "first");
      EXPECT_EQ(r->icmp_status(), ProbeStatusName(first));
      EXPECT_EQ(r->grpc_status(), "disabled");
      ASSERT_EQ(r->targets_size(), 2);
      EXPECT_EQ(r->targets(0).status(), ProbeStatusName(first));
      EXPECT_EQ(r->targets(1).status(), ProbeStatusName(second));
      // ok only when everything is ok.
      EXPECT_EQ(r->status() == "ok",
                first == ProbeStatus::kOk && second == ProbeStatus::kOk);
    }
  }
}

// A target's status is the worst of its enabled probes; a disabled probe
// counts for nothing.
TEST(QueryStatusTest, TargetStatusIsTheWorstOfItsEnabledProbes) {
  for (ProbeStatus icmp : kAllStatuses) {
    for (ProbeStatus grpc : kAllStatuses) {
      SCOPED_TRACE(absl::StrCat("icmp ", ProbeStatusName(icmp), ", grpc ",
                                ProbeStatusName(grpc)));
      // "unknown" needs a slow interval and "stale" a fast one: the one
      // pair that cannot share a target.
      bool slow =
          icmp == ProbeStatus::kUnknown || grpc == ProbeStatus::kUnknown;
      if (slow &&
          (icmp == ProbeStatus::kStale || grpc == ProbeStatus::kStale)) {
        continue;
      }
      ApiTestStore data({StatusTarget(
          "t", slow ? ProbeStatus::kUnknown : ProbeStatus::kOk, true)});
      data.clock().Advance(absl::Seconds(10));
      data.Produce(0, ProbeKind::kIcmp, icmp);
      data.Produce(0, ProbeKind::kGrpc, grpc);
      v1::ListTargetsResponse r =
          *HandlerFor(data).ListTargets(v1::ListTargetsRequest());
      ASSERT_EQ(r.targets_size(), 1);
      ProbeStatus want = Rank(icmp) >= Rank(grpc) ? icmp : grpc;
      EXPECT_EQ(r.targets(0).status(), ProbeStatusName(want));
      ASSERT_EQ(r.targets(0).probes_size(), 2);
      EXPECT_EQ(r.targets(0).probes(0).status(), ProbeStatusName(icmp));
      EXPECT_EQ(r.targets(0).probes(1).status(), ProbeStatusName(grpc));
    }
  }
  // A down gRPC probe that is disabled does not make the target down.
  ApiTestStore data({ApiTarget("t", "10.0.0.1", true, false)});
  data.Ok(0, ProbeKind::kIcmp, kApiMs);
  for (int i = 0; i < 3; ++i) {
    data.Fail(0, ProbeKind::kGrpc, SampleResult::kTimeout);
  }
  v1::ListTargetsResponse r =
      *HandlerFor(data).ListTargets(v1::ListTargetsRequest());
  EXPECT_EQ(r.targets(0).status(), "ok");
  EXPECT_EQ(r.targets(0).probes(1).status(), "disabled");
  EXPECT_FALSE(r.targets(0).probes(1).enabled());
}

class QueryTest : public ::testing::Test {
 protected:
  QueryTest()
      : data_({ApiTarget("first", "first.example"),
               ApiTarget("second", "10.0.0.2")}),
        query_(HandlerFor(data_)) {
    data_.clock().Advance(absl::Seconds(5));
    // The second target answers first and faster: latency_ms must still
    // be the first target's.
    data_.Ok(1, ProbeKind::kIcmp, 1 * kApiMs);
    data_.Ok(1, ProbeKind::kGrpc, 2 * kApiMs, kApiMs / 2);
    data_.Ok(0, ProbeKind::kIcmp, 9 * kApiMs);
    data_.Ok(0, ProbeKind::kIcmp, 4 * kApiMs);  // latest
    data_.Ok(0, ProbeKind::kGrpc, 6 * kApiMs, 2 * kApiMs);
    data_.clock().Advance(absl::Milliseconds(300));
  }

  ApiTestStore data_;
  QueryHandler query_;
};

TEST_F(QueryTest, LatencyIsTheFirstTargetsLatestIcmpRtt) {
  absl::StatusOr<v1::GetLatencyResponse> r =
      query_.GetLatency(v1::GetLatencyRequest());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->target(), "first");
  EXPECT_DOUBLE_EQ(r->latency_ms(), 4);
  EXPECT_DOUBLE_EQ(r->grpc_latency_ms(), 6);
  EXPECT_DOUBLE_EQ(r->grpc_network_latency_ms(), 4);
  EXPECT_DOUBLE_EQ(r->age_ms(), 300);
  EXPECT_EQ(r->status(), "ok");
  EXPECT_EQ(r->icmp_status(), "ok");
  EXPECT_EQ(r->grpc_status(), "ok");
  ASSERT_EQ(r->targets_size(), 2);
  const v1::TargetSummary& t = r->targets(0);
  EXPECT_EQ(t.name(), "first");
  EXPECT_EQ(t.host(), "first.example");
  EXPECT_EQ(t.address(), "addr-0");
  EXPECT_EQ(t.grpc_port(), 50051u);
  ASSERT_EQ(t.probes_size(), 2);
  EXPECT_EQ(t.probes(0).kind(), v1::PROBE_KIND_ICMP);
  EXPECT_DOUBLE_EQ(t.probes(0).last_rtt_ms(), 4);
  EXPECT_FALSE(t.probes(0).has_last_network_rtt_ms());
  EXPECT_EQ(t.probes(1).kind(), v1::PROBE_KIND_GRPC);
  EXPECT_DOUBLE_EQ(t.probes(1).last_network_rtt_ms(), 4);

  // Named: the same fields for that target; status stays the overall one.
  v1::GetLatencyRequest named;
  named.set_target("second");
  r = query_.GetLatency(named);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->target(), "second");
  EXPECT_DOUBLE_EQ(r->latency_ms(), 1);
  EXPECT_DOUBLE_EQ(r->grpc_network_latency_ms(), 1.5);
}

TEST_F(QueryTest, TheOverallStatusIsNotTheFirstTargets) {
  for (int i = 0; i < 3; ++i) {
    data_.Fail(1, ProbeKind::kGrpc, SampleResult::kUnreachable,
               "UNAVAILABLE: connection refused");
  }
  absl::StatusOr<v1::GetLatencyResponse> r =
      query_.GetLatency(v1::GetLatencyRequest());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status(), "down");
  EXPECT_EQ(r->icmp_status(), "ok");  // the first target's own
  EXPECT_EQ(r->grpc_status(), "ok");
  const v1::ProbeSummary& grpc = r->targets(1).probes(1);
  EXPECT_EQ(grpc.status(), "down");
  EXPECT_EQ(grpc.consecutive_failures(), 3u);
  EXPECT_EQ(grpc.last_error(), "UNAVAILABLE: connection refused");
  // The last good RTT stays visible next to the failure.
  EXPECT_DOUBLE_EQ(grpc.last_rtt_ms(), 2);
}

TEST_F(QueryTest, JsonHasTheContractsFieldNames) {
  absl::StatusOr<v1::GetLatencyResponse> r =
      query_.GetLatency(v1::GetLatencyRequest());
  ASSERT_THAT(r, IsOk());
  std::string json = ToJson(*r);
  EXPECT_THAT(json, HasSubstr("{\"latency_ms\":4,\"status\":\"ok\","));
  for (const char* field :
       {"\"target\":\"first\"", "\"grpc_latency_ms\":6",
        "\"grpc_network_latency_ms\":4", "\"icmp_status\":\"ok\"",
        "\"grpc_status\":\"ok\"", "\"age_ms\":300", "\"targets\":[",
        "\"name\":\"first\"", "\"host\":\"first.example\"",
        "\"address\":\"addr-0\"", "\"grpc_port\":50051",
        "\"kind\":\"PROBE_KIND_ICMP\"", "\"enabled\":true", "\"last_rtt_ms\":4",
        "\"last_network_rtt_ms\":null", "\"consecutive_failures\":0",
        "\"last_error\":\"\""}) {
    EXPECT_THAT(json, HasSubstr(field));
  }
}

// Every answer says where it was measured from; targets carry their labels.
TEST(QuerySourceTest, AnswersCarrySourceAndTargetLabels) {
  TargetSpec labelled = ApiTarget("db1", "10.0.0.1");
  labelled.labels = {{"az", "eu-west-1b"}, {"role", "db"}};
  ApiTestStore data({labelled, ApiTarget("web1", "10.0.0.2")});
  QueryHandler query([&data] {
    StoreView view = data.View();
    view.source = "eu-west-1a";
    return view;
  });
  absl::StatusOr<v1::GetLatencyResponse> latency =
      query.GetLatency(v1::GetLatencyRequest());
  ASSERT_THAT(latency, IsOk());
  EXPECT_EQ(latency->source(), "eu-west-1a");
  EXPECT_THAT(ToJson(*latency), HasSubstr("\"source\":\"eu-west-1a\""));
  absl::StatusOr<v1::ListTargetsResponse> list =
      query.ListTargets(v1::ListTargetsRequest());
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->source(), "eu-west-1a");
  ASSERT_EQ(list->targets_size(), 2);
  EXPECT_THAT(
      list->targets(0).labels(),
      ::testing::UnorderedElementsAre(::testing::Pair("az", "eu-west-1b"),
                                      ::testing::Pair("role", "db")));
  EXPECT_TRUE(list->targets(1).labels().empty());
  v1::GetTargetStatsRequest stats_request;
  stats_request.set_target("db1");
  absl::StatusOr<v1::GetTargetStatsResponse> stats =
      query.GetTargetStats(stats_request);
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->source(), "eu-west-1a");
  EXPECT_EQ(stats->target().labels().at("az"), "eu-west-1b");
}

TEST(QueryNullTest, AMissingMeasurementIsNullNeverZero) {
  // The first target has no ICMP answer yet; the second has one.
  ApiTestStore data({StatusTarget("first", ProbeStatus::kUnknown, true),
                     StatusTarget("second", ProbeStatus::kUnknown, true)});
  data.Fail(0, ProbeKind::kIcmp, SampleResult::kTimeout);
  data.Ok(1, ProbeKind::kIcmp, 3 * kApiMs);
  QueryHandler query = HandlerFor(data);
  absl::StatusOr<v1::GetLatencyResponse> r =
      query.GetLatency(v1::GetLatencyRequest());
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_latency_ms());
  EXPECT_FALSE(r->has_grpc_latency_ms());
  EXPECT_TRUE(r->has_age_ms());  // a failed probe still completed
  std::string json = ToJson(*r);
  // Overall: unknown (one failure before any success says nothing yet;
  // the other target's gRPC has no sample).
  EXPECT_THAT(json, HasSubstr("{\"latency_ms\":null,\"status\":\"unknown\","));
  EXPECT_THAT(json, HasSubstr("\"grpc_latency_ms\":null"));
  EXPECT_THAT(json, HasSubstr("\"grpc_network_latency_ms\":null"));

  // Stats over a window without a successful sample: every latency null.
  v1::GetTargetStatsRequest request;
  request.set_target("first");
  absl::StatusOr<v1::GetTargetStatsResponse> stats =
      query.GetTargetStats(request);
  ASSERT_THAT(stats, IsOk());
  std::string stats_json = ToJson(*stats);
  for (const char* field :
       {"last_ms", "min_ms", "mean_ms", "max_ms", "stddev_ms", "jitter_ms",
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "network_p50_ms"}) {
    EXPECT_THAT(stats_json, HasSubstr(absl::StrCat("\"", field, "\":null")));
  }
  EXPECT_THAT(stats_json, HasSubstr("\"loss_percent\":100"));
  EXPECT_THAT(stats_json, HasSubstr("\"failures\":{\"timeout\":1}"));
}

TEST_F(QueryTest, TargetStatsOverAWindow) {
  data_.Fail(0, ProbeKind::kIcmp, SampleResult::kTimeout);
  data_.Fail(0, ProbeKind::kIcmp, SampleResult::kUnreachable, "net down");
  v1::GetTargetStatsRequest request;
  request.set_target("first");
  absl::StatusOr<v1::GetTargetStatsResponse> r = query_.GetTargetStats(request);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->window(), "1m");  // the default
  EXPECT_EQ(r->target().name(), "first");
  ASSERT_EQ(r->probes_size(), 2);
  const v1::ProbeStats& icmp = r->probes(0);
  EXPECT_EQ(icmp.kind(), v1::PROBE_KIND_ICMP);
  EXPECT_EQ(icmp.sent(), 4u);
  EXPECT_EQ(icmp.received(), 2u);
  EXPECT_EQ(icmp.lost(), 2u);
  EXPECT_DOUBLE_EQ(icmp.loss_percent(), 50);
  // Too few samples (4 < 20) for loss to mean degraded; 2 failures in a
  // row are not down.
  EXPECT_EQ(icmp.status(), "ok");
  EXPECT_DOUBLE_EQ(icmp.last_ms(), 4);
  EXPECT_DOUBLE_EQ(icmp.min_ms(), 4);
  EXPECT_DOUBLE_EQ(icmp.max_ms(), 9);
  EXPECT_DOUBLE_EQ(icmp.mean_ms(), 6.5);
  EXPECT_DOUBLE_EQ(icmp.stddev_ms(), 2.5);
  // A median of {4, 9}: one of them (exact here; within 0.1% from a
  // histogram).
  EXPECT_THAT(icmp.p50_ms(), ::testing::AnyOf(::testing::DoubleNear(4, 0.04),
                                              ::testing::DoubleNear(9, 0.09)));
  EXPECT_EQ(icmp.failures().at("timeout"), 1u);
  EXPECT_EQ(icmp.failures().at("unreachable"), 1u);
  EXPECT_EQ(icmp.failures().size(), 2u);
  EXPECT_DOUBLE_EQ(icmp.age_ms(), 0);
  const v1::ProbeStats& grpc = r->probes(1);
  EXPECT_NEAR(grpc.network_p50_ms(), 4, 0.04);
  EXPECT_FALSE(icmp.has_network_p50_ms());

  request.set_window("1h");
  r = query_.GetTargetStats(request);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->window(), "1h");
  EXPECT_EQ(r->probes(0).sent(), 4u);
}

TEST(QueryDisabledTest, StatsListOnlyEnabledKinds) {
  ApiTestStore data({ApiTarget("icmp-only", "10.0.0.1", true, false)});
  data.Ok(0, ProbeKind::kIcmp, kApiMs);
  v1::GetTargetStatsRequest request;
  request.set_target("icmp-only");
  absl::StatusOr<v1::GetTargetStatsResponse> r =
      HandlerFor(data).GetTargetStats(request);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->probes_size(), 1);
  EXPECT_EQ(r->probes(0).kind(), v1::PROBE_KIND_ICMP);
  EXPECT_EQ(r->probes(0).timestamp_source(), v1::TIMESTAMP_SOURCE_KERNEL);
}

TEST_F(QueryTest, ErrorsAreMappedToCodesThatNameTheProblem) {
  v1::GetLatencyRequest latency;
  latency.set_target("nope");
  EXPECT_THAT(query_.GetLatency(latency),
              StatusIs(absl::StatusCode::kNotFound, "unknown target 'nope'"));

  v1::GetTargetStatsRequest stats;
  EXPECT_THAT(query_.GetTargetStats(stats),
              StatusIs(absl::StatusCode::kInvalidArgument, "target: required"));
  stats.set_target("nope");
  EXPECT_THAT(query_.GetTargetStats(stats),
              StatusIs(absl::StatusCode::kNotFound, "unknown target 'nope'"));
  stats.set_target("first");
  stats.set_window("2m");
  EXPECT_THAT(query_.GetTargetStats(stats),
              StatusIs(absl::StatusCode::kInvalidArgument, "window: "));
  // Bytes that are not UTF-8 never reach a message (JSON and gRPC need it).
  stats.set_target("\xff\xfe");
  absl::StatusOr<v1::GetTargetStatsResponse> bad = query_.GetTargetStats(stats);
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(absl::StrContains(bad.status().message(), "\xff"));

  v1::WatchRequest watch;
  EXPECT_THAT(query_.ValidateWatch(watch), IsOk());
  watch.set_target("nope");
  EXPECT_THAT(query_.ValidateWatch(watch),
              StatusIs(absl::StatusCode::kNotFound, "unknown target 'nope'"));
  watch.set_target("first");
  watch.set_kind(static_cast<v1::ProbeKind>(99));
  EXPECT_THAT(query_.ValidateWatch(watch),
              StatusIs(absl::StatusCode::kInvalidArgument, "kind: "));
}

TEST_F(QueryTest, WatchFiltersAndSampleFields) {
  Sample s;
  s.target_index = 1;
  s.kind = ProbeKind::kGrpc;
  s.sequence = 42;
  s.scheduled_ns = data_.now() - 3 * kApiMs;
  s.sent_ns = data_.now() - 2 * kApiMs;  // 1 ms late
  s.completed_ns = data_.now();
  s.scheduled_wall = absl::FromUnixSeconds(1'767'225'600);
  s.result = SampleResult::kOk;
  s.rtt_ns = 2 * kApiMs;
  s.agent_time_ns = kApiMs / 4;
  v1::WatchRequest all;
  v1::WatchRequest second_grpc;
  second_grpc.set_target("second");
  second_grpc.set_kind(v1::PROBE_KIND_GRPC);
  v1::WatchRequest first;
  first.set_target("first");
  v1::WatchRequest icmp;
  icmp.set_kind(v1::PROBE_KIND_ICMP);
  const ResultStore& store = data_.store();
  EXPECT_TRUE(QueryHandler::WatchMatches(store, all, s));
  EXPECT_TRUE(QueryHandler::WatchMatches(store, second_grpc, s));
  EXPECT_FALSE(QueryHandler::WatchMatches(store, first, s));
  EXPECT_FALSE(QueryHandler::WatchMatches(store, icmp, s));

  v1::Sample p = QueryHandler::SampleToProto(store, s);
  EXPECT_EQ(p.target(), "second");
  EXPECT_EQ(p.kind(), v1::PROBE_KIND_GRPC);
  EXPECT_EQ(p.sequence(), 42u);
  EXPECT_EQ(p.scheduled_time().seconds(), 1'767'225'600);
  EXPECT_EQ(p.result(), v1::SAMPLE_RESULT_OK);
  EXPECT_DOUBLE_EQ(p.rtt_ms(), 2);
  EXPECT_DOUBLE_EQ(p.agent_time_ms(), 0.25);
  EXPECT_DOUBLE_EQ(p.network_rtt_ms(), 1.75);
  EXPECT_DOUBLE_EQ(p.send_lag_ms(), 1);
  EXPECT_EQ(p.error(), "");

  s.result = SampleResult::kTimeout;
  s.rtt_ns.reset();
  s.agent_time_ns.reset();
  s.error = "deadline exceeded";
  p = QueryHandler::SampleToProto(store, s);
  EXPECT_EQ(p.result(), v1::SAMPLE_RESULT_TIMEOUT);
  EXPECT_FALSE(p.has_rtt_ms());
  EXPECT_FALSE(p.has_network_rtt_ms());
  EXPECT_EQ(p.error(), "deadline exceeded");
  EXPECT_THAT(ToJson(p), HasSubstr("\"rtt_ms\":null"));
}

}  // namespace
}  // namespace latency
