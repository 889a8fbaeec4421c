// LatencyServiceImpl over an in-process channel and a store of known
// samples: unary answers equal QueryHandler's, library errors become the
// matching gRPC codes, Watch streams matching samples, ends UNAVAILABLE when
// the store closes, and --max_watchers turns the next Watch away with
// RESOURCE_EXHAUSTED.
#include "server/api/latency_service.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"
#include "tests/server/api/api_test_store.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::latency::testing::ApiTarget;
using ::latency::testing::ApiTestStore;
using ::latency::testing::kApiMs;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;

// A context that gives up long after any plausible answer.
std::unique_ptr<grpc::ClientContext> WatchTestContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  return context;
}

class LatencyServiceTest : public ::testing::Test {
 protected:
  static constexpr int kMaxWatchers = 2;

  LatencyServiceTest()
      : data_(
            {ApiTarget("first", "10.0.0.1"), ApiTarget("second", "10.0.0.2")}),
        query_([this] {
          view_thread_nice_ =
              getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
          return data_.View();
        }),
        service_(query_, kMaxWatchers) {
    data_.Ok(0, ProbeKind::kIcmp, 3 * kApiMs);
    data_.Ok(1, ProbeKind::kGrpc, 5 * kApiMs, kApiMs);
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = v1::LatencyService::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  ~LatencyServiceTest() override { server_->Shutdown(); }

  static std::unique_ptr<grpc::ClientContext> Context() {
    return WatchTestContext();
  }

  ApiTestStore data_;
  // The nice value of the thread that last asked for the store.
  std::atomic<int> view_thread_nice_{-100};
  QueryHandler query_;
  LatencyServiceImpl service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::LatencyService::Stub> stub_;
};

TEST_F(LatencyServiceTest, UnaryAnswersAreTheQueryHandlers) {
  v1::GetLatencyResponse latency;
  grpc::Status status =
      stub_->GetLatency(Context().get(), v1::GetLatencyRequest(), &latency);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<v1::GetLatencyResponse> want =
      query_.GetLatency(v1::GetLatencyRequest());
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(latency, *want))
      << latency.DebugString();
  EXPECT_DOUBLE_EQ(latency.latency_ms(), 3);

  v1::ListTargetsResponse list;
  status = stub_->ListTargets(Context().get(), v1::ListTargetsRequest(), &list);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(
      list, *query_.ListTargets(v1::ListTargetsRequest())));

  v1::GetTargetStatsRequest request;
  request.set_target("second");
  request.set_window("15m");
  v1::GetTargetStatsResponse stats;
  status = stub_->GetTargetStats(Context().get(), request, &stats);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(stats.window(), "15m");
  ASSERT_EQ(stats.probes_size(), 2);
  EXPECT_NEAR(stats.probes(1).network_p50_ms(), 4, 0.04);  // histogram: 1%
}

// Unary queries are answered on the query workers, below the probers'
// priority (nice 10), not on gRPC's threads, which complete the gRPC probes:
// a query's work never runs ahead of a probe's wake-up.
TEST_F(LatencyServiceTest, UnaryQueriesRunBelowTheProbers) {
  for (int i = 0; i < 3; ++i) {
    view_thread_nice_ = -100;
    v1::GetLatencyResponse latency;
    ASSERT_TRUE(
        stub_->GetLatency(Context().get(), v1::GetLatencyRequest(), &latency)
            .ok());
    EXPECT_EQ(view_thread_nice_.load(), kQueryThreadNice);
    v1::ListTargetsResponse targets;
    view_thread_nice_ = -100;
    ASSERT_TRUE(
        stub_->ListTargets(Context().get(), v1::ListTargetsRequest(), &targets)
            .ok());
    EXPECT_EQ(view_thread_nice_.load(), kQueryThreadNice);
  }
}

TEST_F(LatencyServiceTest, ErrorsKeepTheirCodeAndMessage) {
  v1::GetLatencyRequest latency;
  latency.set_target("nope");
  v1::GetLatencyResponse latency_response;
  grpc::Status status =
      stub_->GetLatency(Context().get(), latency, &latency_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "unknown target 'nope'");

  v1::GetTargetStatsResponse stats;
  v1::GetTargetStatsRequest request;
  status = stub_->GetTargetStats(Context().get(), request, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "target: required");
  request.set_target("first");
  request.set_window("7m");
  status = stub_->GetTargetStats(Context().get(), request, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("window"));

  v1::WatchRequest watch;
  watch.set_target("nope");
  auto context = Context();
  auto reader = stub_->Watch(context.get(), watch);
  v1::WatchResponse response;
  EXPECT_FALSE(reader->Read(&response));
  status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(service_.watchers(), 0);
}

