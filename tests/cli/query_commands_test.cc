#include "cli/query_commands.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cli/latencyctl.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "latency/v1/latency.grpc.pb.h"

namespace latency {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// Canned responses.

template <typename Message>
Message ParseText(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

// t1: both probes ok with values.
v1::TargetSummary HealthyTarget() {
  return ParseText<v1::TargetSummary>(R"pb(
    name: "t1"
    host: "agent-1.local"
    address: "127.0.0.1"
    grpc_port: 50051
    status: "ok"
    probes {
      kind: PROBE_KIND_ICMP
      enabled: true
      status: "ok"
      last_rtt_ms: 0.345
      age_ms: 120
    }
    probes {
      kind: PROBE_KIND_GRPC
      enabled: true
      status: "ok"
      last_rtt_ms: 1.2345
      last_network_rtt_ms: 1.2
      age_ms: 340
    }
  )pb");
}

// t2: ICMP only (no gRPC port), down, never answered: no values at all.
v1::TargetSummary DownTarget() {
  return ParseText<v1::TargetSummary>(R"pb(
    name: "t2"
    host: "10.0.0.9"
    address: "10.0.0.9"
    status: "down"
    probes {
      kind: PROBE_KIND_ICMP
      enabled: true
      status: "down"
      age_ms: 2500
      consecutive_failures: 5
      last_error: "timeout"
    }
    probes { kind: PROBE_KIND_GRPC enabled: false }
  )pb");
}

v1::ListTargetsResponse TwoTargets() {
  v1::ListTargetsResponse response;
  *response.add_targets() = HealthyTarget();
  *response.add_targets() = DownTarget();
  return response;
}

v1::GetLatencyResponse DegradedLatency() {
  v1::GetLatencyResponse response;
  response.set_status("down");
  response.set_target("t1");
  response.set_latency_ms(0.345);
  response.set_icmp_status("ok");
  response.set_grpc_latency_ms(1.2345);
  response.set_grpc_network_latency_ms(1.2);
  response.set_grpc_status("ok");
  response.set_age_ms(120);
  *response.mutable_targets() = TwoTargets().targets();
  return response;
}

v1::GetTargetStatsResponse HealthyStats() {
  v1::GetTargetStatsResponse response = ParseText<v1::GetTargetStatsResponse>(
      R"pb(
        window: "5m"
        probes {
          kind: PROBE_KIND_ICMP
          status: "ok"
          sent: 300
          received: 297
          lost: 3
          loss_percent: 1.0
          last_ms: 0.345
          min_ms: 0.2
          mean_ms: 0.35
          max_ms: 1.5
          stddev_ms: 0.05
          jitter_ms: 0.02
          p50_ms: 0.34
          p90_ms: 0.41
          p99_ms: 0.9
          p999_ms: 1.5
          failures { key: "unreachable" value: 1 }
          failures { key: "timeout" value: 2 }
        }
        # No completed probe: every value absent.
        probes { kind: PROBE_KIND_GRPC status: "unknown" }
      )pb");
  *response.mutable_target() = HealthyTarget();
  return response;
}

v1::Sample MakeSample(const std::string& target, v1::ProbeKind kind,
                      uint64_t sequence, bool ok) {
  v1::Sample sample;
  sample.set_target(target);
  sample.set_kind(kind);
  sample.set_sequence(sequence);
  sample.mutable_scheduled_time()->set_seconds(1'700'000'000 + sequence);
  sample.mutable_scheduled_time()->set_nanos(123'000'000);
  if (ok) {
    sample.set_result(v1::SAMPLE_RESULT_OK);
    sample.set_rtt_ms(0.5 + sequence);
    if (kind == v1::PROBE_KIND_GRPC) sample.set_network_rtt_ms(0.25 + sequence);
  } else {
    sample.set_result(v1::SAMPLE_RESULT_TIMEOUT);
    sample.set_error("no reply within 1s");
  }
  return sample;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// ---------------------------------------------------------------------------
// Pure formatting.

TEST(FormatStatusTableTest, SummaryThenOneRowPerTarget) {
  EXPECT_EQ(FormatStatusTable(DegradedLatency()),
            "status      down\n"
            "target      t1\n"
            "latency_ms  0.345  (icmp ok)\n"
            "grpc_ms     1.234  (grpc ok)\n"
            "network_ms  1.200\n"
            "age         120ms\n"
            "\n"
            "NAME  STATUS  ICMP_MS  GRPC_MS  NET_MS  AGE\n"
            "t1    ok      0.345    1.234    1.200   340ms\n"
            "t2    down    -        -        -       2.5s\n");
}

TEST(FormatStatusTableTest, SaysHowManyTargetsItLeftOut) {
  v1::GetLatencyResponse response = DegradedLatency();
  response.set_target_count(response.targets_size());
  EXPECT_THAT(FormatStatusTable(response), Not(HasSubstr("more targets")));
  response.set_target_count(response.targets_size() + 998);
  EXPECT_THAT(FormatStatusTable(response),
              HasSubstr("\n... 998 more targets, worst first above "
                        "(`latencyctl targets` lists every one)\n"));
}

TEST(FormatStatusTableTest, AbsentValuesAreDashesNeverZero) {
  v1::GetLatencyResponse response;
  response.set_status("unknown");
  std::string table = FormatStatusTable(response);
  EXPECT_EQ(table,
            "status      unknown\n"
            "target      -\n"
            "latency_ms  -  (icmp -)\n"
            "grpc_ms     -  (grpc -)\n"
            "network_ms  -\n"
            "age         -\n"
            "\n"
            "NAME  STATUS  ICMP_MS  GRPC_MS  NET_MS  AGE\n");
  EXPECT_THAT(table, Not(HasSubstr("0.000")));
}

TEST(FormatTargetsTableTest, AlignedColumnsAndLastErrors) {
  EXPECT_EQ(FormatTargetsTable(TwoTargets()),
            "NAME  HOST           ADDRESS    PORT   STATUS  ICMP_MS  GRPC_MS  "
            "NET_MS  AGE    LAST_ERROR\n"
            "t1    agent-1.local  127.0.0.1  50051  ok      0.345    1.234    "
            "1.200   340ms  -\n"
            "t2    10.0.0.9       10.0.0.9   -      down    -        -        "
            "-       2.5s   icmp: timeout\n");
}

TEST(FormatTargetsTableTest, NoTargetsIsJustTheHeader) {
  EXPECT_THAT(Lines(FormatTargetsTable(v1::ListTargetsResponse())),
              ElementsAre(StartsWith("NAME  HOST")));
}

TEST(FormatStatsTableTest, OneRowPerKindAndSortedFailures) {
  EXPECT_EQ(FormatStatsTable(HealthyStats()),
            "target t1 (127.0.0.1)  status ok  window 5m  (times in ms)\n"
            "\n"
            "KIND  STATUS   SENT  RECV  LOSS%  LAST   MIN    MEAN   MAX    "
            "STDDEV  JITTER  P50    P90    P99    P99.9  NET_P50\n"
            "icmp  ok       300   297   1.0    0.345  0.200  0.350  1.500  "
            "0.050   0.020   0.340  0.410  0.900  1.500  -\n"
            "grpc  unknown  0     0     -      -      -      -      -      "
            "-       -       -      -      -      -      -\n"
            "\n"
            "percentiles: icmp from the histogram (within 0.1%)\n"
            "failures:\n"
            "  icmp: timeout=2, unreachable=1\n");
}

TEST(FormatStatsTableTest, SaysWhichPercentilesAreExact) {
  v1::GetTargetStatsResponse response = HealthyStats();
  response.mutable_probes(0)->set_percentiles_exact(true);
  v1::ProbeStats* grpc = response.mutable_probes(1);
  grpc->set_p50_ms(0.6);
  EXPECT_THAT(FormatStatsTable(response),
              HasSubstr("\npercentiles: icmp exact (the window's samples), "
                        "grpc from the histogram (within 0.1%)\n"));
}

TEST(FormatStatsTableTest, NoFailures) {
  v1::GetTargetStatsResponse response = HealthyStats();
  response.mutable_probes(0)->clear_failures();
  EXPECT_THAT(FormatStatsTable(response), HasSubstr("\nfailures: none\n"));
}

TEST(FormatWatchLineTest, OkAndFailedSamples) {
  absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(FormatWatchHeader(),
            "TIME                     TARGET        KIND  RESULT           "
            "RTT_MS     NET_MS  ERROR\n");
  EXPECT_EQ(
      FormatWatchLine(MakeSample("t1", v1::PROBE_KIND_GRPC, 1, true), utc),
      "2023-11-14 22:13:21.123  t1            grpc  ok                "
      "1.500      1.250\n");
  EXPECT_EQ(
      FormatWatchLine(MakeSample("t2", v1::PROBE_KIND_ICMP, 2, false), utc),
      "2023-11-14 22:13:22.123  t2            icmp  timeout               -  "
      "        -  no reply within 1s\n");
  EXPECT_THAT(FormatWatchLine(v1::Sample(), utc),
              StartsWith("-                        -             -     -   "));
}

TEST(FormatAgeTest, Units) {
  EXPECT_EQ(FormatAge(0), "0ms");
  EXPECT_EQ(FormatAge(350.4), "350ms");
  EXPECT_EQ(FormatAge(999.7), "1.0s");

  EXPECT_EQ(FormatAge(2500), "2.5s");
  EXPECT_EQ(FormatAge(185'000), "3m05s");
}

TEST(FormatJsonTest, AbsentOptionalFieldsAreNullOthersPrinted) {
  v1::GetLatencyResponse response = ParseText<v1::GetLatencyResponse>(R"pb(
    status: "down"
    targets {
      name: "t2"
      probes { kind: PROBE_KIND_ICMP enabled: true status: "down" }
    }
  )pb");
  std::string json = FormatJson(response);
  EXPECT_THAT(json, HasSubstr("\"status\":\"down\""));
  EXPECT_THAT(json, HasSubstr("\"target\":\"\""));  // primitives always
  EXPECT_THAT(json, HasSubstr("\"kind\":\"PROBE_KIND_ICMP\""));
  EXPECT_THAT(json, HasSubstr("\"consecutive_failures\":0"));
  // No data is null, as the HTTP gateway prints it, never 0 or missing.
  EXPECT_THAT(json, HasSubstr("\"latency_ms\":null"));
  EXPECT_THAT(json, HasSubstr("\"last_rtt_ms\":null"));
  EXPECT_THAT(json, Not(HasSubstr("\n")));
  v1::GetLatencyResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_FALSE(parsed.has_latency_ms());
  EXPECT_EQ(parsed.targets(0).probes(0).status(), "down");
}

TEST(FormatJsonTest, PresentZeroIsPrinted) {
  v1::GetLatencyResponse response;
  response.set_latency_ms(0);  // a real 0 differs from no data
  EXPECT_THAT(FormatJson(response), HasSubstr("\"latency_ms\":0"));
}

TEST(FormatJsonTest, UnknownEnumNumbersStayParseable) {
  // A newer server may send a result this build does not know.
  v1::WatchResponse response;
  response.mutable_sample()->set_result(static_cast<v1::SampleResult>(65));
  std::string json = FormatJson(response);
  EXPECT_THAT(json, HasSubstr("\"result\":65"));
  v1::WatchResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok())
      << json;
  EXPECT_EQ(parsed.sample().result(), 65);
}

TEST(FormatMatrixTableTest, SourcesByTargetsWithStatusWhereNoRtt) {
  // Source a probes t1 (ok) and t2 (down); b probes t1 degraded and t3.
  MatrixRow a{"10.0.1.5:50052", TwoTargets()};
  a.targets.set_source("zone-a");
  MatrixRow b{"10.0.2.5:50052", {}};
  v1::TargetSummary degraded = HealthyTarget();
  degraded.mutable_probes(0)->set_status("degraded");
  degraded.mutable_probes(0)->set_last_rtt_ms(2.5);
  *b.targets.add_targets() = degraded;
  v1::TargetSummary t3 = HealthyTarget();
  t3.set_name("t3");
  *b.targets.add_targets() = t3;
  // No source: the row is named by the address it was asked at.
  EXPECT_EQ(FormatMatrixTable({a, b}, v1::PROBE_KIND_UNSPECIFIED),
            "latest ICMP RTT (ms) from each source (row) to each target "
            "(column); - not probed\n"
            "SOURCE \\ TARGET  t1      t2    t3\n"
            "zone-a           0.345   down  -\n"
            "10.0.2.5:50052   2.500*  -     0.345\n"
            "* not ok (degraded or stale): latencyctl status --server=... says "
            "why\n");
  // gRPC: t2 has no gRPC probe.
  EXPECT_THAT(FormatMatrixTable({a}, v1::PROBE_KIND_GRPC),
              HasSubstr("zone-a           1.234  -\n"));
  EXPECT_EQ(MatrixExitCode({a}, v1::PROBE_KIND_ICMP), 1);
  EXPECT_EQ(MatrixExitCode({a}, v1::PROBE_KIND_GRPC), 0);
  EXPECT_EQ(MatrixExitCode({b}, v1::PROBE_KIND_ICMP), 1);
}

TEST(FormatMatrixJsonTest, OneParsableObjectPerProbedCell) {
  MatrixRow a{"10.0.1.5:50052", TwoTargets()};
  a.targets.set_source("zone \"a\"");
  std::vector<std::string> lines =
      Lines(FormatMatrixJson({a}, v1::PROBE_KIND_ICMP));
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(lines[0],
            absl::StrCat("{\"source\":\"zone \\\"a\\\"\",\"server\":"
                         "\"10.0.1.5:50052\",\"target\":\"t1\",\"probe\":",
                         FormatJson(HealthyTarget().probes(0)), "}"));
  google::protobuf::Struct parsed;
  for (const std::string& line : lines) {
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok())
        << line;
  }
  EXPECT_EQ(parsed.fields()
                .at("probe")
                .struct_value()
                .fields()
                .at("status")
                .string_value(),
            "down");
}

TEST(ExitCodeTest, OkOnlyWhenEverythingIsOk) {
  v1::GetLatencyResponse latency;
  latency.set_status("ok");
  EXPECT_EQ(StatusExitCode(latency), 0);
  for (const char* status : {"unknown", "degraded", "down", "stale", ""}) {
    latency.set_status(status);
    EXPECT_EQ(StatusExitCode(latency), 1) << status;
  }

  v1::ListTargetsResponse targets;
  EXPECT_EQ(TargetsExitCode(targets), 0);
  *targets.add_targets() = HealthyTarget();
  EXPECT_EQ(TargetsExitCode(targets), 0);
  *targets.add_targets() = DownTarget();
  EXPECT_EQ(TargetsExitCode(targets), 1);

  v1::GetTargetStatsResponse stats = HealthyStats();
  EXPECT_EQ(StatsExitCode(stats), 0);
  stats.mutable_target()->set_status("stale");
  EXPECT_EQ(StatsExitCode(stats), 1);
}

TEST(ExitCodeTest, StatusOfANamedTargetIgnoresTheOthers) {
  v1::GetLatencyResponse latency;
  latency.set_status("down");  // the overall status: the worst target
  *latency.add_targets() = HealthyTarget();
  *latency.add_targets() = DownTarget();
  const std::string healthy = latency.targets(0).name();
  const std::string down = latency.targets(1).name();
  EXPECT_EQ(StatusExitCode(latency, healthy), 0);
  EXPECT_EQ(StatusExitCode(latency, down), 1);
  EXPECT_EQ(StatusExitCode(latency), 1);
}

TEST(FlagAliasTest, OldSpellingsBecomeTheSharedNames) {
  EXPECT_EQ(RewriteFlagAliases({"latencyctl", "echo", "a:1", "--c=3", "-c", "4",
                                "--token_file=t", "--count=2", "--", "--c=9"}),
            (std::vector<std::string>{"latencyctl", "echo", "a:1", "--count=3",
                                      "--count", "4", "--auth_token_file=t",
                                      "--count=2", "--", "--c=9"}));
}

// ---------------------------------------------------------------------------
// A fake latency-server.

// Answers a unary call only when the client gives up (deadline or cancel).
class HangingReactor : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }
};

// Writes `samples`, then finishes unless `hold_open`, in which case it
// waits for the client to cancel.
class SampleWriter : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  SampleWriter(std::vector<v1::Sample> samples, bool hold_open,
               absl::Notification* all_written = nullptr)
      : samples_(std::move(samples)),
        hold_open_(hold_open),
        all_written_(all_written) {
    absl::MutexLock lock(&mu_);
    NextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    NextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override { delete this; }

 private:
  void NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
    } else if (next_ < samples_.size()) {
      *response_.mutable_sample() = samples_[next_++];
      writing_ = true;
      StartWrite(&response_);
    } else if (!hold_open_) {
      FinishLocked(grpc::Status::OK);
    } else if (all_written_ != nullptr && !all_written_->HasBeenNotified()) {
      all_written_->Notify();
    }
  }

