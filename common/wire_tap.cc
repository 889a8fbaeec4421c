#include "common/wire_tap.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace latency {
namespace {

// The tag of field 3 (varint) in EchoRequest and EchoResponse.
constexpr uint8_t kKeyTag = 0x18;
// A monotonic nanosecond clock is past 2^28 (0.27 s) by the time anything
// runs: shorter varints after 0x18 are other bytes, not keys.
constexpr int kMinKeyBytes = 5;
constexpr int kMaxVarintBytes = 10;
// Largest packet read whole (GSO/GRO can hand taps 64 KB segments).
constexpr size_t kBufferBytes = 256 * 1024;
constexpr int kReceiveBufferBytes = 4 << 20;
constexpr size_t kMaxFlows = 4096;
constexpr size_t kMaxFilterPorts = 32;

uint16_t Load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// Decodes the varint at `p` (at most `size` bytes): its length, 0 when it
// does not end within them.
int DecodeVarint(const uint8_t* p, size_t size, uint64_t* value) {
  uint64_t v = 0;
  for (int i = 0; i < kMaxVarintBytes && static_cast<size_t>(i) < size; ++i) {
    v |= static_cast<uint64_t>(p[i] & 0x7f) << (7 * i);
    if ((p[i] & 0x80) == 0) {
      *value = v;
      return i + 1;
    }
  }
  return 0;
}

}  // namespace

std::optional<int64_t> WireTimes::RoundTripNs() const {
  if (request_out_ns == 0 || reply_in_ns == 0) return std::nullopt;
  return reply_in_ns - request_out_ns;
}

std::optional<int64_t> WireTimes::HoldNs() const {
  if (request_in_ns == 0 || reply_out_ns == 0) return std::nullopt;
  return reply_out_ns - request_in_ns;
}

bool EchoSegmentIndex::Flow::operator==(const Flow& o) const {
  return memcmp(addresses, o.addresses, sizeof addresses) == 0 &&
         source_port == o.source_port && dest_port == o.dest_port &&
         outgoing == o.outgoing;
}

void EchoSegmentIndex::Add(const TappedPacket& packet) {
  const uint8_t* ip = packet.ip.data();
  size_t size = packet.ip.size();
  if (size < 1) return;
  Flow flow{};
  flow.outgoing = packet.outgoing;
  size_t tcp_offset = 0;
  size_t ip_end = 0;
  const int version = ip[0] >> 4;
  if (version == 4) {
    if (size < 20) return;
    tcp_offset = static_cast<size_t>(ip[0] & 0x0f) * 4;
    ip_end = Load16(ip + 2);
    // Not TCP, or a fragment: no ports to go by.
    if (ip[9] != IPPROTO_TCP || (Load16(ip + 6) & 0x3fff) != 0) return;
    memcpy(flow.addresses, ip + 12, 4);
    memcpy(flow.addresses + 16, ip + 16, 4);
  } else if (version == 6) {
    if (size < 40) return;
    tcp_offset = 40;
    ip_end = 40 + static_cast<size_t>(Load16(ip + 4));
    if (ip[6] != IPPROTO_TCP) return;  // extension headers: not ours
    memcpy(flow.addresses, ip + 8, 32);
  } else {
    return;
  }
  // A GSO packet's length field may be 0 or short of what the tap holds.
  if (ip_end <= tcp_offset || ip_end > size) ip_end = size;
  if (tcp_offset < 20 || tcp_offset + 20 > ip_end) return;
  const uint8_t* tcp = ip + tcp_offset;
  flow.source_port = Load16(tcp);
  flow.dest_port = Load16(tcp + 2);
  const bool request = ports_.contains(flow.dest_port);
  if (!request && !ports_.contains(flow.source_port)) return;
  const uint32_t sequence = Load32(tcp + 4);
  const size_t payload_offset =
      tcp_offset + static_cast<size_t>(tcp[12] >> 4) * 4;
  if (payload_offset >= ip_end) return;  // no data (ACK, SYN, FIN)
  const uint8_t* payload = ip + payload_offset;
  const size_t payload_size = ip_end - payload_offset;

  // The key may have started in the flow's previous segment.
  if (tails_.size() > kMaxFlows) tails_.clear();
  Tail& tail = tails_[flow];
  const size_t carried = tail.next_sequence == sequence ? tail.length : 0;
  scratch_.assign(tail.bytes, tail.bytes + carried);
  scratch_.insert(scratch_.end(), payload, payload + payload_size);
  const uint8_t* data = scratch_.data();
  const size_t data_size = scratch_.size();

  for (size_t i = 0; i + 1 < data_size; ++i) {
    if (data[i] != kKeyTag) continue;
    uint64_t value = 0;
    int length = DecodeVarint(data + i + 1, data_size - i - 1, &value);
    // Ends in the new bytes (a key wholly in the tail was seen before).
    if (length >= kMinKeyBytes && i + 1 + length > carried &&
        value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Note(static_cast<int64_t>(value), request, packet.outgoing,
           packet.time_ns);
    }
  }

  tail.next_sequence = sequence + static_cast<uint32_t>(payload_size);
  tail.length =
      static_cast<uint8_t>(std::min<size_t>(data_size, sizeof tail.bytes));
  memcpy(tail.bytes, data + data_size - tail.length, tail.length);
  Expire(packet.time_ns);
}

