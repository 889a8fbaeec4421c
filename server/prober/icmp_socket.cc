#include "server/prober/icmp_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <linux/net_tstamp.h>
#include <netinet/icmp6.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace latency {
namespace {

constexpr int kReceiveBufferBytes = 4 << 20;
constexpr int kSendBufferBytes = 4 << 20;
// Messages one recvmmsg/sendmmsg call moves at most.
constexpr size_t kBatch = 64;
// Room per received message while every message sent fits it with its
// headers (a TX stamp brings the link and IP headers back): batches of
// ping-sized probes. After a larger send (payloads go up to 65,000 bytes)
// messages are read one at a time into kMaxMessageBytes, never truncated.
constexpr size_t kSmallMessageBytes = 2048;
constexpr size_t kHeaderRoom = 128;
constexpr size_t kMaxMessageBytes = 65536;
constexpr size_t kControlBytes = 512;

int64_t RealtimeNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string PingGroupRange() {
  std::ifstream file("/proc/sys/net/ipv4/ping_group_range");
  std::string low, high;
  if (!(file >> low >> high)) return "unreadable";
  return low + " " + high;
}

class LinuxIcmpSocket final : public IcmpSocket {
 public:
  LinuxIcmpSocket(int fd, bool ipv6, bool raw, Clock& clock,
                  StampIdControl stamp_id_control)
      : fd_(fd),
        ipv6_(ipv6),
        raw_(raw),
        clock_(clock),
        stamp_id_control_(stamp_id_control) {}
  ~LinuxIcmpSocket() override { close(fd_); }

