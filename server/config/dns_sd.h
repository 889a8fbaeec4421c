#ifndef LATENCY_SERVER_CONFIG_DNS_SD_H_
#define LATENCY_SERVER_CONFIG_DNS_SD_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "latency/v1/config.pb.h"
#include "server/config/file_sd.h"

// Target discovery from DNS, as Prometheus' dns_sd_configs: every address
// of a name (A, AAAA) or every SRV record becomes a target, looked up again
// on a schedule, so a Kubernetes headless service of agents, or an SRV
// record an operator keeps, is the target list.
//
// A lookup that fails (timeout, SERVFAIL) keeps its last good targets; a
// name that does not exist or has no records of the type has none, as a
// service with no endpoints has none. What a target may be (name, labels,
// uniqueness) is checked by BuildSettings, which skips a bad one and says
// why.

namespace latency {

// "srv:NAME", "a:NAME[:PORT]" or "aaaa:NAME[:PORT]" (the --dns_sd flag),
// validated as ValidateDnsSd does. Errors read `--dns_sd "VALUE": ...`.
absl::StatusOr<v1::DnsSdConfig> ParseDnsSdFlag(absl::string_view value);

// The flag form of `lookup`, for messages: "srv:_agents._tcp.example.com".
std::string DnsSdName(const v1::DnsSdConfig& lookup);

// Checks a lookup from the config file: a DNS name (labels of 1-63
// characters, at most 253 in all), a port only for A/AAAA, in 1-65535.
// Errors are INVALID_ARGUMENT naming `what` (e.g. "dns_sd[0]").
absl::Status ValidateDnsSd(absl::string_view what,
                           const v1::DnsSdConfig& lookup);

struct SrvRecord {
  std::string host;  // without the trailing dot
  uint16_t port = 0;
  uint16_t priority = 0;
  uint16_t weight = 0;
};

// The SRV records of a DNS answer message (RFC 1035 wire format, as
// res_query returns it); other records (a CNAME on the way) are skipped,
// as is the "." target that says there is no such service. A message that
// cannot be parsed is an error, never a crash: it came off the network.
absl::StatusOr<std::vector<SrvRecord>> ParseSrvAnswer(const unsigned char* msg,
                                                      size_t size);

// DNS as discovery sees it (an interface, so tests need no DNS server).
// Both return NOT_FOUND when the name does not exist or has no records of
// the type, and another error when the lookup itself failed.
class DnsResolver {
 public:
  virtual ~DnsResolver() = default;
  // Addresses as text ("10.0.0.7", "fd00::7"); family is AF_INET or
  // AF_INET6.
  virtual absl::StatusOr<std::vector<std::string>> LookupAddresses(
      const std::string& name, int family) = 0;
  virtual absl::StatusOr<std::vector<SrvRecord>> LookupSrv(
      const std::string& name) = 0;
};

// The system's resolver: getaddrinfo(3) for addresses (so /etc/hosts and
// nsswitch count, as for target hosts), res_nquery(3) with a fresh
// /etc/resolv.conf for SRV. Each lookup blocks for at most the resolver's
// timeout and attempts.
DnsResolver& RealDnsResolver();

// Looks every name up and keeps the last good answer of each. Not
// thread-safe: one caller refreshes.
class DnsDiscovery {
 public:
  DnsDiscovery(std::vector<v1::DnsSdConfig> lookups, DnsResolver* resolver);

  struct Result {
    // The targets differ from the previous Refresh's (always true first).
    bool changed = false;
    // Every lookup's targets, lookups in order, each sorted (DNS servers
    // rotate their answers; the order must not look like a change).
    std::vector<DiscoveredTarget> targets;
    // Lookups that failed (their last good targets are kept) or found no
    // records.
    std::vector<std::string> errors;
  };
  Result Refresh();

  const std::vector<v1::DnsSdConfig>& lookups() const { return lookups_; }

 private:
  // One lookup's answer: hosts (addresses, or SRV target hosts) and ports,
  // sorted and unique.
  using Answer = std::vector<std::pair<std::string, uint16_t>>;
  absl::StatusOr<Answer> Lookup(const v1::DnsSdConfig& lookup);

  std::vector<v1::DnsSdConfig> lookups_;
  DnsResolver* resolver_;
  std::vector<std::optional<Answer>> good_;  // one per lookup
  bool refreshed_ = false;
};

}  // namespace latency

#endif  // LATENCY_SERVER_CONFIG_DNS_SD_H_