  void FinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  const std::vector<v1::Sample> samples_;
  const bool hold_open_;
  absl::Notification* const all_written_;
  v1::WatchResponse response_;
  absl::Mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Knows targets t1 (ok) and t2 (down). Target "slow" never answers
// GetLatency; windows other than 1m/5m/15m/1h are INVALID_ARGUMENT; Watch
// streams three samples, then ends or, with hold_watch_open, notifies
// watch_written and waits for the client to cancel.
class FakeLatencyService final : public v1::LatencyService::CallbackService {
 public:
  bool hold_watch_open = false;
  absl::Notification watch_written;

  grpc::ServerUnaryReactor* GetLatency(
      grpc::CallbackServerContext* context,
      const v1::GetLatencyRequest* request,
      v1::GetLatencyResponse* response) override {
    if (request->target() == "slow") return new HangingReactor();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->target() == "locked") {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token"));
      return reactor;
    }
    if (!request->target().empty() && !Known(request->target())) {
      reactor->Finish(NotFound(request->target()));
    } else {
      *response = DegradedLatency();
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* ListTargets(
      grpc::CallbackServerContext* context,
      const v1::ListTargetsRequest* request,
      v1::ListTargetsResponse* response) override {
    // One target per page, so latencyctl must follow next_page_token.
    const bool second = request->page_token() == "page-2";
    *response->add_targets() = TwoTargets().targets(second ? 1 : 0);
    response->set_total_size(2);
    if (!second) response->set_next_page_token("page-2");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetTargetStats(
      grpc::CallbackServerContext* context,
      const v1::GetTargetStatsRequest* request,
      v1::GetTargetStatsResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    const std::string& window = request->window();
    if (!Known(request->target())) {
      reactor->Finish(NotFound(request->target()));
    } else if (window != "" && window != "1m" && window != "5m" &&
               window != "15m" && window != "1h") {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "window: want 1m, 5m, 15m or 1h"));
    } else {
      *response = HealthyStats();
      response->set_window(window);
      if (request->target() == "t2") *response->mutable_target() = DownTarget();
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(
      grpc::CallbackServerContext*, const v1::WatchRequest* request) override {
    {
      absl::MutexLock lock(&mu_);
      last_watch_ = *request;
    }
    if (!request->target().empty() && !Known(request->target())) {
      auto* reactor = new SampleWriter({}, /*hold_open=*/true);
      reactor->Finish(NotFound(request->target()));
      return reactor;
    }
    return new SampleWriter({MakeSample("t1", v1::PROBE_KIND_ICMP, 1, true),
                             MakeSample("t1", v1::PROBE_KIND_GRPC, 1, true),
                             MakeSample("t2", v1::PROBE_KIND_ICMP, 1, false)},
                            hold_watch_open, &watch_written);
  }

  v1::WatchRequest last_watch() {
    absl::MutexLock lock(&mu_);
    return last_watch_;
  }

 private:
  static bool Known(const std::string& target) {
    return target == "t1" || target == "t2";
  }
  static grpc::Status NotFound(const std::string& target) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown target '", target, "'"));
  }

  absl::Mutex mu_;
  v1::WatchRequest last_watch_ ABSL_GUARDED_BY(mu_);
};

class QueryEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    options_.server = absl::StrCat("127.0.0.1:", port);
    options_.timeout = absl::Seconds(10);
  }

