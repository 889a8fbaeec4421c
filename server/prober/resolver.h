#ifndef LATENCY_SERVER_PROBER_RESOLVER_H_
#define LATENCY_SERVER_PROBER_RESOLVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/prober/ip_address.h"
#include "server/target.h"

namespace latency {

// Resolves `host` (a literal or a DNS name) to one address of `family`,
// preferring the first the system resolver returns. Blocking: never call it
// on a prober thread.
absl::StatusOr<IpAddress> ResolveHost(const std::string& host,
                                      AddressFamily family);

// The gRPC target string for probing `host`:`port`: a literal address is
// used as is ("ipv4:127.0.0.1:50051", "ipv6:[::1]:50051"); a name goes to
// gRPC's DNS resolver ("dns:///agent.example:50051"), which re-resolves on
// its own.
std::string GrpcTargetFor(const std::string& host, uint16_t port);

// The gRPC target string for one resolved address ("ipv4:10.0.0.1:50051",
// "ipv6:[::1]:50051"): the prober probes the address it resolved itself, the
// one ICMP probes, never one gRPC's own resolver picks (maybe of the other
// family).
std::string GrpcTargetForAddress(const IpAddress& address, uint16_t port);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_RESOLVER_H_
