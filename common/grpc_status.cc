#include "common/grpc_status.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace latency {

std::string GrpcStatusText(const grpc::Status& status) {
  // gRPC and Abseil share the canonical status codes and their names.
  std::string name = absl::StatusCodeToString(
      static_cast<absl::StatusCode>(status.error_code()));
  if (name.empty()) name = absl::StrCat("CODE_", status.error_code());
  return status.error_message().empty()
             ? name
             : absl::StrCat(name, ": ", status.error_message());
}

}  // namespace latency