TEST_F(LatencyServiceTest, WatchStreamsMatchingSamplesUntilTheStoreCloses) {
  v1::WatchRequest request;
  request.set_target("second");
  auto context = Context();
  auto reader = stub_->Watch(context.get(), request);
  ASSERT_TRUE(
      WaitUntil([&] { return service_.watchers() == 1; }, absl::Seconds(30)));
  data_.Ok(0, ProbeKind::kIcmp, 7 * kApiMs);  // another target: filtered out
  data_.Ok(1, ProbeKind::kIcmp, 2 * kApiMs);
  v1::WatchResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.sample().target(), "second");
  EXPECT_EQ(response.sample().kind(), v1::PROBE_KIND_ICMP);
  EXPECT_DOUBLE_EQ(response.sample().rtt_ms(), 2);

  data_.store().CloseSubscriptions();  // what a config reload does
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("watch again"));
  EXPECT_TRUE(
      WaitUntil([&] { return service_.watchers() == 0; }, absl::Seconds(30)));
}

// README: --max_watchers concurrent Watch streams; more get
// RESOURCE_EXHAUSTED, and a slot frees when a stream ends.
TEST_F(LatencyServiceTest, WatchersBeyondTheLimitGetResourceExhausted) {
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchResponse>>> readers;
  for (int i = 0; i < kMaxWatchers; ++i) {
    contexts.push_back(Context());
    readers.push_back(stub_->Watch(contexts.back().get(), v1::WatchRequest()));
  }
  ASSERT_TRUE(WaitUntil([&] { return service_.watchers() == kMaxWatchers; },
                        absl::Seconds(30)));

  auto over_context = Context();
  auto over = stub_->Watch(over_context.get(), v1::WatchRequest());
  v1::WatchResponse response;
  EXPECT_FALSE(over->Read(&response));
  grpc::Status status = over->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("limit 2"));
  EXPECT_EQ(service_.watchers(), kMaxWatchers);

  // The admitted streams still work.
  data_.Ok(0, ProbeKind::kIcmp, kApiMs);
  for (auto& reader : readers) {
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.sample().target(), "first");
  }

  // One leaves: the next watcher gets in.
  contexts[0]->TryCancel();
  EXPECT_FALSE(readers[0]->Read(&response));
  EXPECT_EQ(readers[0]->Finish().error_code(), grpc::StatusCode::CANCELLED);
  readers.erase(readers.begin());
  ASSERT_TRUE(WaitUntil([&] { return service_.watchers() == kMaxWatchers - 1; },
                        absl::Seconds(30)));
  auto next_context = Context();
  auto next = stub_->Watch(next_context.get(), v1::WatchRequest());
  ASSERT_TRUE(WaitUntil([&] { return service_.watchers() == kMaxWatchers; },
                        absl::Seconds(30)));
  data_.Ok(1, ProbeKind::kIcmp, kApiMs);
  ASSERT_TRUE(next->Read(&response));
  EXPECT_EQ(response.sample().target(), "second");

  for (auto& context : contexts) context->TryCancel();
  next_context->TryCancel();
  readers.push_back(std::move(next));
  for (auto& reader : readers) {
    while (reader->Read(&response)) {
    }
    reader->Finish();
  }
}