  void TearDown() override { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(options_.server,
                               grpc::InsecureChannelCredentials());
  }

  FakeLatencyService service_;
  std::unique_ptr<grpc::Server> server_;
  QueryOptions options_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(QueryEndToEndTest, StatusPrintsTableAndExitsOneWhenNotOk) {
  EXPECT_EQ(RunStatus(options_, Channel(), out_, err_), 1);
  EXPECT_EQ(out_.str(), FormatStatusTable(DegradedLatency()));
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, StatusJsonIsOneParsableObject) {
  options_.output = OutputFormat::kJson;
  EXPECT_EQ(RunStatus(options_, Channel(), out_, err_), 1);
  std::vector<std::string> lines = Lines(out_.str());
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("\"latency_ms\":0.345"));
  v1::GetLatencyResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(lines[0], &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), DegradedLatency().SerializeAsString());
}

TEST_F(QueryEndToEndTest, UnauthenticatedSaysTokenRejected) {
  options_.target = "locked";
  EXPECT_EQ(RunStatus(options_, Channel(), out_, err_), 2);
  EXPECT_THAT(err_.str(),
              StartsWith("latencyctl: token rejected by latency-server at "));
  EXPECT_THAT(err_.str(), HasSubstr("--auth_token_file"));
}

TEST_F(QueryEndToEndTest, RefusesToSendTheTokenInClear) {
  std::string token = ::testing::TempDir() + "/query_commands_test.token";
  std::ofstream(token) << "secret\n";
  CliConfig config;
  config.server = options_.server;
  config.token_file = token;
  EXPECT_EQ(RunLatencyctl({"targets"}, config, out_, err_, nullptr), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--auth_token_file: refusing to send the "
                                    "token in clear"));
  EXPECT_THAT(out_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, UnknownTargetExitsTwo) {
  options_.target = "nope";
  using Command = std::function<int(std::ostream&, std::ostream&)>;
  for (const Command& command :
       std::vector<Command>{[&](std::ostream&out, std::ostream&err) {
                              return RunStatus(options_, Channel(), out, err);
                            },
                            [&](std::ostream&out, std::ostream&err) {
                              return RunStats(options_, Channel(), out, err);
                            },
                            [&](std::ostream&out, std::ostream&err) {
                              return RunWatch(options_, Channel(), out, err);
                            }}) {
    std::ostringstream out, err;
    EXPECT_EQ(command(out, err), 2);
    EXPECT_EQ(err.str(), "latencyctl: unknown target nope\n");
    EXPECT_THAT(out.str(), Not(HasSubstr("nope")));
  }
}

