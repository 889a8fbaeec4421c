#ifndef LATENCY_SERVER_API_LATENCY_SERVICE_H_
#define LATENCY_SERVER_API_LATENCY_SERVICE_H_

#include <atomic>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "latency/v1/latency.grpc.pb.h"
#include "server/api/query.h"
#include "server/api/query_workers.h"
#include "server/api/watch_slots.h"

namespace latency {

// LatencyServiceImpl serves latency.v1.LatencyService with the callback API.
// Unary methods delegate to QueryHandler on the service's own low-priority
// threads; Watch subscribes to the store and
// streams matching samples until the client leaves or the store closes (a
// config reload: the stream ends with UNAVAILABLE and the client watches
// again). A slow Watch client never slows the probers: each
// stream buffers at most kWatchQueueLimit samples and drops the oldest beyond
// that (counted in watch_dropped()).
class LatencyServiceImpl final : public v1::LatencyService::CallbackService {
 public:
  static constexpr size_t kWatchQueueLimit = 1024;

  // At most `max_watchers` Watch streams in all, and at most
  // `max_watchers_per_client` from one client address (IP, any port): one
  // client cannot take every slot. 0 per client: the total limit only.
  // Unary calls run on `query_threads` threads of their own, below the
  // probers (QueryWorkers); past `max_queued` waiting calls the next gets
  // RESOURCE_EXHAUSTED.
  LatencyServiceImpl(const QueryHandler& query, int max_watchers,
                     int max_watchers_per_client = 0, int query_threads = 4,
                     int max_queued = 256);

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
  grpc::ServerUnaryReactor* GetHistory(
      grpc::CallbackServerContext* context,
      const v1::GetHistoryRequest* request,
      v1::GetHistoryResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;

  uint64_t watch_dropped() const { return dropped_; }
  int watchers() const { return slots_.open(); }

 private:
  class WatchReactor;

  const QueryHandler& query_;
  WatchSlots slots_;
  std::atomic<uint64_t> dropped_{0};
  // Last: destroyed first, after the server's shutdown has waited for the
  // calls they finish.
  QueryWorkers workers_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_LATENCY_SERVICE_H_
