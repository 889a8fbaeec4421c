#ifndef LATENCY_SERVER_PROBER_RESOLVER_H_
#define LATENCY_SERVER_PROBER_RESOLVER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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

// ResolverPool resolves names on a few threads of its own, so a slow or dead
// resolver never blocks the caller (a reload, the housekeeping loop,
// shutdown). getaddrinfo cannot be cancelled: destroying the pool drops the
// queue and returns at once; a resolution still running finishes on its
// detached thread and its result is discarded. After the destructor returns
// no `done` runs.
class ResolverPool {
 public:
  using ResolveFn = std::function<absl::StatusOr<IpAddress>(
      const std::string& host, AddressFamily family)>;
  using Done = std::function<void(const absl::StatusOr<IpAddress>& address)>;

  explicit ResolverPool(int threads, ResolveFn resolve = ResolveHost);
  ~ResolverPool();

  // Queues one resolution; `done` runs on a pool thread (keep it quick).
  void Submit(const std::string& host, AddressFamily family, Done done);

 private:
  struct Job {
    std::string host;
    AddressFamily family;
    Done done;
  };
  struct State {
    absl::Mutex mu;
    std::deque<Job> queue ABSL_GUARDED_BY(mu);
    // Set by the destructor under mu; `done` runs under mu, so the
    // destructor waits for one in progress.
    bool stopped ABSL_GUARDED_BY(mu) = false;
  };
  static void Work(std::shared_ptr<State> state, ResolveFn resolve);

  std::shared_ptr<State> state_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_RESOLVER_H_
