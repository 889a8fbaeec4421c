#ifndef LATENCY_SERVER_PROBER_ICMP_SOCKET_H_
#define LATENCY_SERVER_PROBER_ICMP_SOCKET_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "server/prober/ip_address.h"

namespace latency {

// One thing read from an ICMP socket.
struct IcmpReceived {
  enum class Kind {
    kMessage,      // an ICMP message (reply, or for raw sockets any ICMP)
    kTxTimestamp,  // the kernel's send stamp of an earlier Send()
    kError,        // an ICMP error queued for a datagram socket (IP_RECVERR)
  };
  Kind kind = Kind::kMessage;
  // kMessage: the sender. kError: the original packet's destination.
  std::optional<IpAddress> peer;
  // kMessage: as ParseIcmp expects (see IcmpSocket::ip_header_included).
  // kTxTimestamp: the packet as it left (ParseLoopedEcho names the probe),
  // or empty when the socket stamps by ID (stamp_id names it).
  // kError: the offending original ICMP message when the kernel quotes it.
  std::string data;
  // Monotonic time right after the read (userspace receive stamp).
  int64_t userspace_ns = 0;
  // Kernel software stamp (RX for kMessage, TX for kTxTimestamp) as
  // CLOCK_REALTIME ns, and the same instant moved onto the monotonic clock.
  std::optional<int64_t> kernel_realtime_ns;
  std::optional<int64_t> kernel_monotonic_ns;
  // kError: ICMP (or ICMPv6, on IPv6 sockets) type and code of the error;
  // only errors that an ICMP message reported reach the prober.
  uint8_t error_type = 0;
  uint8_t error_code = 0;
  // kTxTimestamp from a socket that stamps by ID: the stamp_id its send
  // went out with.
  std::optional<uint32_t> stamp_id;
};

// One message of a batch send, and how its send went.
struct IcmpOutgoing {
  IpAddress to;
  absl::string_view message;
  // Names the send's TX stamp when the socket stamps by ID: 31 bits (the
  // socket marks the top one to tell its IDs from a kernel's own count).
  uint32_t stamp_id = 0;
  absl::Status result;
};

// What one Receive call read.
struct IcmpReceiveResult {
  size_t items = 0;      // filled, from the front of the span
  bool drained = false;  // that queue was empty when the call returned
};

// IcmpSocket is the prober's only way to the network for ICMP (cloudprober's
// icmpConn), so tests can use a fake. Not thread-safe: one event loop owns it.
class IcmpSocket {
 public:
  virtual ~IcmpSocket() = default;

  // File descriptor to wait on (readable or EPOLLERR); -1 for fakes.
  virtual int fd() const = 0;
  virtual bool ipv6() const = 0;
  // Raw IPv4 sockets deliver the IP header with each message.
  virtual bool ip_header_included() const = 0;
  // The ICMP identifier replies to this socket carry. Datagram sockets get
  // it from the kernel (their "port"); raw sockets choose one.
  virtual uint16_t id() const = 0;
  // Whether the kernel stamps sends and receives (SO_TIMESTAMPING).
  virtual bool kernel_timestamps() const = 0;
  // Whether TX stamps come back named by their send's stamp_id, without a
  // copy of the packet (a per-send SCM_TS_OPT_ID, Linux 6.13+), rather than
  // with the packet as it left. Turns false for good when the kernel turns
  // out not to take the ID: it refuses the first send, or (IPv6 datagram
  // sockets before 5.19) sends it and stamps with a count of its own.
  virtual bool stamps_by_id() const { return false; }
  // "datagram" or "raw", for logs.
  virtual std::string mode() const = 0;

  // Sends one ICMP message to `to` (stamp_id 0). An error (a lost probe, not
  // a fatal condition) means no kTxTimestamp will come for it.
  virtual absl::Status Send(const IpAddress& to, absl::string_view message) = 0;
  // Sends every message of `batch` (with sendmmsg where the socket can: one
  // system call for many probes), each with its own result.
  virtual void SendBatch(absl::Span<IcmpOutgoing> batch) {
    for (IcmpOutgoing& out : batch) out.result = Send(out.to, out.message);
  }

  // Reads what is pending, without blocking, into `items` (reused: their
  // buffers keep their capacity, so a steady loop allocates nothing): from
  // the error queue (kTxTimestamp, kError) when `error_queue`, else from the
  // receive queue (kMessage). Errors and stamps arrive only on the error
  // queue, which the poller reports as EPOLLERR.
  virtual IcmpReceiveResult Receive(bool error_queue,
                                    absl::Span<IcmpReceived> items) = 0;
};

// Opens the best ICMP socket this process may have for the family: an
// unprivileged datagram socket when net.ipv4.ping_group_range includes our
// group, a raw socket with CAP_NET_RAW otherwise. When neither is allowed
// the error is PermissionDenied and explains both fixes; other failures
// (e.g. no IPv6 in this kernel) have other codes.
//
// TX stamps are asked for by ID where the kernel takes one with each send.
absl::StatusOr<std::unique_ptr<IcmpSocket>> OpenIcmpSocket(bool ipv6,
                                                           Clock& clock);

// The control message that carries a send's stamp ID. Tests change it to
// play the kernels that do not take it: one refuses a control message it
// does not know (EINVAL), one ignores a level it does not handle.
struct StampIdControl {
  int level = SOL_SOCKET;
  int type = 81;  // SCM_TS_OPT_ID (<asm-generic/socket.h>, Linux 6.13)
};
absl::StatusOr<std::unique_ptr<IcmpSocket>> OpenIcmpSocket(
    bool ipv6, Clock& clock, StampIdControl stamp_id_control);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_ICMP_SOCKET_H_
