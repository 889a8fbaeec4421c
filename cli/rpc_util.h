#ifndef LATENCY_CLI_RPC_UTIL_H_
#define LATENCY_CLI_RPC_UTIL_H_

#include <chrono>
#include <string>

#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"

namespace latency {

// latencyctl's process exit codes.
enum ExitCode : int {
  kExitOk = 0,     // every target (or echo) ok
  kExitNotOk = 1,  // some target or probe is not ok
  kExitError = 2,  // usage error, connection error or failed call
};

// The deadline for a call that may take at most `timeout` from now.
std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout);

}  // namespace latency

#endif  // LATENCY_CLI_RPC_UTIL_H_
