#ifndef LATENCY_SERVER_TARGET_H_
#define LATENCY_SERVER_TARGET_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"

namespace latency {

enum class GrpcProbeMode { kUnary, kStream };
enum class AddressFamily { kAny, kIpv4, kIpv6 };

// TargetSpec is one validated target with every probe setting resolved
// (defaults applied). Built from config.proto / --target flags by
// server/config; read by the probers and the query surfaces.
struct TargetSpec {
  std::string name;  // unique; metrics label
  std::string host;  // name or literal address as configured
  uint16_t grpc_port = 50051;
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(1);
  int icmp_payload_bytes = 56;
  int grpc_payload_bytes = 0;
  GrpcProbeMode grpc_mode = GrpcProbeMode::kUnary;
  bool icmp_enabled = true;
  bool grpc_enabled = true;
  AddressFamily family = AddressFamily::kAny;
  // Labels from the configuration (validated: bounded count, names and
  // value sizes); Prometheus labels and API `labels`, in name order.
  std::map<std::string, std::string> labels = {};

  bool operator==(const TargetSpec&) const = default;
};

}  // namespace latency

#endif  // LATENCY_SERVER_TARGET_H_
