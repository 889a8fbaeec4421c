#include "server/prober/icmp_packet.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace latency {
namespace {

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpUnreachable = 3;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpTimeExceeded = 11;
constexpr uint8_t kIcmp6Unreachable = 1;
constexpr uint8_t kIcmp6TimeExceeded = 3;
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

}  // namespace

uint16_t InternetChecksum(absl::string_view data) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += ReadU16(data, i);
  if (i < data.size()) sum += static_cast<uint8_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
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

std::string BuildProbePayload(uint64_t nonce, uint64_t token, int size) {
  std::string payload(16, '\0');
  for (int i = 0; i < 8; ++i) {
    payload[i] = static_cast<char>(nonce >> (56 - 8 * i));
    payload[8 + i] = static_cast<char>(token >> (56 - 8 * i));
  }
  if (size < 16) {
    payload.resize(size < 0 ? 0 : size);
    return payload;
  }
  // Filler like ping's: a repeating byte pattern.
  for (int i = 16; i < size; ++i) payload.push_back(static_cast<char>(i));
  return payload;
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
    parsed.payload = std::string(data.substr(kIcmpHeaderBytes));
  } else if (parsed.type == unreachable || parsed.type == time_exceeded) {
    parsed.kind = parsed.type == unreachable ? ParsedIcmp::Kind::kUnreachable
                                             : ParsedIcmp::Kind::kTimeExceeded;
    ParseQuotedRequest(data.substr(kIcmpHeaderBytes), ipv6, &parsed);
  }
  return parsed;
}

}  // namespace latency