void EchoSegmentIndex::Note(int64_t key, bool request, bool outgoing,
                            int64_t time_ns) {
  auto [it, inserted] = times_.try_emplace(key);
  if (inserted) order_.emplace_back(time_ns, key);
  WireTimes& times = it->second;
  int64_t& slot = request
                      ? (outgoing ? times.request_out_ns : times.request_in_ns)
                      : (outgoing ? times.reply_out_ns : times.reply_in_ns);
  if (slot == 0) slot = time_ns;
}

void EchoSegmentIndex::Expire(int64_t now_ns) {
  while (!order_.empty() && (order_.front().first < now_ns - kKeepNs ||
                             order_.size() > kMaxKeys)) {
    times_.erase(order_.front().second);
    order_.pop_front();
  }
}

WireTimes EchoSegmentIndex::Find(int64_t key) const {
  auto it = times_.find(key);
  return it == times_.end() ? WireTimes{} : it->second;
}

std::vector<sock_filter> EchoPortFilter(absl::Span<const uint16_t> ports) {
  // Jumps name their targets; offsets are filled in once all are placed.
  enum Label {
    kNext = -1,
    kV4 = 0,
    kV4Data,
    kV6,
    kV6Data,
    kReject,
    kAccept,
    kLabels
  };
  struct Op {
    sock_filter insn;
    int jt = kNext;
    int jf = kNext;
  };
  std::vector<Op> ops;
  int at[kLabels] = {};
  auto op = [&ops](uint16_t code, uint32_t k, int jt = kNext, int jf = kNext) {
    ops.push_back({{code, 0, 0, k}, jt, jf});
  };
  const bool all_tcp = ports.size() > kMaxFilterPorts;
  // A matching port goes on to `data`, the check for a payload.
  auto port_checks = [&](uint32_t load_code, uint32_t offset, int data) {
    op(static_cast<uint16_t>(load_code), offset);
    if (all_tcp) {
      op(BPF_JMP | BPF_JA, 0, data);
      return;
    }
    for (uint16_t port : ports) op(BPF_JMP | BPF_JEQ | BPF_K, port, data);
  };

  // Pure ACKs, SYNs and FINs carry no echo: the IP length field (at
  // `length_at`) must exceed the headers it counts. TCP's data offset byte
  // (loaded by `code` from `offset_at`) holds N words: (byte >> 2) & 0x3c.
  // X holds the IPv4 header length.
  auto data_check = [&](uint16_t code, uint32_t offset_at, bool plus_ip_header,
                        uint32_t length_at) {
    op(code, offset_at);
    op(BPF_ALU | BPF_RSH | BPF_K, 2);
    op(BPF_ALU | BPF_AND | BPF_K, 0x3c);
    if (plus_ip_header) op(BPF_ALU | BPF_ADD | BPF_X, 0);
    op(BPF_MISC | BPF_TAX, 0);
    op(BPF_LD | BPF_H | BPF_ABS, length_at);
    op(BPF_JMP | BPF_JGT | BPF_X, 0, kAccept, kReject);
  };

  op(BPF_LD | BPF_H | BPF_ABS,
     static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  op(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, kV4);
  op(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, kV6, kReject);
  at[kV4] = static_cast<int>(ops.size());
  op(BPF_LD | BPF_B | BPF_ABS, 9);
  op(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, kNext, kReject);
  op(BPF_LD | BPF_H | BPF_ABS, 6);
  op(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, kReject);
  op(BPF_LDX | BPF_B | BPF_MSH, 0);  // X = IP header length
  port_checks(BPF_LD | BPF_H | BPF_IND, 0, kV4Data);
  port_checks(BPF_LD | BPF_H | BPF_IND, 2, kV4Data);
  op(BPF_JMP | BPF_JA, 0, kReject);
  at[kV4Data] = static_cast<int>(ops.size());
  data_check(BPF_LD | BPF_B | BPF_IND, 12, /*plus_ip_header=*/true, 2);
  at[kV6] = static_cast<int>(ops.size());
  op(BPF_LD | BPF_B | BPF_ABS, 6);
  op(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, kNext, kReject);
  port_checks(BPF_LD | BPF_H | BPF_ABS, 40, kV6Data);
  port_checks(BPF_LD | BPF_H | BPF_ABS, 42, kV6Data);
  op(BPF_JMP | BPF_JA, 0, kReject);
  // IPv6's payload length counts the TCP header and the data only.
  at[kV6Data] = static_cast<int>(ops.size());
  data_check(BPF_LD | BPF_B | BPF_ABS, 40 + 12, /*plus_ip_header=*/false, 4);
  at[kReject] = static_cast<int>(ops.size());
  op(BPF_RET | BPF_K, 0);
  at[kAccept] = static_cast<int>(ops.size());
  op(BPF_RET | BPF_K, static_cast<uint32_t>(kBufferBytes));

  std::vector<sock_filter> program;
  for (size_t i = 0; i < ops.size(); ++i) {
    sock_filter insn = ops[i].insn;
    auto offset = [&](int label) {
      return label == kNext ? 0 : at[label] - static_cast<int>(i) - 1;
    };
    if (BPF_CLASS(insn.code) == BPF_JMP && BPF_OP(insn.code) == BPF_JA) {
      insn.k = static_cast<uint32_t>(offset(ops[i].jt));
    } else if (BPF_CLASS(insn.code) == BPF_JMP) {
      insn.jt = static_cast<uint8_t>(offset(ops[i].jt));
      insn.jf = static_cast<uint8_t>(offset(ops[i].jf));
    }
    program.push_back(insn);
  }
  return program;
}

absl::StatusOr<std::unique_ptr<WireTap>> WireTap::Open(
    absl::flat_hash_set<uint16_t> ports) {
  // Protocol 0 receives nothing until the bind below, after the filter.
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "wire stamps need a packet socket (CAP_NET_RAW): ", strerror(errno)));
  }
  std::unique_ptr<WireTap> tap(new WireTap(fd));
  absl::MutexLock lock(&tap->mu_);
  tap->index_.SetServicePorts(std::move(ports));
  tap->buffer_.resize(kBufferBytes);
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    return absl::InternalError(
        absl::StrCat("SO_TIMESTAMPNS: ", strerror(errno)));
  }
  int bytes = kReceiveBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  if (absl::Status status = tap->AttachFilter(); !status.ok()) return status;
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return absl::InternalError(
        absl::StrCat("binding the packet socket: ", strerror(errno)));
  }
  return tap;
}

