#include "server/prober/icmp_packet.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace latency {
namespace {

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpUnreachable = 3;
constexpr uint8_t kIcmpSourceQuench = 4;
constexpr uint8_t kIcmpRedirect = 5;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmpParameterProblem = 12;
constexpr uint8_t kIcmp6Unreachable = 1;
constexpr uint8_t kIcmp6PacketTooBig = 2;
constexpr uint8_t kIcmp6TimeExceeded = 3;
constexpr uint8_t kIcmp6ParameterProblem = 4;
constexpr uint8_t kIcmp6Redirect = 137;
constexpr uint8_t kIpProtocolIcmp = 1;
constexpr uint8_t kIpProtocolIcmp6 = 58;
// Link-layer headers a looped-back packet may start with (Ethernet with a
// few VLAN tags, Linux cooked capture headers): well under this.
constexpr size_t kMaxLinkHeaderBytes = 64;
constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr size_t kIcmpHeaderBytes = 8;
constexpr size_t kIpv6HeaderBytes = 40;

uint16_t ReadU16(absl::string_view data, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(data[at]) << 8 |
                               static_cast<uint8_t>(data[at + 1]));
}

// Length of the IPv4 header at the start of `data`, or 0 when it is not one.
size_t Ipv4HeaderLength(absl::string_view data) {
  if (data.size() < 20) return 0;
  uint8_t version_ihl = static_cast<uint8_t>(data[0]);
  size_t length = (version_ihl & 0x0f) * 4u;
  if ((version_ihl >> 4) != 4 || length < 20 || length > data.size()) return 0;
  return length;
}

// Reads the echo request quoted inside an ICMP error body: an IP header
// (IPv4 with options, or the fixed IPv6 one) then at least 8 ICMP bytes.
void ParseQuotedRequest(absl::string_view quote, bool ipv6, ParsedIcmp* out) {
  size_t header = 0;
  if (ipv6) {
    if (quote.size() < kIpv6HeaderBytes) return;
    header = kIpv6HeaderBytes;
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    memcpy(&sa.sin6_addr, quote.data() + 24, 16);
    out->quoted_destination =
        IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    header = Ipv4HeaderLength(quote);
    if (header == 0) return;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    memcpy(&sa.sin_addr, quote.data() + 16, 4);
    out->quoted_destination =
        IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  absl::string_view icmp = quote.substr(header);
  if (icmp.size() < kIcmpHeaderBytes) return;
  uint8_t type = static_cast<uint8_t>(icmp[0]);
  if (type != (ipv6 ? kIcmp6EchoRequest : kIcmpEchoRequest)) return;
  out->id = ReadU16(icmp, 4);
  out->sequence = ReadU16(icmp, 6);
}

bool IsOtherError(bool ipv6, uint8_t type) {
  if (ipv6) {
    // Not NDP redirects: they carry no quote at the usual place.
    return type == kIcmp6PacketTooBig || type == kIcmp6ParameterProblem;
  }
  return type == kIcmpSourceQuench || type == kIcmpRedirect ||
         type == kIcmpParameterProblem;
}

const char* UnreachableCodeName(bool ipv6, uint8_t code) {
  if (ipv6) {
    switch (code) {
      case 0:
        return "no route to destination";
      case 1:
        return "communication administratively prohibited";
      case 2:
        return "beyond scope of source address";
      case 3:
        return "address unreachable";
      case 4:
        return "port unreachable";
      case 5:
        return "source address failed ingress/egress policy";
      case 6:
        return "reject route to destination";
      default:
        return "destination unreachable";
    }
  }
  switch (code) {
    case 0:
      return "network unreachable";
    case 1:
      return "host unreachable";
    case 2:
      return "protocol unreachable";
    case 3:
      return "port unreachable";
    case 5:
      return "source route failed";
    case 6:
      return "destination network unknown";
    case 7:
      return "destination host unknown";
    case 8:
      return "source host isolated";
    case 9:
      return "network administratively prohibited";
    case 10:
      return "host administratively prohibited";
    case 11:
      return "network unreachable for TOS";
    case 12:
      return "host unreachable for TOS";
    case 13:
      return "communication administratively prohibited";
    case 14:
      return "host precedence violation";
    case 15:
      return "precedence cutoff in effect";
    default:
      return "destination unreachable";
  }
}

// The echo request at the start of `packet` (an IPv4 or IPv6 header whose
// length fields account for exactly the rest), or nullopt.
std::optional<LoopedEcho> EchoAt(absl::string_view packet, bool ipv6) {
  size_t header = 0;
  sockaddr_storage sa{};
  if (ipv6) {
    if (packet.size() < kIpv6HeaderBytes + kIcmpHeaderBytes ||
        (static_cast<uint8_t>(packet[0]) >> 4) != 6 ||
        static_cast<uint8_t>(packet[6]) != kIpProtocolIcmp6 ||
        ReadU16(packet, 4) != packet.size() - kIpv6HeaderBytes) {
      return std::nullopt;
    }
    header = kIpv6HeaderBytes;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&sa);
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, packet.data() + 24, 16);
  } else {
    header = Ipv4HeaderLength(packet);
    if (header == 0 || packet.size() < header + kIcmpHeaderBytes ||
        static_cast<uint8_t>(packet[9]) != kIpProtocolIcmp ||
        ReadU16(packet, 2) != packet.size() ||
        InternetChecksum(packet.substr(0, header)) != 0) {
      return std::nullopt;
    }
    auto* sin = reinterpret_cast<sockaddr_in*>(&sa);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, packet.data() + 16, 4);
  }
  absl::string_view icmp = packet.substr(header);
  if (static_cast<uint8_t>(icmp[0]) !=
      (ipv6 ? kIcmp6EchoRequest : kIcmpEchoRequest)) {
    return std::nullopt;
  }
  std::optional<IpAddress> destination = IpAddress::FromSockaddr(
      reinterpret_cast<sockaddr*>(&sa),
      ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  if (!destination) return std::nullopt;
  return LoopedEcho{*destination, ReadU16(icmp, 4), ReadU16(icmp, 6)};
}

}  // namespace

