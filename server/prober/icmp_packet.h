#ifndef LATENCY_SERVER_PROBER_ICMP_PACKET_H_
#define LATENCY_SERVER_PROBER_ICMP_PACKET_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/prober/ip_address.h"
#include "server/sample.h"

namespace latency {

// Pure ICMP/ICMPv6 packet functions (cloudprober's pingutils): building echo
// requests and parsing whatever a socket hands back, so matching logic is
// testable without sockets.

// RFC 1071 Internet checksum.
uint16_t InternetChecksum(absl::string_view data);

// An ICMP echo request: 8-byte header plus `payload`. IPv4 requests carry
// their checksum; ICMPv6's is computed by the kernel (it covers a
// pseudo-header the socket owner never sees). Datagram sockets overwrite the
// identifier with their own.
std::string BuildEchoRequest(bool ipv6, uint16_t id, uint16_t sequence,
                             absl::string_view payload);
// The same request with the probe payload (BuildProbePayload), built in
// `packet`, whose buffer is reused: no allocation once it is large enough.
void BuildEchoRequestInto(bool ipv6, uint16_t id, uint16_t sequence,
                          uint64_t nonce, uint64_t token, int payload_bytes,
                          std::string* packet);

// The prober's payload: an 8-byte per-process nonce, an 8-byte probe token,
// then filler up to `size` bytes (truncated when size < 16). Replies must
// echo it byte for byte to count.
std::string BuildProbePayload(uint64_t nonce, uint64_t token, int size);
void AppendProbePayload(uint64_t nonce, uint64_t token, int size,
                        std::string* out);
// payload == BuildProbePayload(nonce, token, size), without building it.
bool ProbePayloadMatches(absl::string_view payload, uint64_t nonce,
                         uint64_t token, int size);

// What an ICMP message (or an IPv4 packet holding one) says.
struct ParsedIcmp {
  enum class Kind {
    kEchoReply,
    kEchoRequest,
    kUnreachable,
    kTimeExceeded,
    // Any other ICMP error that quotes the packet: IPv4 source quench,
    // redirect, parameter problem; ICMPv6 packet too big, parameter problem.
    kOtherError,
    kOther
  };
  Kind kind = Kind::kOther;
  uint8_t type = 0;
  uint8_t code = 0;
  // Echo identifier and sequence: of the reply itself, or for errors, of the
  // quoted echo request that caused them (when quoted).
  std::optional<uint16_t> id;
  std::optional<uint16_t> sequence;
  // Echo data (replies only): a view into the parsed message, valid while
  // that is.
  absl::string_view payload;
  // For errors: the quoted request's destination (IPv4 quotes carry it).
  std::optional<IpAddress> quoted_destination;
};

// Parses one received message. `ip_header_included` is true for raw IPv4
// sockets, which deliver the IP header too; datagram sockets and ICMPv6 raw
// sockets deliver the ICMP message only. Errors describe malformed input.
absl::StatusOr<ParsedIcmp> ParseIcmp(absl::string_view data, bool ipv6,
                                     bool ip_header_included);

// What an ICMP error (type, code) means for the probe that caused it,
// decided the same way whichever socket delivered it: nullopt for errors
// that do not end the probe (redirect, source quench: the packet was still
// forwarded, a reply may come), else the sample result and a text naming
// type and code, e.g. "ICMP type 3 code 1 (host unreachable)".
struct IcmpErrorVerdict {
  SampleResult result = SampleResult::kError;
  std::string text;
};
std::optional<IcmpErrorVerdict> ClassifyIcmpError(bool ipv6, uint8_t type,
                                                  uint8_t code);

// The echo request a socket hands back with its kernel TX timestamp (when
// SO_TIMESTAMPING runs without OPT_TSONLY): the packet as it left, after a
// link-layer header whose length depends on the device (Ethernet 14, none
// on tunnels). This names the probe the stamp belongs to, whatever keys
// failed sends used up.
struct LoopedEcho {
  IpAddress destination;
  uint16_t id = 0;
  uint16_t sequence = 0;
};
std::optional<LoopedEcho> ParseLoopedEcho(absl::string_view packet, bool ipv6);

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_ICMP_PACKET_H_
