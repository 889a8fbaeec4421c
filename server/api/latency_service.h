#ifndef LATENCY_SERVER_API_LATENCY_SERVICE_H_
#define LATENCY_SERVER_API_LATENCY_SERVICE_H_

#include <atomic>

#include "latency/v1/latency.grpc.pb.h"
#include "server/api/query.h"

namespace latency {

// LatencyServiceImpl serves latency.v1.LatencyService with the callback API.
// Unary methods delegate to QueryHandler; Watch subscribes to the store and
// streams matching samples until the client leaves or the store closes (a
// config reload: the stream ends with UNAVAILABLE and the client watches
// again). A slow Watch client never slows the probers: each
// stream buffers at most kWatchQueueLimit samples and drops the oldest beyond
// that (counted in watch_dropped()).
class LatencyServiceImpl final : public v1::LatencyService::CallbackService {
 public:
  static constexpr size_t kWatchQueueLimit = 1024;

  LatencyServiceImpl(const QueryHandler& query, int max_watchers);

  grpc::ServerUnaryReactor* GetLatency(
      grpc::CallbackServerContext* context,
      const v1::GetLatencyRequest* request,
      v1::GetLatencyResponse* response) override;
  grpc::ServerUnaryReactor* ListTargets(
      grpc::CallbackServerContext* context,
      const v1::ListTargetsRequest* request,
      v1::ListTargetsResponse* response) override;
  grpc::ServerUnaryReactor* GetTargetStats(
      grpc::CallbackServerContext* context,
      const v1::GetTargetStatsRequest* request,
      v1::GetTargetStatsResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;

  uint64_t watch_dropped() const { return dropped_; }
  int watchers() const { return watchers_; }

 private:
  class WatchReactor;

  const QueryHandler& query_;
  const int max_watchers_;
  std::atomic<int> watchers_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_LATENCY_SERVICE_H_
