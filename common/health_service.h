#ifndef LATENCY_COMMON_HEALTH_SERVICE_H_
#define LATENCY_COMMON_HEALTH_SERVICE_H_

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace latency {

// HealthService implements grpc.health.v1.Health from the generated proto.
// gRPC 1.51's built-in health service has no reflectable descriptor, so
// reflection-only clients (grpcurl, buf curl) could not call it; this one is
// compiled from grpc-proto's health.proto and shows up in reflection.
//
// Check returns NOT_FOUND for services never registered with SetStatus.
// Watch streams the current status and every change; Shutdown() sends
// NOT_SERVING to every watcher and ends the streams so the server can drain.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  HealthService() = default;
  ~HealthService() override;

  // Sets `service`'s status; "" is the whole server.
  void SetStatus(const std::string& service, ServingStatus status)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Marks every service NOT_SERVING and finishes all Watch streams. Later
  // SetStatus calls are ignored.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;

  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class WatchReactor;

  ServingStatus StatusLocked(const std::string& service) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unregister(WatchReactor* reactor) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  std::set<WatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency

#endif  // LATENCY_COMMON_HEALTH_SERVICE_H_
