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

#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"

namespace latency {
namespace {

constexpr int kReceiveBufferBytes = 4 << 20;
constexpr size_t kMaxMessageBytes = 65536;

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
  LinuxIcmpSocket(int fd, bool ipv6, bool raw, Clock& clock)
      : fd_(fd), ipv6_(ipv6), raw_(raw), clock_(clock) {}
  ~LinuxIcmpSocket() override { close(fd_); }

  absl::Status Init() {
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &kReceiveBufferBytes,
               sizeof(kReceiveBufferBytes));
    // Root may exceed rmem_max; failure just leaves the default.
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBufferBytes,
               sizeof(kReceiveBufferBytes));
    // No OPT_ID/OPT_TSONLY: TX stamps come back with the packet itself, whose
    // ICMP sequence names the probe. OPT_ID keys cannot: a send that fails
    // after the kernel numbered it (a firewall REJECT, a full qdisc) shifts
    // every later key (and SCM_TS_OPT_ID, which sets the key per send, is
    // not in this system's headers).
    unsigned flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE |
                     SOF_TIMESTAMPING_TX_SOFTWARE;
    kernel_timestamps_ = setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPING, &flags,
                                    sizeof(flags)) == 0;
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
  std::string mode() const override { return raw_ ? "raw" : "datagram"; }

  absl::Status Send(const IpAddress& to, absl::string_view message) override {
    sockaddr_storage destination;
    socklen_t length = to.ToSockaddr(0, &destination);
    ssize_t sent = sendto(fd_, message.data(), message.size(), 0,
                          reinterpret_cast<sockaddr*>(&destination), length);
    if (sent < 0) {
      return absl::UnavailableError(
          absl::StrCat("sendto ", to.ToString(), ": ", strerror(errno)));
    }
    return absl::OkStatus();
  }

  std::optional<IcmpReceived> Receive() override {
    IcmpReceived item;
    for (;;) {
      ReadResult result = Read(MSG_ERRQUEUE, item);
      if (result == ReadResult::kItem) return item;
      if (result == ReadResult::kNone) break;
    }
    if (Read(0, item) == ReadResult::kItem) return item;
    return std::nullopt;
  }

 private:
  enum class ReadResult { kItem, kSkipped, kNone };

  ReadResult Read(int flags, IcmpReceived& item) {
    sockaddr_storage peer{};
    iovec iov{buffer_, sizeof(buffer_)};
    alignas(cmsghdr) char control[512];
    msghdr msg{};
    msg.msg_name = &peer;
    msg.msg_namelen = sizeof(peer);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_, &msg, flags | MSG_DONTWAIT);
    if (n < 0) return ReadResult::kNone;

    item = IcmpReceived();
    item.userspace_ns = clock_.MonotonicNanos();
    int64_t realtime_now = RealtimeNanos();
    item.peer = IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&peer),
                                        msg.msg_namelen);
    item.data.assign(buffer_, static_cast<size_t>(n));
    const sock_extended_err* error = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
        scm_timestamping stamps;
        memcpy(&stamps, CMSG_DATA(c), sizeof(stamps));
        const timespec& software = stamps.ts[0];
        if (software.tv_sec != 0 || software.tv_nsec != 0) {
          int64_t realtime =
              int64_t{software.tv_sec} * 1'000'000'000 + software.tv_nsec;
          item.kernel_realtime_ns = realtime;
          item.kernel_monotonic_ns =
              item.userspace_ns - (realtime_now - realtime);
        }
      } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                 (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        error = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
      }
    }
    if ((flags & MSG_ERRQUEUE) == 0) return ReadResult::kItem;
    if (error == nullptr) return ReadResult::kSkipped;
    if (error->ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
      item.kind = IcmpReceived::Kind::kTxTimestamp;
      item.peer.reset();
      return ReadResult::kItem;
    }
    // Only what an ICMP message said; local errors (EMSGSIZE and the like)
    // were already returned by sendto.
    if (error->ee_origin != (ipv6_ ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP)) {
      return ReadResult::kSkipped;
    }
    item.kind = IcmpReceived::Kind::kError;
    item.error_type = error->ee_type;
    item.error_code = error->ee_code;
    item.kernel_realtime_ns.reset();
    item.kernel_monotonic_ns.reset();
    return ReadResult::kItem;
  }

  const int fd_;
  const bool ipv6_;
  const bool raw_;
  Clock& clock_;
  uint16_t id_ = 0;
  bool kernel_timestamps_ = false;
  char buffer_[kMaxMessageBytes];
};

}  // namespace

absl::StatusOr<std::unique_ptr<IcmpSocket>> OpenIcmpSocket(bool ipv6,
                                                           Clock& clock) {
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
    auto socket = std::make_unique<LinuxIcmpSocket>(fd, ipv6, raw, clock);
    if (absl::Status status = socket->Init(); !status.ok()) return status;
    return socket;
  }
  return absl::InternalError("unreachable");
}

}  // namespace latency