WireTap::~WireTap() { close(fd_); }

absl::Status WireTap::AttachFilter() {
  std::vector<uint16_t> ports(index_.service_ports().begin(),
                              index_.service_ports().end());
  std::vector<sock_filter> program = EchoPortFilter(ports);
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) !=
      0) {
    return absl::InternalError(
        absl::StrCat("attaching the port filter: ", strerror(errno)));
  }
  return absl::OkStatus();
}

void WireTap::AddServicePort(uint16_t port) {
  absl::MutexLock lock(&mu_);
  if (index_.service_ports().contains(port)) return;
  absl::flat_hash_set<uint16_t> ports = index_.service_ports();
  ports.insert(port);
  index_.SetServicePorts(std::move(ports));
  // On failure the old filter stays: the new port's echoes fall back.
  (void)AttachFilter();
}

void WireTap::Drain() {
  while (true) {
    sockaddr_ll from{};
    iovec iov{buffer_.data(), buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: all read
    }
    ++packets_read_;
    int64_t time_ns = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        time_ns = ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
      }
    }
    if (time_ns == 0) continue;  // unstamped: no use
    TappedPacket packet;
    packet.ip = absl::MakeConstSpan(
        buffer_.data(), std::min(static_cast<size_t>(n), buffer_.size()));
    packet.outgoing = from.sll_pkttype == PACKET_OUTGOING;
    packet.time_ns = time_ns;
    index_.Add(packet);
  }
}

WireTimes WireTap::Lookup(int64_t key) {
  absl::MutexLock lock(&mu_);
  Drain();
  return index_.Find(key);
}

std::optional<int64_t> WireTap::TakeRoundTripNs(int64_t key) {
  absl::MutexLock lock(&mu_);
  Drain();
  std::optional<int64_t> round_trip = index_.Find(key).RoundTripNs();
  index_.Forget(key);
  return round_trip;
}

void WireTap::Forget(int64_t key) {
  absl::MutexLock lock(&mu_);
  index_.Forget(key);
}

uint64_t WireTap::packets_read() {
  absl::MutexLock lock(&mu_);
  Drain();
  return packets_read_;
}

uint64_t WireTap::dropped() {
  absl::MutexLock lock(&mu_);
  tpacket_stats stats{};
  socklen_t size = sizeof stats;
  // Reading the statistics resets them.
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &stats, &size) == 0) {
    dropped_ += stats.tp_drops;
  }
  return dropped_;
}

absl::StatusOr<std::unique_ptr<WireTap>> OpenWireStampsTap() {
  absl::StatusOr<std::unique_ptr<WireTap>> tap = WireTap::Open({});
  if (!tap.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--wire_stamps: ", tap.status().message()));
  }
  return tap;
}

}  // namespace latency
