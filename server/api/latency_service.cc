#include "server/api/latency_service.h"

#include <deque>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/api/status_util.h"

namespace latency {
namespace {

// Answers a unary call on the query workers, or with RESOURCE_EXHAUSTED at
// once when they are max_queued calls behind. `response` lives until the
// reactor finishes.
template <typename Response, typename Query>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                 QueryWorkers& workers, Query query,
                                 Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued = workers.Post([reactor, query, response] {
    absl::StatusOr<Response> result = query();
    if (result.ok()) *response = std::move(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  if (!queued) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("server busy: ", workers.max_queued(),
                                  " queries already waiting; retry shortly")));
  }
  return reactor;
}

// gRPC's peer string without the port: "ipv4:10.0.0.1:5555" ->
// "ipv4:10.0.0.1", "ipv6:[::1]:5555" -> "ipv6:[::1]"; others as they are.
std::string ClientAddress(absl::string_view peer) {
  const size_t colon = peer.rfind(':');
  const size_t scheme = peer.find(':');
  if (colon == absl::string_view::npos || colon == scheme ||
      !(absl::StartsWith(peer, "ipv4:") || absl::StartsWith(peer, "ipv6:"))) {
    return std::string(peer);
  }
  return std::string(peer.substr(0, colon));
}

}  // namespace

class LatencyServiceImpl::WatchReactor final
    : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  WatchReactor(LatencyServiceImpl* service, const v1::WatchRequest& request,
               std::string client)
      : service_(service),
        request_(request),
        client_(std::move(client)),
        store_(service->query_.Current().store) {
    subscription_ =
        store_->Subscribe([this](const Sample& sample) { OnSample(sample); },
                          [this] { OnStoreClosed(); });
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || finished_) return;
    WriteNextLocked();
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!finished_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
    }
  }

  void OnDone() override {
    store_->Unsubscribe(subscription_);
    service_->slots_.Release(client_);
    delete this;
  }

 private:
  void OnStoreClosed() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "probing restarted (configuration reloaded or server "
                        "stopping); watch again"));
  }

  // On a prober's thread: only filters and queues the raw sample; the proto
  // is built by whoever starts the write (usually OnWriteDone, on gRPC's
  // thread).
  void OnSample(const Sample& sample) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!QueryHandler::WatchMatches(*store_, request_, sample)) return;
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (queue_.size() >= kWatchQueueLimit) {
      queue_.pop_front();
      ++service_->dropped_;
    }
    queue_.push_back(sample);
    if (!writing_) WriteNextLocked();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return;
    current_.Clear();
    *current_.mutable_sample() =
        QueryHandler::SampleToProto(*store_, queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  LatencyServiceImpl* const service_;
  const v1::WatchRequest request_;
  const std::string client_;
  // Keeps the subscribed store alive until the stream is done.
  const std::shared_ptr<ResultStore> store_;
  int subscription_ = -1;
  absl::Mutex mu_;
  std::deque<Sample> queue_ ABSL_GUARDED_BY(mu_);
  v1::WatchResponse current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

LatencyServiceImpl::LatencyServiceImpl(const QueryHandler& query,
                                       int max_watchers,
                                       int max_watchers_per_client,
                                       int query_threads, int max_queued)
    : query_(query),
      slots_(max_watchers, max_watchers_per_client, "Watch streams"),
      workers_(query_threads, max_queued) {}

grpc::ServerUnaryReactor* LatencyServiceImpl::GetLatency(
    grpc::CallbackServerContext* context, const v1::GetLatencyRequest* request,
    v1::GetLatencyResponse* response) {
  return Answer(
      context, workers_,
      [this, request] { return query_.GetLatency(*request); }, response);
}

grpc::ServerUnaryReactor* LatencyServiceImpl::ListTargets(
    grpc::CallbackServerContext* context, const v1::ListTargetsRequest* request,
    v1::ListTargetsResponse* response) {
  return Answer(
      context, workers_,
      [this, request] { return query_.ListTargets(*request); }, response);
}

grpc::ServerUnaryReactor* LatencyServiceImpl::GetTargetStats(
    grpc::CallbackServerContext* context,
    const v1::GetTargetStatsRequest* request,
    v1::GetTargetStatsResponse* response) {
  return Answer(
      context, workers_,
      [this, request] { return query_.GetTargetStats(*request); }, response);
}

grpc::ServerUnaryReactor* LatencyServiceImpl::GetHistory(
    grpc::CallbackServerContext* context, const v1::GetHistoryRequest* request,
    v1::GetHistoryResponse* response) {
  return Answer(
      context, workers_,
      [this, request] { return query_.GetHistory(*request); }, response);
}

grpc::ServerWriteReactor<v1::WatchResponse>* LatencyServiceImpl::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  const std::string client = ClientAddress(context->peer());
  absl::Status valid = query_.ValidateWatch(*request);
  if (valid.ok()) valid = slots_.Admit(client);
  if (!valid.ok()) {
    class Rejected final : public grpc::ServerWriteReactor<v1::WatchResponse> {
     public:
      explicit Rejected(const absl::Status& status) {
        Finish(ToGrpcStatus(status));
      }
      void OnDone() override { delete this; }
    };
    return new Rejected(valid);
  }
  return new WatchReactor(this, *request, client);
}

}  // namespace latency