TEST_F(QueryEndToEndTest, DeadlineIsTheTimeoutFlag) {
  options_.target = "slow";
  options_.timeout = absl::Milliseconds(200);
  EXPECT_EQ(RunStatus(options_, Channel(), out_, err_), 2);
  EXPECT_EQ(err_.str(),
            absl::StrCat("latencyctl: cannot reach latency-server "
                         "at ",
                         options_.server,
                         ": DEADLINE_EXCEEDED: Deadline Exceeded\n"));
}

TEST_F(QueryEndToEndTest, MatrixAsksEveryServerAndNamesTheOneThatFailed) {
  std::vector<std::pair<std::string, std::shared_ptr<grpc::ChannelInterface>>>
      servers = {{options_.server, Channel()},
                 {"127.0.0.1:1",
                  grpc::CreateChannel("127.0.0.1:1",
                                      grpc::InsecureChannelCredentials())}};
  EXPECT_EQ(RunMatrix(options_, servers, out_, err_), 2);
  v1::ListTargetsResponse both = TwoTargets();
  EXPECT_EQ(out_.str(), FormatMatrixTable({MatrixRow{options_.server, both}},
                                          v1::PROBE_KIND_ICMP));
  EXPECT_THAT(err_.str(), StartsWith("latencyctl: cannot reach latency-server "
                                     "at 127.0.0.1:1: UNAVAILABLE"));
  std::ostringstream out, err;
  EXPECT_EQ(RunMatrix(options_, {servers[0]}, out, err), 1);  // t2 is down
}

