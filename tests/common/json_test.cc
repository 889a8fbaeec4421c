#include "common/json.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.pb.h"

namespace latency {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// protobuf's own parser must read our output back into an equal message.
template <typename M>
void ExpectRoundTrip(const M& message) {
  std::string json = ToJson(message);
  M parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status =
      google::protobuf::util::JsonStringToMessage(json, &parsed, options);
  ASSERT_TRUE(status.ok()) << status << "\n" << json;
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(message, parsed))
      << json << "\n"
      << parsed.DebugString();
}

TEST(ToJsonTest, OriginalContractFirstAndNullsForMissingData) {
  v1::GetLatencyResponse response;
  response.set_latency_ms(0.34);
  response.set_status("ok");
  std::string json = ToJson(response);
  EXPECT_THAT(json, StartsWith(R"({"latency_ms":0.34,"status":"ok",)"));
  EXPECT_THAT(json, HasSubstr(R"("grpc_latency_ms":null)"));
  EXPECT_THAT(json, HasSubstr(R"("targets":[])"));
  v1::GetLatencyResponse empty;
  EXPECT_THAT(ToJson(empty), StartsWith(R"({"latency_ms":null,"status":"",)"));
  ExpectRoundTrip(response);
  ExpectRoundTrip(empty);
}

TEST(ToJsonTest, EveryKindOfFieldRoundTrips) {
  v1::GetTargetStatsResponse stats;
  stats.mutable_target()->set_name("a \"quoted\"\\ name\n\x01 ünï");
  stats.mutable_target()->set_grpc_port(50051);
  v1::ProbeSummary* probe = stats.mutable_target()->add_probes();
  probe->set_kind(v1::PROBE_KIND_GRPC);
  probe->set_consecutive_failures(4294967295u);
  probe->set_last_rtt_ms(0.1);
  probe->set_age_ms(1e-9);
  v1::ProbeStats* p = stats.add_probes();
  p->set_sent(3);
  p->set_p999_ms(123456789.123456789);
  p->set_min_ms(0);  // present zero stays 0, not null
  (*p->mutable_failures())["timeout"] = 2;
  (*p->mutable_failures())["unreachable"] = 1;
  p->set_timestamp_source(v1::TIMESTAMP_SOURCE_KERNEL);
  std::string json = ToJson(stats);
  EXPECT_THAT(json, HasSubstr(R"("min_ms":0,)"));
  EXPECT_THAT(json, HasSubstr(R"("mean_ms":null)"));
  // 32-bit counts are numbers; 64-bit integers are strings (proto3 JSON).
  EXPECT_THAT(json, HasSubstr(R"("consecutive_failures":4294967295,)"));
  v1::Sample sample;
  sample.set_sequence(18446744073709551615ull);
  EXPECT_THAT(ToJson(sample),
              HasSubstr(R"("sequence":"18446744073709551615")"));
  ExpectRoundTrip(sample);
  EXPECT_THAT(json,
              HasSubstr(R"("timestamp_source":"TIMESTAMP_SOURCE_KERNEL")"));
  ExpectRoundTrip(stats);

  v1::WatchResponse watch;
  *watch.mutable_sample()->mutable_scheduled_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          1'767'225'600'123'456'789);
  watch.mutable_sample()->set_rtt_ms(1.5);
  EXPECT_THAT(
      ToJson(watch),
      HasSubstr(R"("scheduled_time":"2026-01-01T00:00:00.123456789Z")"));
  ExpectRoundTrip(watch);
}

TEST(ToJsonTest, NonFiniteDoublesUseTheMappingStrings) {
  v1::ProbeStats p;
  p.set_max_ms(std::numeric_limits<double>::infinity());
  p.set_min_ms(std::nan(""));
  std::string json = ToJson(p);
  EXPECT_THAT(json, HasSubstr(R"("max_ms":"Infinity")"));
  EXPECT_THAT(json, HasSubstr(R"("min_ms":"NaN")"));
}

// Protobuf's own printer writes "InvalidTime" for a Timestamp outside
// 0001..9999 (or with nanos outside [0, 1e9)), which no JSON parser takes
// back; such a value is as unknown as an unset one, so it prints as null.
// (latencyctl prints whatever a server sends; the fuzzer found this.)
TEST(ToJsonTest, OutOfRangeTimestampsAndDurationsAreNull) {
  v1::Sample sample;
  sample.mutable_scheduled_time()->set_seconds(
      google::protobuf::util::TimeUtil::kTimestampMaxSeconds + 1);
  EXPECT_THAT(ToJson(sample), HasSubstr(R"("scheduled_time":null,)"));
  sample.mutable_scheduled_time()->set_seconds(0);
  sample.mutable_scheduled_time()->set_nanos(-1);
  EXPECT_THAT(ToJson(sample), HasSubstr(R"("scheduled_time":null,)"));

  v1::Sample parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(ToJson(sample), &parsed)
          .ok());
  EXPECT_FALSE(parsed.has_scheduled_time());

  sample.mutable_scheduled_time()->set_nanos(999'999'999);
  ExpectRoundTrip(sample);  // the edges are valid

  v1::GetHistoryResponse history;
  history.mutable_step()->set_seconds(
      google::protobuf::util::TimeUtil::kDurationMaxSeconds + 1);
  EXPECT_THAT(ToJson(history), HasSubstr(R"("step":null,)"));
  history.mutable_step()->set_seconds(60);
  EXPECT_THAT(ToJson(history), HasSubstr(R"("step":"60s",)"));
}

}  // namespace
}  // namespace latency
