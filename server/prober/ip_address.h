#ifndef LATENCY_SERVER_PROBER_IP_ADDRESS_H_
#define LATENCY_SERVER_PROBER_IP_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace latency {

// IpAddress is an IPv4 or IPv6 address, comparable and hashable, so replies
// can be matched to targets by their source address.
class IpAddress {
 public:
  IpAddress() = default;

  // Parses a literal ("127.0.0.1", "::1"); nullopt when not an address.
  static std::optional<IpAddress> Parse(absl::string_view text);
  // From a sockaddr_in / sockaddr_in6; nullopt for other families.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* addr,
                                               socklen_t len);

  bool is_v6() const { return v6_; }
  std::string ToString() const;
  // Fills `storage` with this address and `port`; returns its length.
  socklen_t ToSockaddr(uint16_t port, sockaddr_storage* storage) const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v6_ == b.v6_ && a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.v6_, a.bytes_);
  }

 private:
  bool v6_ = false;
  // IPv4 uses the first 4 bytes.
  std::array<uint8_t, 16> bytes_{};
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_IP_ADDRESS_H_