  absl::Status Init() {
    SetBufferBytes(SO_RCVBUF, SO_RCVBUFFORCE, kReceiveBufferBytes);
    // A batch's packets count against the send buffer until the device has
    // sent them; the default (about 200 KB, some 250 probes) refuses sends
    // (EAGAIN) when a few hundred leave at once and wait in a queue.
    SetBufferBytes(SO_SNDBUF, SO_SNDBUFFORCE, kSendBufferBytes);
    // TX stamps by ID where the kernel takes the ID with each send
    // (SCM_TS_OPT_ID): the stamp then comes back alone (OPT_TSONLY), not
    // with a copy of the packet to parse. Never the kernel's own count of
    // sends: one that fails after the kernel numbered it (a firewall
    // REJECT, a full qdisc) would shift every later key. Older kernels
    // refuse the ID at the first send; SendBatch then falls back to stamps
    // that carry the packet, whose ICMP sequence names the probe; so does
    // Parse when a stamp comes back without our mark on its ID (a kernel
    // that sent the ID's control message and ignored it).
    stamps_by_id_ = SetTimestamping(kStampFlags | SOF_TIMESTAMPING_OPT_ID |
                                    SOF_TIMESTAMPING_OPT_TSONLY);
    kernel_timestamps_ = stamps_by_id_ || SetTimestamping(kStampFlags);
    if (raw_) {
      // Only what the prober can use: replies and errors, not the echo
      // requests every raw socket also sees on loopback.
      if (ipv6_) {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_PARAM_PROB, &filter);
        setsockopt(fd_, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
      } else {
        icmp_filter filter;
        filter.data =
            ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) |
              (1u << ICMP_TIME_EXCEEDED) | (1u << ICMP_PARAMETERPROB));
        setsockopt(fd_, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
      }
      std::random_device random;
      id_ = static_cast<uint16_t>(random());
      return absl::OkStatus();
    }
    // Datagram sockets report ICMP errors through the error queue.
    int on = 1;
    if (ipv6_) {
      setsockopt(fd_, SOL_IPV6, IPV6_RECVERR, &on, sizeof(on));
    } else {
      setsockopt(fd_, SOL_IP, IP_RECVERR, &on, sizeof(on));
    }
    sockaddr_storage local{};
    local.ss_family = ipv6_ ? AF_INET6 : AF_INET;
    socklen_t length = ipv6_ ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), length) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &length) != 0) {
      return absl::InternalError(
          absl::StrCat("binding ICMP datagram socket: ", strerror(errno)));
    }
    id_ = ntohs(ipv6_ ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    return absl::OkStatus();
  }

  int fd() const override { return fd_; }
  bool ipv6() const override { return ipv6_; }
  bool ip_header_included() const override { return raw_ && !ipv6_; }
  uint16_t id() const override { return id_; }
  bool kernel_timestamps() const override { return kernel_timestamps_; }
  bool stamps_by_id() const override { return stamps_by_id_; }
  std::string mode() const override { return raw_ ? "raw" : "datagram"; }

  absl::Status Send(const IpAddress& to, absl::string_view message) override {
    IcmpOutgoing out{to, message, 0, absl::OkStatus()};
    SendBatch(absl::MakeSpan(&out, 1));
    return out.result;
  }

  void SendBatch(absl::Span<IcmpOutgoing> batch) override {
    size_t next = 0;
    while (next < batch.size()) {
      size_t count = std::min(kBatch, batch.size() - next);
      for (size_t i = 0; i < count; ++i) {
        IcmpOutgoing& out = batch[next + i];
        largest_sent_ = std::max(largest_sent_, out.message.size());
        send_iov_[i] =
            iovec{const_cast<char*>(out.message.data()), out.message.size()};
        mmsghdr& m = send_msgs_[i];
        m = mmsghdr{};
        m.msg_hdr.msg_name = &send_names_[i];
        m.msg_hdr.msg_namelen = out.to.ToSockaddr(0, &send_names_[i]);
        m.msg_hdr.msg_iov = &send_iov_[i];
        m.msg_hdr.msg_iovlen = 1;
        if (stamps_by_id_) {
          char* control = &send_control_[i * kSendControlBytes];
          m.msg_hdr.msg_control = control;
          m.msg_hdr.msg_controllen = kSendControlBytes;
          cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
          c->cmsg_level = stamp_id_control_.level;
          c->cmsg_type = stamp_id_control_.type;
          c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
          uint32_t id = out.stamp_id | kStampIdMark;
          memcpy(CMSG_DATA(c), &id, sizeof(id));
        }
      }
      int sent = sendmmsg(fd_, send_msgs_, static_cast<unsigned>(count), 0);
      if (sent < 0 && errno == EINVAL && stamps_by_id_ && !ids_accepted_) {
        // A kernel before 6.13 refuses the ID's control message: this
        // batch goes again without IDs.
        StopStampingById("refused the first send that carried one (EINVAL)");
        continue;
      }
      if (sent > 0 && stamps_by_id_) ids_accepted_ = true;
      if (sent < 0) {
        // The first of these failed (sendmmsg reports an error only for
        // the first message): it alone is lost; go on with the next.
        IcmpOutgoing& out = batch[next];
        out.result = absl::UnavailableError(
            absl::StrCat("sendto ", out.to.ToString(), ": ", strerror(errno)));
        ++next;
        continue;
      }
      for (int i = 0; i < sent; ++i) batch[next + i].result = absl::OkStatus();
      next += static_cast<size_t>(sent);
    }
  }

  IcmpReceiveResult Receive(bool error_queue,
                            absl::Span<IcmpReceived> items) override {
    IcmpReceiveResult result;
    const int flags = (error_queue ? MSG_ERRQUEUE : 0) | MSG_DONTWAIT;
    while (result.items < items.size() && !result.drained) {
      const bool large = largest_sent_ + kHeaderRoom > kSmallMessageBytes;
      if (large && large_buffer_.empty())
        large_buffer_.resize(kMaxMessageBytes);
      size_t want = large ? 1 : std::min(kBatch, items.size() - result.items);
      for (size_t i = 0; i < want; ++i) {
        recv_iov_[i] = large ? iovec{large_buffer_.data(), kMaxMessageBytes}
                             : iovec{&small_buffers_[i * kSmallMessageBytes],
                                     kSmallMessageBytes};
        PrepareHeader(recv_msgs_[i].msg_hdr, &recv_names_[i], &recv_iov_[i],
                      &recv_control_[i * kControlBytes]);
      }
      int n = recvmmsg(fd_, recv_msgs_, static_cast<unsigned>(want), flags,
                       nullptr);
      if (n <= 0) {
        result.drained = true;
        break;
      }
      if (static_cast<size_t>(n) < want) result.drained = true;
      int64_t userspace_ns = clock_.MonotonicNanos();
      int64_t realtime_now = RealtimeNanos();
      for (int i = 0; i < n; ++i) {
        msghdr& msg = recv_msgs_[i].msg_hdr;
        // Larger than any probe of ours (a stranger's, on a raw socket).
        if ((msg.msg_flags & MSG_TRUNC) != 0) continue;
        if (Parse(msg, recv_msgs_[i].msg_len, error_queue, userspace_ns,
                  realtime_now, items[result.items])) {
          ++result.items;
        }
      }
    }
    return result;
  }

 private:
  static constexpr unsigned kStampFlags = SOF_TIMESTAMPING_SOFTWARE |
                                          SOF_TIMESTAMPING_RX_SOFTWARE |
                                          SOF_TIMESTAMPING_TX_SOFTWARE;
  static constexpr size_t kSendControlBytes = CMSG_SPACE(sizeof(uint32_t));

  // Marks the IDs this socket gives the kernel: its own count of sends
  // starts at 0 and would not reach this bit for two billion sends.
  static constexpr uint32_t kStampIdMark = 0x8000'0000;

  void StopStampingById(const char* why) {
    Logger("prober")->info(
        "ICMP{} socket: this kernel takes no TX stamp ID with a send (it {}; "
        "SCM_TS_OPT_ID needs Linux 6.13, and 5.19 for IPv6 datagram "
        "sockets): TX stamps carry the packet from now on",
        ipv6_ ? "v6" : "", why);
    stamps_by_id_ = false;
    kernel_timestamps_ = SetTimestamping(kStampFlags);
  }

  bool SetTimestamping(unsigned flags) {
    return setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPING, &flags,
                      sizeof(flags)) == 0;
  }

  // As much as wmem_max / rmem_max allow, then, for root, beyond them;
  // failure just leaves the smaller size.
  void SetBufferBytes(int option, int force_option, int bytes) {
    setsockopt(fd_, SOL_SOCKET, option, &bytes, sizeof(bytes));
    setsockopt(fd_, SOL_SOCKET, force_option, &bytes, sizeof(bytes));
  }

  static void PrepareHeader(msghdr& msg, sockaddr_storage* name, iovec* iov,
                            char* control) {
    msg = msghdr{};
    msg.msg_name = name;
    msg.msg_namelen = sizeof(*name);
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = kControlBytes;
  }

  // Fills `item` from one received message; false when it is nothing the
  // prober uses (an error-queue entry that is neither a stamp nor an ICMP
  // error).
  bool Parse(const msghdr& msg, size_t length, bool error_queue,
             int64_t userspace_ns, int64_t realtime_now, IcmpReceived& item) {
    item.kind = IcmpReceived::Kind::kMessage;
    item.userspace_ns = userspace_ns;
    item.peer = IpAddress::FromSockaddr(
        static_cast<const sockaddr*>(msg.msg_name), msg.msg_namelen);
    item.data.assign(static_cast<const char*>(msg.msg_iov->iov_base), length);
    item.kernel_realtime_ns.reset();
    item.kernel_monotonic_ns.reset();
    item.error_type = item.error_code = 0;
    item.stamp_id.reset();
    const sock_extended_err* error = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
        scm_timestamping stamps;
        memcpy(&stamps, CMSG_DATA(c), sizeof(stamps));
        const timespec& software = stamps.ts[0];
        if (software.tv_sec != 0 || software.tv_nsec != 0) {
          int64_t realtime =
              int64_t{software.tv_sec} * 1'000'000'000 + software.tv_nsec;
          item.kernel_realtime_ns = realtime;
          item.kernel_monotonic_ns = userspace_ns - (realtime_now - realtime);
        }
      } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                 (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        error = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
      }
    }
    if (!error_queue) return true;
    if (error == nullptr) return false;
    if (error->ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
      item.kind = IcmpReceived::Kind::kTxTimestamp;
      item.peer.reset();
      if (stamps_by_id_) {
        if ((error->ee_data & kStampIdMark) != 0) {
          item.stamp_id = error->ee_data & ~kStampIdMark;
        } else {
          // Numbered by the kernel's own count: it ignored our IDs. This
          // stamp (and any others already queued without a packet) names
          // nothing; the next sends' stamps carry their packets.
          StopStampingById("sent it but stamped by its own count of sends");
        }
      }
      return true;
    }
    // Only what an ICMP message said; local errors (EMSGSIZE and the like)
    // were already returned by sendto.
    if (error->ee_origin != (ipv6_ ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP)) {
      return false;
    }
    item.kind = IcmpReceived::Kind::kError;
    item.error_type = error->ee_type;
    item.error_code = error->ee_code;
    item.kernel_realtime_ns.reset();
    item.kernel_monotonic_ns.reset();
    return true;
  }

  const int fd_;
  const bool ipv6_;
  const bool raw_;
  Clock& clock_;
  const StampIdControl stamp_id_control_;
  uint16_t id_ = 0;
  bool kernel_timestamps_ = false;
  bool stamps_by_id_ = false;
  bool ids_accepted_ = false;  // a send with an ID went out
  size_t largest_sent_ = 0;
  std::vector<char> large_buffer_;
  // Batch state, reused by every call (one event loop owns the socket).
  mmsghdr send_msgs_[kBatch];
  iovec send_iov_[kBatch];
  sockaddr_storage send_names_[kBatch];
  alignas(cmsghdr) char send_control_[kBatch * kSendControlBytes];
  mmsghdr recv_msgs_[kBatch];
  iovec recv_iov_[kBatch];
  sockaddr_storage recv_names_[kBatch];
  std::vector<char> small_buffers_ =
      std::vector<char>(kBatch * kSmallMessageBytes);
  std::vector<char> recv_control_ = std::vector<char>(kBatch * kControlBytes);
};

}  // namespace

