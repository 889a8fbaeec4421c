#ifndef LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_
#define LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_

#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/prober/icmp_socket.h"

namespace latency::testing {

// FakeIcmpSocket records what the prober sends and hands back whatever the
// test queues (cloudprober's testICMPConn). It behaves like a datagram
// socket: messages carry no IP header.
class FakeIcmpSocket final : public IcmpSocket {
 public:
  struct Sent {
    IpAddress to;
    std::string message;
    uint32_t tx_key;
  };

  explicit FakeIcmpSocket(bool ipv6 = false, uint16_t id = 0x1234)
      : ipv6_(ipv6), id_(id) {}

  int fd() const override { return -1; }
  bool ipv6() const override { return ipv6_; }
  bool ip_header_included() const override { return false; }
  uint16_t id() const override { return id_; }
  bool kernel_timestamps() const override { return true; }
  std::string mode() const override { return "fake"; }

  absl::StatusOr<uint32_t> Send(const IpAddress& to,
                                absl::string_view message) override {
    if (!send_error.ok()) return send_error;
    sent.push_back({to, std::string(message), next_key_});
    return next_key_++;
  }

  std::optional<IcmpReceived> Receive() override {
    if (inbox.empty()) return std::nullopt;
    IcmpReceived item = inbox.front();
    inbox.pop_front();
    return item;
  }

  std::vector<Sent> sent;
  std::deque<IcmpReceived> inbox;
  absl::Status send_error;

 private:
  bool ipv6_;
  uint16_t id_;
  uint32_t next_key_ = 0;
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_