TEST_F(QueryEndToEndTest, TargetsTableAndJsonCoverEveryPage) {
  v1::ListTargetsResponse both = TwoTargets();
  both.set_total_size(2);
  EXPECT_EQ(RunTargets(options_, Channel(), out_, err_), 1);
  EXPECT_EQ(out_.str(), FormatTargetsTable(both));

  std::ostringstream json;
  options_.output = OutputFormat::kJson;
  EXPECT_EQ(RunTargets(options_, Channel(), json, err_), 1);
  v1::ListTargetsResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.str(), &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), both.SerializeAsString());
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, StatsOfOkTargetExitsZero) {
  options_.target = "t1";
  options_.window = "15m";
  EXPECT_EQ(RunStats(options_, Channel(), out_, err_), 0);
  EXPECT_THAT(out_.str(), StartsWith("target t1 (127.0.0.1)  status ok  "
                                     "window 15m"));
  EXPECT_THAT(out_.str(), HasSubstr("icmp: timeout=2, unreachable=1"));
}

TEST_F(QueryEndToEndTest, StatsOfDownTargetExitsOne) {
  options_.target = "t2";
  EXPECT_EQ(RunStats(options_, Channel(), out_, err_), 1);
  EXPECT_THAT(out_.str(), StartsWith("target t2 (10.0.0.9)  status down"));
}