// One client address cannot take every Watch slot: beyond its own cap it
// gets RESOURCE_EXHAUSTED while another client still gets in. Clients are
// told apart by IP (IPv4 vs IPv6 loopback here), over real TCP.
// A flood of unary queries costs refusals, not memory: with its one worker
// busy and max_queued calls waiting, the next call is told
// RESOURCE_EXHAUSTED at once, and the waiting one is answered later.
TEST(LatencyServiceQueueTest, FullQueueGetsResourceExhausted) {
  ApiTestStore data({ApiTarget("first", "10.0.0.1")});
  absl::Notification release;
  std::atomic<int> views{0};
  QueryHandler query([&] {
    if (views++ == 0) release.WaitForNotification();
    return data.View();
  });
  LatencyServiceImpl service(query, 1, 0, /*query_threads=*/1,
                             /*max_queued=*/1);
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto stub = v1::LatencyService::NewStub(
      server->InProcessChannel(grpc::ChannelArguments()));

  struct Call {
    std::unique_ptr<grpc::ClientContext> context = WatchTestContext();
    v1::GetLatencyRequest request;
    v1::GetLatencyResponse response;
    absl::Notification done;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  auto start = [&] {
    auto call = std::make_unique<Call>();
    Call* raw = call.get();
    stub->async()->GetLatency(raw->context.get(), &raw->request, &raw->response,
                              [raw](grpc::Status status) {
                                raw->status = std::move(status);
                                raw->done.Notify();
                              });
    calls.push_back(std::move(call));
  };
  start();  // takes the worker and blocks it
  ASSERT_TRUE(WaitUntil([&] { return views >= 1; }, absl::Seconds(10)));
  start();
  start();  // one of these two waits, the other is refused
  int refused = 0;
  for (int i = 1; i <= 2; ++i) {
    if (calls[i]->done.WaitForNotificationWithTimeout(absl::Seconds(2))) {
      EXPECT_EQ(calls[i]->status.error_code(),
                grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_THAT(calls[i]->status.error_message(), HasSubstr("server busy"));
      ++refused;
    }
  }
  EXPECT_EQ(refused, 1);
  release.Notify();
  for (const auto& call : calls) {
    ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  int answered = 0;
  for (const auto& call : calls) answered += call->status.ok() ? 1 : 0;
  EXPECT_EQ(answered, 2);
  server->Shutdown();
}

TEST(LatencyServiceWatchCapTest, OneClientCannotTakeEverySlot) {
  ApiTestStore data({ApiTarget("first", "10.0.0.1")});
  QueryHandler query([&data] { return data.View(); });
  LatencyServiceImpl service(query, /*max_watchers=*/4,
                             /*max_watchers_per_client=*/2);
  grpc::ServerBuilder builder;
  int port4 = 0, port6 = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port4);
  builder.AddListeningPort("[::1]:0", grpc::InsecureServerCredentials(),
                           &port6);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port4, 0);
  if (port6 == 0) GTEST_SKIP() << "no IPv6 loopback on this host";
  auto ipv4 = v1::LatencyService::NewStub(
      grpc::CreateChannel(absl::StrCat("ipv4:127.0.0.1:", port4),
                          grpc::InsecureChannelCredentials()));
  auto ipv6 = v1::LatencyService::NewStub(grpc::CreateChannel(
      absl::StrCat("ipv6:[::1]:", port6), grpc::InsecureChannelCredentials()));

  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader;
  };
  std::vector<Stream> streams;
  auto open = [&](v1::LatencyService::Stub& stub) {
    Stream s{WatchTestContext(), nullptr};
    s.reader = stub.Watch(s.context.get(), v1::WatchRequest());
    streams.push_back(std::move(s));
    return streams.size() - 1;
  };
  open(*ipv4);
  open(*ipv4);
  ASSERT_TRUE(
      WaitUntil([&] { return service.watchers() == 2; }, absl::Seconds(30)));
  // The IPv4 client's third stream is refused, naming the cap and its flag.
  size_t third = open(*ipv4);
  v1::WatchResponse response;
  EXPECT_FALSE(streams[third].reader->Read(&response));
  grpc::Status refused = streams[third].reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("limit 2 per client, --max_watchers_per_client"));
  EXPECT_THAT(refused.error_message(), HasSubstr("ipv4:127.0.0.1"));
  // Another client still gets a slot, and samples.
  size_t other = open(*ipv6);
  ASSERT_TRUE(
      WaitUntil([&] { return service.watchers() == 3; }, absl::Seconds(30)));
  data.Ok(0, ProbeKind::kIcmp, kApiMs);
  ASSERT_TRUE(streams[other].reader->Read(&response));
  EXPECT_EQ(response.sample().target(), "first");
  // A closed stream frees its client's slot.
  streams[0].context->TryCancel();
  while (streams[0].reader->Read(&response)) {
  }
  streams[0].reader->Finish();
  ASSERT_TRUE(
      WaitUntil([&] { return service.watchers() == 2; }, absl::Seconds(30)));
  size_t again = open(*ipv4);
  ASSERT_TRUE(
      WaitUntil([&] { return service.watchers() == 3; }, absl::Seconds(30)));
  for (size_t i : {size_t{1}, other, again}) {
    streams[i].context->TryCancel();
    while (streams[i].reader->Read(&response)) {
    }
    streams[i].reader->Finish();
  }
  server->Shutdown();
}

}  // namespace
}  // namespace latency
