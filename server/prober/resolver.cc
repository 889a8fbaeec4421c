#include "server/prober/resolver.h"

#include <netdb.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"

namespace latency {

absl::StatusOr<IpAddress> ResolveHost(const std::string& host,
                                      AddressFamily family) {
  if (std::optional<IpAddress> literal = IpAddress::Parse(host)) {
    return *literal;
  }
  addrinfo hints{};
  hints.ai_family = family == AddressFamily::kIpv4   ? AF_INET
                    : family == AddressFamily::kIpv6 ? AF_INET6
                                                     : AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* results = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &results);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolving ", host, ": ", gai_strerror(rc)));
  }
  std::optional<IpAddress> address;
  for (addrinfo* ai = results; ai != nullptr && !address; ai = ai->ai_next) {
    address = IpAddress::FromSockaddr(ai->ai_addr, ai->ai_addrlen);
  }
  freeaddrinfo(results);
  if (!address) {
    return absl::UnavailableError(
        absl::StrCat("resolving ", host, ": no address"));
  }
  return *address;
}

std::string GrpcTargetForAddress(const IpAddress& address, uint16_t port) {
  return address.is_v6()
             ? absl::StrCat("ipv6:[", address.ToString(), "]:", port)
             : absl::StrCat("ipv4:", address.ToString(), ":", port);
}

std::string GrpcTargetFor(const std::string& host, uint16_t port) {
  if (std::optional<IpAddress> literal = IpAddress::Parse(host)) {
    return GrpcTargetForAddress(*literal, port);
  }
  return absl::StrCat("dns:///", host, ":", port);
}

ResolverPool::ResolverPool(int threads, ResolveFn resolve)
    : state_(std::make_shared<State>()) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    std::thread(Work, state_, resolve).detach();
  }
}

ResolverPool::~ResolverPool() {
  absl::MutexLock lock(&state_->mu);
  state_->stopped = true;
  state_->queue.clear();
}

void ResolverPool::Submit(const std::string& host, AddressFamily family,
                          Done done) {
  absl::MutexLock lock(&state_->mu);
  state_->queue.push_back({host, family, std::move(done)});
}

void ResolverPool::Work(std::shared_ptr<State> state, ResolveFn resolve) {
  auto has_work = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->stopped || !state->queue.empty();
  };
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&state->mu);
      state->mu.Await(absl::Condition(&has_work));
      if (state->stopped) return;
      job = std::move(state->queue.front());
      state->queue.pop_front();
    }
    absl::StatusOr<IpAddress> address = resolve(job.host, job.family);
    absl::MutexLock lock(&state->mu);
    if (state->stopped) return;
    job.done(address);
  }
}

}  // namespace latency