TEST_F(QueryEndToEndTest, StatsJsonKeepsAbsentFieldsAbsent) {
  options_.target = "t1";
  options_.output = OutputFormat::kJson;
  EXPECT_EQ(RunStats(options_, Channel(), out_, err_), 0);
  v1::GetTargetStatsResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(out_.str(), &parsed).ok());
  ASSERT_THAT(parsed.probes(), SizeIs(2));
  EXPECT_TRUE(parsed.probes(0).has_p99_ms());
  EXPECT_FALSE(parsed.probes(1).has_p99_ms());
  EXPECT_FALSE(parsed.probes(1).has_loss_percent());
}

TEST_F(QueryEndToEndTest, StatsWithBadWindowExitsTwo) {
  options_.target = "t1";
  options_.window = "7m";
  EXPECT_EQ(RunStats(options_, Channel(), out_, err_), 2);
  EXPECT_EQ(err_.str(),
            "latencyctl: invalid request: window: want 1m, 5m, 15m or 1h\n");
}

TEST_F(QueryEndToEndTest, WatchPrintsEverySampleUntilTheStreamEnds) {
  EXPECT_EQ(RunWatch(options_, Channel(), out_, err_), 0);
  std::vector<std::string> lines = Lines(out_.str());
  ASSERT_THAT(lines, SizeIs(4)) << out_.str();
  EXPECT_EQ(lines[0] + "\n", FormatWatchHeader());
  EXPECT_THAT(lines[1], HasSubstr("  t1            icmp  ok"));
  EXPECT_THAT(lines[2], HasSubstr("  t1            grpc  ok"));
  EXPECT_THAT(lines[3], HasSubstr("timeout"));
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, WatchSendsTheFilter) {
  options_.target = "t1";
  options_.kind = v1::PROBE_KIND_GRPC;
  EXPECT_EQ(RunWatch(options_, Channel(), out_, err_), 0);
  v1::WatchRequest request = service_.last_watch();
  EXPECT_EQ(request.target(), "t1");
  EXPECT_EQ(request.kind(), v1::PROBE_KIND_GRPC);
}