std::optional<IcmpErrorVerdict> ClassifyIcmpError(bool ipv6, uint8_t type,
                                                  uint8_t code) {
  std::string prefix = absl::StrCat("ICMP", ipv6 ? "v6" : "", " type ", type,
                                    " code ", code, " (");
  auto verdict = [&prefix](SampleResult result, absl::string_view what) {
    return IcmpErrorVerdict{result, absl::StrCat(prefix, what, ")")};
  };
  if (ipv6) {
    switch (type) {
      case kIcmp6Unreachable:
        return verdict(SampleResult::kUnreachable,
                       UnreachableCodeName(true, code));
      case kIcmp6PacketTooBig:
        return verdict(SampleResult::kError, "packet too big");
      case kIcmp6TimeExceeded:
        return verdict(SampleResult::kTtlExceeded,
                       code == 0 ? "hop limit exceeded in transit"
                                 : "fragment reassembly time exceeded");
      case kIcmp6ParameterProblem:
        return verdict(SampleResult::kError, "parameter problem");
      case kIcmp6Redirect:
        return std::nullopt;
      default:
        return verdict(SampleResult::kError, "unexpected ICMPv6 error");
    }
  }
  switch (type) {
    case kIcmpUnreachable:
      // Fragmentation needed is a path MTU problem, not an unreachable host.
      if (code == 4) {
        return verdict(SampleResult::kError,
                       "fragmentation needed: packet too big");
      }
      return verdict(SampleResult::kUnreachable,
                     UnreachableCodeName(false, code));
    case kIcmpTimeExceeded:
      return verdict(SampleResult::kTtlExceeded,
                     code == 0 ? "TTL exceeded in transit"
                               : "fragment reassembly time exceeded");
    case kIcmpParameterProblem:
      return verdict(SampleResult::kError, "parameter problem");
    case kIcmpSourceQuench:
    case kIcmpRedirect:
      return std::nullopt;
    default:
      return verdict(SampleResult::kError, "unexpected ICMP error");
  }
}

std::optional<LoopedEcho> ParseLoopedEcho(absl::string_view packet, bool ipv6) {
  for (size_t offset = 0;
       offset <= kMaxLinkHeaderBytes && offset < packet.size(); ++offset) {
    if (auto echo = EchoAt(packet.substr(offset), ipv6)) return echo;
  }
  return std::nullopt;
}

uint16_t InternetChecksum(absl::string_view data) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += ReadU16(data, i);
  if (i < data.size()) sum += static_cast<uint8_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void BuildEchoRequestInto(bool ipv6, uint16_t id, uint16_t sequence,
                          uint64_t nonce, uint64_t token, int payload_bytes,
                          std::string* packet) {
  packet->assign(kIcmpHeaderBytes, '\0');
  (*packet)[0] = static_cast<char>(ipv6 ? kIcmp6EchoRequest : kIcmpEchoRequest);
  (*packet)[4] = static_cast<char>(id >> 8);
  (*packet)[5] = static_cast<char>(id & 0xff);
  (*packet)[6] = static_cast<char>(sequence >> 8);
  (*packet)[7] = static_cast<char>(sequence & 0xff);
  AppendProbePayload(nonce, token, payload_bytes, packet);
  if (!ipv6) {
    uint16_t checksum = InternetChecksum(*packet);
    (*packet)[2] = static_cast<char>(checksum >> 8);
    (*packet)[3] = static_cast<char>(checksum & 0xff);
  }
}

