#ifndef LATENCY_SERVER_API_STATUS_UTIL_H_
#define LATENCY_SERVER_API_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace latency {

// The one place library errors (absl::Status) become gRPC errors; the codes
// are numerically the same by design of both libraries.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace latency

#endif  // LATENCY_SERVER_API_STATUS_UTIL_H_
