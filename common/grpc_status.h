#ifndef LATENCY_COMMON_GRPC_STATUS_H_
#define LATENCY_COMMON_GRPC_STATUS_H_

#include <string>

#include "grpcpp/grpcpp.h"

namespace latency {

// "CODE: message", e.g. "UNAVAILABLE: failed to connect", or just "CODE" when
// the message is empty. For logs, Sample::error and latencyctl's messages.
std::string GrpcStatusText(const grpc::Status& status);

}  // namespace latency

#endif  // LATENCY_COMMON_GRPC_STATUS_H_
