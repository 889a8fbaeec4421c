#ifndef LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_
#define LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "server/prober/icmp_packet.h"
#include "server/prober/icmp_socket.h"

namespace latency::testing {

// FakeIcmpSocket records what the prober sends and hands back whatever the
// test queues (cloudprober's testICMPConn). It behaves like a datagram
// socket: messages carry no IP header. Like the kernel, it hands each TX
// stamp back (TxStamp) with the packet as it left, or, when `stamps_by_id`
// (a kernel that takes SCM_TS_OPT_ID), with the stamp_id of its send
// alone; never with a count of sends: a send that fails (send_error, or a
// destination in `rejected`, as a firewall REJECT on OUTPUT makes it)
// would have shifted such a count.
class FakeIcmpSocket final : public IcmpSocket {
 public:
  struct Sent {
    IpAddress to;
    std::string message;
    uint32_t stamp_id = 0;
  };

  explicit FakeIcmpSocket(bool ipv6 = false, uint16_t id = 0x1234)
      : ipv6_(ipv6), id_(id) {}

  int fd() const override { return -1; }
  bool ipv6() const override { return ipv6_; }
  bool ip_header_included() const override { return false; }
  uint16_t id() const override { return id_; }
  bool kernel_timestamps() const override { return stamps; }
  bool stamps_by_id() const override { return stamps && by_id; }
  std::string mode() const override { return "fake"; }

  absl::Status Send(const IpAddress& to, absl::string_view message) override {
    if (!send_error.ok()) return send_error;
    if (rejected.contains(to.ToString())) {
      return absl::UnavailableError("sendto " + to.ToString() +
                                    ": Operation not permitted");
    }
    sent.push_back({to, std::string(message)});
    return absl::OkStatus();
  }

  void SendBatch(absl::Span<IcmpOutgoing> batch) override {
    batch_sizes.push_back(batch.size());
    for (IcmpOutgoing& out : batch) {
      out.result = Send(out.to, out.message);
      if (out.result.ok()) sent.back().stamp_id = out.stamp_id;
    }
  }

  // Hands out the inbox's items of the queue asked for, in inbox order.
  IcmpReceiveResult Receive(bool error_queue,
                            absl::Span<IcmpReceived> items) override {
    ++receive_calls;
    IcmpReceiveResult result;
    for (auto it = inbox.begin(); it != inbox.end();) {
      if (OnErrorQueue(*it) != error_queue) {
        ++it;
        continue;
      }
      if (result.items == items.size()) return result;
      items[result.items++] = std::move(*it);
      it = inbox.erase(it);
    }
    result.drained = true;
    return result;
  }

  static bool OnErrorQueue(const IcmpReceived& item) {
    return item.kind != IcmpReceived::Kind::kMessage;
  }

  // sent[i] as the kernel loops it back: an Ethernet header, the IP header
  // (source 192.0.2.254 or 2001:db8::fe), then the ICMP message.
  std::string LoopedPacket(size_t i) const {
    const Sent& s = sent.at(i);
    std::string packet(14, '\0');
    packet[12] = static_cast<char>(ipv6_ ? 0x86 : 0x08);
    packet[13] = static_cast<char>(ipv6_ ? 0xdd : 0x00);
    sockaddr_storage destination;
    s.to.ToSockaddr(0, &destination);
    if (ipv6_) {
      std::string ip(40, '\0');
      ip[0] = 0x60;
      ip[4] = static_cast<char>(s.message.size() >> 8);
      ip[5] = static_cast<char>(s.message.size() & 0xff);
      ip[6] = 58;
      ip[7] = 64;
      ip[8] = 0x20;
      ip[9] = 0x01;
      ip[10] = 0x0d;
      ip[11] = static_cast<char>(0xb8);
      ip[23] = static_cast<char>(0xfe);
      memcpy(&ip[24], &reinterpret_cast<sockaddr_in6*>(&destination)->sin6_addr,
             16);
      packet += ip;
    } else {
      std::string ip(20, '\0');
      size_t total = 20 + s.message.size();
      ip[0] = 0x45;
      ip[2] = static_cast<char>(total >> 8);
      ip[3] = static_cast<char>(total & 0xff);
      ip[8] = 64;
      ip[9] = 1;
      ip[12] = static_cast<char>(192);
      ip[14] = 2;
      ip[15] = static_cast<char>(254);
      memcpy(&ip[16], &reinterpret_cast<sockaddr_in*>(&destination)->sin_addr,
             4);
      uint16_t checksum = InternetChecksum(ip);
      ip[10] = static_cast<char>(checksum >> 8);
      ip[11] = static_cast<char>(checksum & 0xff);
      packet += ip;
    }
    return packet + s.message;
  }

  // The kernel's TX stamp of sent[i].
  IcmpReceived TxStamp(size_t i, int64_t realtime_ns,
                       int64_t monotonic_ns) const {
    IcmpReceived stamp;
    stamp.kind = IcmpReceived::Kind::kTxTimestamp;
    if (stamps_by_id()) {
      stamp.stamp_id = sent.at(i).stamp_id;
    } else {
      stamp.data = LoopedPacket(i);
    }
    stamp.kernel_realtime_ns = realtime_ns;
    stamp.kernel_monotonic_ns = monotonic_ns;
    stamp.userspace_ns = monotonic_ns;
    return stamp;
  }

  std::vector<Sent> sent;
  std::deque<IcmpReceived> inbox;
  // Whether the "kernel" stamps sends and receives (the prober batches),
  // and names TX stamps by ID.
  bool stamps = true;
  bool by_id = false;
  // Messages per SendBatch call, and Receive calls.
  std::vector<size_t> batch_sizes;
  int receive_calls = 0;
  absl::Status send_error;
  // Destinations a local firewall rejects (sendto fails with EPERM).
  absl::flat_hash_set<std::string> rejected;

 private:
  bool ipv6_;
  uint16_t id_;
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_FAKE_ICMP_SOCKET_H_