absl::StatusOr<std::unique_ptr<IcmpSocket>> OpenIcmpSocket(bool ipv6,
                                                           Clock& clock) {
  return OpenIcmpSocket(ipv6, clock, StampIdControl{});
}

absl::StatusOr<std::unique_ptr<IcmpSocket>> OpenIcmpSocket(
    bool ipv6, Clock& clock, StampIdControl stamp_id_control) {
  int family = ipv6 ? AF_INET6 : AF_INET;
  int protocol =
      ipv6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  int dgram_errno = 0;
  for (bool raw : {false, true}) {
    int type = (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(family, type, protocol);
    if (fd < 0) {
      if (!raw) dgram_errno = errno;
      if (raw) {
        int raw_errno = errno;
        bool denied = raw_errno == EPERM || raw_errno == EACCES;
        std::string message = absl::StrCat(
            "cannot open an ICMP", ipv6 ? "v6" : "",
            " socket: datagram: ", strerror(dgram_errno),
            " (net.ipv4.ping_group_range is '", PingGroupRange(),
            "' and must include group ", getgid(),
            "); raw: ", strerror(raw_errno), " (needs CAP_NET_RAW)");
        if (!denied) return absl::UnavailableError(message);
        return absl::PermissionDeniedError(absl::StrCat(
            message,
            ". Fix one: sysctl -w net.ipv4.ping_group_range='0 2147483647', "
            "or grant CAP_NET_RAW (setcap cap_net_raw+ep on the binary, or "
            "AmbientCapabilities=CAP_NET_RAW in its systemd unit)"));
      }
      continue;
    }
    auto socket = std::make_unique<LinuxIcmpSocket>(fd, ipv6, raw, clock,
                                                    stamp_id_control);
    if (absl::Status status = socket->Init(); !status.ok()) return status;
    return socket;
  }
  return absl::InternalError("unreachable");
}

}  // namespace latency