TEST_F(QueryEndToEndTest, WatchJsonIsOneObjectPerSample) {
  options_.output = OutputFormat::kJson;
  EXPECT_EQ(RunWatch(options_, Channel(), out_, err_), 0);
  std::vector<std::string> lines = Lines(out_.str());
  ASSERT_THAT(lines, SizeIs(3)) << out_.str();
  for (const std::string& line : lines) {
    v1::WatchResponse parsed;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok())
        << line;
  }
  EXPECT_THAT(lines[0], HasSubstr("\"rtt_ms\":1.5"));
  EXPECT_THAT(lines[2], HasSubstr("\"rtt_ms\":null"));  // timeout: no data
  EXPECT_THAT(lines[2], HasSubstr("\"result\":\"SAMPLE_RESULT_TIMEOUT\""));
}

TEST_F(QueryEndToEndTest, WatchStopsAfterCount) {
  service_.hold_watch_open = true;
  options_.count = 2;
  EXPECT_EQ(RunWatch(options_, Channel(), out_, err_), 0);
  EXPECT_THAT(Lines(out_.str()), SizeIs(3)) << out_.str();  // header + 2
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, WatchStopsCleanlyWhenAsked) {
  service_.hold_watch_open = true;  // the stream would never end by itself
  std::atomic<bool> stop{false};
  int code = -1;
  std::thread watcher(
      [&] { code = RunWatch(options_, Channel(), out_, err_, &stop); });
  service_.watch_written.WaitForNotification();
  stop = true;
  watcher.join();
  EXPECT_EQ(code, 0);
  EXPECT_THAT(err_.str(), IsEmpty());
}

TEST_F(QueryEndToEndTest, LatencyctlRunsACommandAgainstTheServer) {
  CliConfig config;
  config.server = options_.server;
  config.output = "json";
  EXPECT_EQ(RunLatencyctl({"targets"}, config, out_, err_, nullptr), 1);
  EXPECT_THAT(out_.str(), StartsWith("{\"targets\":[{\"name\":\"t1\""));
  std::ostringstream stats_out;
  EXPECT_EQ(RunLatencyctl({"stats", "t1"}, config, stats_out, err_, nullptr),
            0);
  // The same default as the server without ?window: one window everywhere.
  EXPECT_THAT(stats_out.str(), HasSubstr("\"window\":\"1m\""));
  EXPECT_THAT(err_.str(), IsEmpty());
}

// ---------------------------------------------------------------------------
// No server.