std::string BuildEchoRequest(bool ipv6, uint16_t id, uint16_t sequence,
                             absl::string_view payload) {
  std::string packet(kIcmpHeaderBytes, '\0');
  packet[0] = static_cast<char>(ipv6 ? kIcmp6EchoRequest : kIcmpEchoRequest);
  packet[4] = static_cast<char>(id >> 8);
  packet[5] = static_cast<char>(id & 0xff);
  packet[6] = static_cast<char>(sequence >> 8);
  packet[7] = static_cast<char>(sequence & 0xff);
  packet.append(payload.data(), payload.size());
  if (!ipv6) {
    uint16_t checksum = InternetChecksum(packet);
    packet[2] = static_cast<char>(checksum >> 8);
    packet[3] = static_cast<char>(checksum & 0xff);
  }
  return packet;
}

namespace {

// Byte i of the probe payload (see BuildProbePayload).
char ProbePayloadByte(uint64_t nonce, uint64_t token, int i) {
  if (i < 8) return static_cast<char>(nonce >> (56 - 8 * i));
  if (i < 16) return static_cast<char>(token >> (56 - 8 * (i - 8)));
  // Filler like ping's: a repeating byte pattern.
  return static_cast<char>(i);
}

}  // namespace

void AppendProbePayload(uint64_t nonce, uint64_t token, int size,
                        std::string* out) {
  for (int i = 0; i < size; ++i)
    out->push_back(ProbePayloadByte(nonce, token, i));
}

std::string BuildProbePayload(uint64_t nonce, uint64_t token, int size) {
  std::string payload;
  AppendProbePayload(nonce, token, size, &payload);
  return payload;
}

bool ProbePayloadMatches(absl::string_view payload, uint64_t nonce,
                         uint64_t token, int size) {
  if (payload.size() != static_cast<size_t>(std::max(size, 0))) return false;
  for (int i = 0; i < size; ++i) {
    if (payload[i] != ProbePayloadByte(nonce, token, i)) return false;
  }
  return true;
}

absl::StatusOr<ParsedIcmp> ParseIcmp(absl::string_view data, bool ipv6,
                                     bool ip_header_included) {
  if (ip_header_included && !ipv6) {
    size_t header = Ipv4HeaderLength(data);
    if (header == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not an IPv4 packet (", data.size(), " bytes)"));
    }
    data.remove_prefix(header);
  }
  if (data.size() < kIcmpHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("ICMP message too short: ", data.size(), " bytes"));
  }
  ParsedIcmp parsed;
  parsed.type = static_cast<uint8_t>(data[0]);
  parsed.code = static_cast<uint8_t>(data[1]);
  uint8_t echo_reply = ipv6 ? kIcmp6EchoReply : kIcmpEchoReply;
  uint8_t echo_request = ipv6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
  uint8_t unreachable = ipv6 ? kIcmp6Unreachable : kIcmpUnreachable;
  uint8_t time_exceeded = ipv6 ? kIcmp6TimeExceeded : kIcmpTimeExceeded;
  if (parsed.type == echo_reply || parsed.type == echo_request) {
    parsed.kind = parsed.type == echo_reply ? ParsedIcmp::Kind::kEchoReply
                                            : ParsedIcmp::Kind::kEchoRequest;
    parsed.id = ReadU16(data, 4);
    parsed.sequence = ReadU16(data, 6);
    parsed.payload = data.substr(kIcmpHeaderBytes);
  } else if (parsed.type == unreachable || parsed.type == time_exceeded) {
    parsed.kind = parsed.type == unreachable ? ParsedIcmp::Kind::kUnreachable
                                             : ParsedIcmp::Kind::kTimeExceeded;
    ParseQuotedRequest(data.substr(kIcmpHeaderBytes), ipv6, &parsed);
  } else if (IsOtherError(ipv6, parsed.type)) {
    parsed.kind = ParsedIcmp::Kind::kOtherError;
    ParseQuotedRequest(data.substr(kIcmpHeaderBytes), ipv6, &parsed);
  }
  return parsed;
}

}  // namespace latency
