#include "server/prober/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace latency {

std::optional<IpAddress> IpAddress::Parse(absl::string_view text) {
  std::string s(text);
  IpAddress address;
  if (inet_pton(AF_INET, s.c_str(), address.bytes_.data()) == 1) {
    return address;
  }
  if (inet_pton(AF_INET6, s.c_str(), address.bytes_.data()) == 1) {
    address.v6_ = true;
    return address;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* addr,
                                                 socklen_t len) {
  IpAddress address;
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    memcpy(address.bytes_.data(), &in->sin_addr, 4);
    return address;
  }
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    memcpy(address.bytes_.data(), &in6->sin6_addr, 16);
    address.v6_ = true;
    return address;
  }
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), text, sizeof(text));
  return text;
}

socklen_t IpAddress::ToSockaddr(uint16_t port,
                                sockaddr_storage* storage) const {
  memset(storage, 0, sizeof(*storage));
  if (v6_) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    memcpy(&in6->sin6_addr, bytes_.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* in = reinterpret_cast<sockaddr_in*>(storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  memcpy(&in->sin_addr, bytes_.data(), 4);
  return sizeof(sockaddr_in);
}

}  // namespace latency