TEST(UnreachableServerTest, EveryCommandExitsTwoWithTheAddress) {
  QueryOptions options;
  options.server = "127.0.0.1:1";  // nothing listens on port 1 here
  options.target = "t1";
  options.timeout = absl::Seconds(5);
  auto channel =
      grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials());
  using Command =
      int (*)(const QueryOptions&, std::shared_ptr<grpc::ChannelInterface>,
              std::ostream&, std::ostream&);
  for (Command command : {&RunStatus, &RunTargets, &RunStats}) {
    std::ostringstream out, err;
    EXPECT_EQ(command(options, channel, out, err), 2);
    EXPECT_THAT(err.str(),
                StartsWith("latencyctl: cannot reach latency-server at "
                           "127.0.0.1:1: UNAVAILABLE"));
    EXPECT_THAT(out.str(), IsEmpty());
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunWatch(options, channel, out, err), 2);
  EXPECT_THAT(err.str(), StartsWith("latencyctl: cannot reach latency-server "
                                    "at 127.0.0.1:1: UNAVAILABLE"));
}

// ---------------------------------------------------------------------------
// Usage errors: no call is made.

struct UsageCase {
  std::vector<std::string> args;
  void (*edit)(CliConfig*);  // sets the bad flag, if any
  std::string problem;
};

void NoFlags(CliConfig*) {}

class UsageTest : public ::testing::TestWithParam<UsageCase> {};

TEST_P(UsageTest, PrintsProblemAndUsageAndExitsTwo) {
  CliConfig config;
  config.server = "127.0.0.1:1";
  GetParam().edit(&config);
  std::ostringstream out, err;
  EXPECT_EQ(RunLatencyctl(GetParam().args, config, out, err, nullptr), 2);
  EXPECT_THAT(err.str(), StartsWith("latencyctl: " + GetParam().problem));
  EXPECT_THAT(err.str(), HasSubstr("Usage: latencyctl COMMAND"));
  EXPECT_THAT(out.str(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    BadInvocations, UsageTest,
    ::testing::Values(
        UsageCase{{}, &NoFlags, "missing COMMAND"},
        UsageCase{{"frob"}, &NoFlags, "unknown command 'frob'"},
        UsageCase{{"stats"}, &NoFlags, "stats takes one TARGET"},
        UsageCase{{"targets", "t1"}, &NoFlags, "targets takes no arguments"},
        UsageCase{
            {"status", "a", "b"}, &NoFlags, "too many arguments to status"},
        UsageCase{{"status"},
                  [](CliConfig* c) { c->output = "xml"; },
                  "--output: want table or json, not 'xml'"},
        UsageCase{{"watch"},
                  [](CliConfig* c) { c->kind = "udp"; },
                  "--kind: want icmp, grpc or all, not 'udp'"},
        UsageCase{{"watch"},
                  [](CliConfig* c) { c->count = -1; },
                  "--count must not be negative"},
        UsageCase{{"targets"},
                  [](CliConfig* c) { c->timeout = absl::ZeroDuration(); },
                  "--timeout must be positive"},
        UsageCase{{"echo", "a:1"},
                  [](CliConfig* c) { c->mode = "bidi"; },
                  "--mode: want unary or stream"},
        UsageCase{{"echo"}, &NoFlags, "echo takes one AGENT"},
        UsageCase{{"echo", "a:1"},
                  [](CliConfig* c) { c->count = -1; },
                  "--count must not be negative"},
        UsageCase{{"echo", "a:1"},
                  [](CliConfig* c) { c->interval = absl::ZeroDuration(); },
                  "--interval must be positive"},
        UsageCase{{"echo", "a:1"},
                  [](CliConfig* c) { c->interval = -absl::Seconds(1); },
                  "--interval must be positive"},
        UsageCase{{"echo", "a:1"},
                  [](CliConfig* c) { c->output = "xml"; },
                  "--output: want table or json, not 'xml'"}));

TEST(UsageTextTest, NamesOnlyFlagsThatExistAndWhatJsonPrints) {
  EXPECT_THAT(kLatencyctlUsage, HasSubstr("null means no data"));
  EXPECT_THAT(kLatencyctlUsage, Not(HasSubstr("absent")));
  EXPECT_THAT(kLatencyctlUsage, Not(HasSubstr("--c=")));
  EXPECT_THAT(kLatencyctlUsage, Not(HasSubstr("--token_file")));
  EXPECT_THAT(kLatencyctlUsage, HasSubstr("--count=10"));
}

TEST(UsageTextTest, HasAnExampleForEveryCommand) {
  for (const char* command :
       {"status", "targets", "stats", "watch", "echo", "matrix", "health"}) {
    EXPECT_THAT(kLatencyctlUsage,
                HasSubstr(absl::StrCat("latencyctl ", command)))
        << command;
  }
}

}  // namespace
}  // namespace latency
