// Query load on latency-server's gRPC API, a small ghz: --concurrency
// GetLatency calls kept in flight for --duration (each slot sends its next
// call as soon as the previous one ends), spread over --connections
// channels (separate TCP connections). Prints one line: req/s and latency
// percentiles of the successful calls.
//
//   query_load --server=127.0.0.1:50052 --concurrency=16 --duration=10s
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "latency/v1/latency.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50052",
          "latency-server's gRPC query address");
ABSL_FLAG(int32_t, concurrency, 16, "calls in flight");
ABSL_FLAG(int32_t, connections, 16, "channels (TCP connections)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to load");
ABSL_FLAG(std::string, target, "", "GetLatency target (empty: the first)");

namespace {

using Clock = std::chrono::steady_clock;
using latency::v1::GetLatencyRequest;
using latency::v1::GetLatencyResponse;
using latency::v1::LatencyService;

// One call in flight at a time; the next is sent from the previous one's
// completion callback until `end`. Two contexts alternate so a call's
// context is never destroyed inside its own callback.
class Slot {
 public:
  Slot(LatencyService::Stub* stub, const GetLatencyRequest& request,
       Clock::time_point end, absl::BlockingCounter* done)
      : stub_(stub), request_(request), end_(end), done_(done) {}

  void Send() {
    ++turn_;
    Call& call = calls_[turn_ % 2];
    call.context = std::make_unique<grpc::ClientContext>();
    call.context->set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(5));
    call.response.Clear();
    call.start = Clock::now();
    stub_->async()->GetLatency(
        call.context.get(), &request_, &call.response,
        [this, &call](grpc::Status status) {
          Clock::time_point now = Clock::now();
          if (status.ok()) {
            latencies_us_.push_back(
                std::chrono::duration<double, std::micro>(now - call.start)
                    .count());
          } else {
            ++errors_;
          }
          if (now < end_) {
            Send();
          } else {
            done_->DecrementCount();
          }
        });
  }

  const std::vector<double>& latencies_us() const { return latencies_us_; }
  int errors() const { return errors_; }

 private:
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    GetLatencyResponse response;
    Clock::time_point start;
  };

  LatencyService::Stub* stub_;
  GetLatencyRequest request_;
  Clock::time_point end_;
  absl::BlockingCounter* done_;
  Call calls_[2];
  uint64_t turn_ = 0;
  std::vector<double> latencies_us_;
  int errors_ = 0;
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<size_t>(q *
                                    static_cast<double>(sorted.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int connections =
      std::clamp(absl::GetFlag(FLAGS_connections), 1, concurrency);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);

  std::vector<std::unique_ptr<LatencyService::Stub>> stubs;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // own connection
    auto channel = grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(5))) {
      fprintf(stderr, "query_load: cannot connect to %s\n",
              absl::GetFlag(FLAGS_server).c_str());
      return 2;
    }
    stubs.push_back(LatencyService::NewStub(channel));
  }

  GetLatencyRequest request;
  request.set_target(absl::GetFlag(FLAGS_target));
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + absl::ToChronoNanoseconds(duration);
  absl::BlockingCounter done(concurrency);
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < concurrency; ++i) {
    slots.push_back(std::make_unique<Slot>(
        stubs[static_cast<size_t>(i % connections)].get(), request, end,
        &done));
  }
  for (auto& slot : slots) slot->Send();
  done.Wait();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  int errors = 0;
  for (const auto& slot : slots) {
    all.insert(all.end(), slot->latencies_us().begin(),
               slot->latencies_us().end());
    errors += slot->errors();
  }
  std::sort(all.begin(), all.end());
  printf(
      "grpc_get_latency concurrency=%d connections=%d seconds=%.1f "
      "requests=%zu errors=%d rps=%.0f p50_us=%.1f p99_us=%.1f\n",
      concurrency, connections, seconds, all.size(), errors,
      static_cast<double>(all.size()) / seconds, Percentile(all, 0.5),
      Percentile(all, 0.99));
  return errors > 0 && all.empty() ? 1 : 0;
}
