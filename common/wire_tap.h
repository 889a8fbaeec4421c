#ifndef LATENCY_COMMON_WIRE_TAP_H_
#define LATENCY_COMMON_WIRE_TAP_H_

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace latency {

// Kernel times (CLOCK_REALTIME ns, 0 = not seen) of the TCP segments that
// carried one echo: the request toward the echo service and the reply from
// it, each as it left this host and as it arrived here. A host sees only its
// own half: the server the request leaving and the reply arriving, the agent
// the request arriving and the reply leaving (on one host, all four).
struct WireTimes {
  int64_t request_out_ns = 0;
  int64_t request_in_ns = 0;
  int64_t reply_out_ns = 0;
  int64_t reply_in_ns = 0;

  // The server's wire round trip: request out -> reply in.
  std::optional<int64_t> RoundTripNs() const;
  // The agent host's wire hold: request in -> reply out.
  std::optional<int64_t> HoldNs() const;
};

// One IP packet as the tap saw it.
struct TappedPacket {
  absl::Span<const uint8_t> ip;  // from the IPv4/IPv6 header on
  bool outgoing = false;         // left this host (else arrived)
  int64_t time_ns = 0;           // kernel stamp, CLOCK_REALTIME
};

// EchoSegmentIndex finds echoes in the TCP segments of the echo service and
// remembers when each was seen. An echo is keyed by its client_send_time_ns,
// which both EchoRequest and EchoResponse carry as field 3 right after the
// payload: the bytes 0x18 + varint, found in cleartext HTTP/2 DATA frames
// whatever else shares the segment (HEADERS, PING, WINDOW_UPDATE, other
// calls' frames). A key split across two segments is found through the
// flow's last bytes; TLS hides it, so nothing is found and callers fall back
// to handler stamps. The first sighting in each direction counts (a
// retransmission is later). Not thread-safe.
class EchoSegmentIndex {
 public:
  // Keys are kept this long after their first sighting (newest packet time),
  // and at most this many: the rest of the traffic cannot grow it.
  static constexpr int64_t kKeepNs = 30'000'000'000;
  static constexpr size_t kMaxKeys = 65536;

  void SetServicePorts(absl::flat_hash_set<uint16_t> ports) {
    ports_ = std::move(ports);
  }
  const absl::flat_hash_set<uint16_t>& service_ports() const { return ports_; }

  // Looks at one packet; anything not TCP to or from a service port is
  // ignored.
  void Add(const TappedPacket& packet);
  WireTimes Find(int64_t key) const;
  void Forget(int64_t key) { times_.erase(key); }
  size_t size() const { return times_.size(); }

 private:
  struct Flow {
    uint8_t addresses[32];  // source then destination
    uint16_t source_port;
    uint16_t dest_port;
    bool outgoing;
    bool operator==(const Flow& o) const;
    template <typename H>
    friend H AbslHashValue(H h, const Flow& f) {
      return H::combine(
          H::combine_contiguous(std::move(h), f.addresses, sizeof f.addresses),
          f.source_port, f.dest_port, f.outgoing);
    }
  };
  // The end of the flow's last segment, to find a key it split.
  struct Tail {
    uint32_t next_sequence = 0;
    uint8_t length = 0;
    uint8_t bytes[10];
  };

  void Note(int64_t key, bool request, bool outgoing, int64_t time_ns);
  void Expire(int64_t now_ns);

  absl::flat_hash_set<uint16_t> ports_;
  absl::flat_hash_map<int64_t, WireTimes> times_;
  std::deque<std::pair<int64_t, int64_t>> order_;  // (first seen, key)
  absl::flat_hash_map<Flow, Tail> tails_;
  std::vector<uint8_t> scratch_;
};

// What the server's prober asks of a tap; an interface so tests can fake it.
class WireRoundTrips {
 public:
  virtual ~WireRoundTrips() = default;
  // Adds a service port (a new target's agent port).
  virtual void AddServicePort(uint16_t port) = 0;
  // The wire round trip of echo `key` (request out -> reply in), then
  // forgets the echo; nullopt when either segment was not seen.
  virtual std::optional<int64_t> TakeRoundTripNs(int64_t key) = 0;
};

// WireTap reads this host's echo traffic from an AF_PACKET socket (needs
// CAP_NET_RAW) with the kernel's receive and transmit stamps, filtered in the
// kernel to TCP on the service ports. Nothing reads it in the background:
// Lookup first takes everything queued, which always includes the segments
// of an echo the caller has already seen answered, since the kernel hands a
// packet to taps before TCP (in) and after it (out). Thread-safe.
class WireTap final : public WireRoundTrips {
 public:
  // Opens the socket; fails without CAP_NET_RAW. ports: the echo service's
  // TCP ports (the agent's own, or the agents' on the server).
  static absl::StatusOr<std::unique_ptr<WireTap>> Open(
      absl::flat_hash_set<uint16_t> ports);
  ~WireTap() override;
  WireTap(const WireTap&) = delete;
  WireTap& operator=(const WireTap&) = delete;

  void AddServicePort(uint16_t port) override ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<int64_t> TakeRoundTripNs(int64_t key) override
      ABSL_LOCKS_EXCLUDED(mu_);
  // Reads what is queued, then returns the echo's times.
  WireTimes Lookup(int64_t key) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops what is known about the echo.
  void Forget(int64_t key) ABSL_LOCKS_EXCLUDED(mu_);
  // Packets the kernel dropped because the socket was full.
  uint64_t dropped() ABSL_LOCKS_EXCLUDED(mu_);
  // Packets read from the socket (what passed the kernel's filter).
  uint64_t packets_read() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit WireTap(int fd) : fd_(fd) {}
  absl::Status AttachFilter() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drain() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int fd_;
  absl::Mutex mu_;
  EchoSegmentIndex index_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> buffer_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t packets_read_ ABSL_GUARDED_BY(mu_) = 0;
};

// The classic BPF program WireTap attaches: IPv4 (unfragmented) or IPv6
// (no extension headers) TCP segments that carry data, with either port in
// `ports`, at most 32 of them; more accept all such TCP and leave the ports
// to EchoSegmentIndex.
// Exposed for tests.
std::vector<sock_filter> EchoPortFilter(absl::Span<const uint16_t> ports);

// Opens the tap --wire_stamps asks for (all TCP echo ports added later);
// FailedPrecondition naming the flag when it cannot (no CAP_NET_RAW, no
// AF_PACKET).
absl::StatusOr<std::unique_ptr<WireTap>> OpenWireStampsTap();

}  // namespace latency

#endif  // LATENCY_COMMON_WIRE_TAP_H_
