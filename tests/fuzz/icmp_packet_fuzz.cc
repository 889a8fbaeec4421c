// Fuzzes ParseIcmp with every socket flavour (IPv4 datagram, IPv4 raw with
// the IP header, ICMPv6) and checks what it returns against the packet
// layout; round-trips BuildEchoRequest through ParseIcmp, and checks the
// checksum and probe payload builders.
//
// Input: byte 0 = flags (bit 0 IPv6, bit 1 IP header included), then the
// received message.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/prober/icmp_packet.h"
#include "tests/fuzz/fuzz_util.h"

namespace latency {
namespace {

uint16_t Be16(absl::string_view data, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(data[at]) << 8 |
                               static_cast<uint8_t>(data[at + 1]));
}

// The IPv4 header length at the front of `data`, or 0 when it is not a
// valid IPv4 header (the rule raw IPv4 sockets' input must meet).
size_t Ipv4Header(absl::string_view data) {
  if (data.size() < 20) return 0;
  uint8_t first = static_cast<uint8_t>(data[0]);
  size_t length = (first & 0x0f) * 4u;
  if (first >> 4 != 4 || length < 20 || length > data.size()) return 0;
  return length;
}

std::string Ipv4Of(absl::string_view bytes) {
  return absl::StrCat(
      static_cast<uint8_t>(bytes[0]), ".", static_cast<uint8_t>(bytes[1]), ".",
      static_cast<uint8_t>(bytes[2]), ".", static_cast<uint8_t>(bytes[3]));
}

// What the parser must have said about an error's quoted request.
void CheckQuote(absl::string_view quote, bool ipv6, const ParsedIcmp& parsed) {
  size_t header = 0;
  if (ipv6) {
    FUZZ_CHECK(parsed.quoted_destination.has_value() == (quote.size() >= 40),
               "IPv6 quote of " + std::to_string(quote.size()) + " bytes");
    if (quote.size() < 40) {
      FUZZ_CHECK(!parsed.id && !parsed.sequence, "id without a quote");
      return;
    }
    FUZZ_CHECK(parsed.quoted_destination->is_v6(), "v6 quote, v4 address");
    header = 40;
  } else {
    header = Ipv4Header(quote);
    FUZZ_CHECK(parsed.quoted_destination.has_value() == (header != 0),
               "IPv4 quote validity");
    if (header == 0) {
      FUZZ_CHECK(!parsed.id && !parsed.sequence, "id without a quote");
      return;
    }
    FUZZ_CHECK(
        parsed.quoted_destination->ToString() == Ipv4Of(quote.substr(16, 4)),
        parsed.quoted_destination->ToString());
  }
  absl::string_view icmp = quote.substr(header);
  bool echo =
      icmp.size() >= 8 && static_cast<uint8_t>(icmp[0]) == (ipv6 ? 128 : 8);
  FUZZ_CHECK(
      parsed.id.has_value() == echo && parsed.sequence.has_value() == echo,
      "quoted echo request id/sequence presence");
  if (echo) {
    FUZZ_CHECK(*parsed.id == Be16(icmp, 4), "quoted id");
    FUZZ_CHECK(*parsed.sequence == Be16(icmp, 6), "quoted sequence");
  }
}

void CheckParse(absl::string_view data, bool ipv6, bool ip_header) {
  absl::StatusOr<ParsedIcmp> parsed = ParseIcmp(data, ipv6, ip_header);
  absl::string_view icmp = data;
  if (ip_header && !ipv6) {
    size_t header = Ipv4Header(data);
    if (header == 0) {
      FUZZ_CHECK(!parsed.ok(), "accepted a bad IPv4 header");
    }
    icmp.remove_prefix(header);
    if (header == 0) icmp = absl::string_view();
  }
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               parsed.status().ToString());
    FUZZ_CHECK(!parsed.status().message().empty(), "empty error message");
    FUZZ_CHECK(icmp.size() < 8,
               "rejected a well-formed message: " + parsed.status().ToString());
    return;
  }
  FUZZ_CHECK(icmp.size() >= 8, "accepted a message shorter than 8 bytes");
  uint8_t type = static_cast<uint8_t>(icmp[0]);
  FUZZ_CHECK(parsed->type == type, "type");
  FUZZ_CHECK(parsed->code == static_cast<uint8_t>(icmp[1]), "code");
  uint8_t reply = ipv6 ? 129 : 0, request = ipv6 ? 128 : 8;
  uint8_t unreachable = ipv6 ? 1 : 3, time_exceeded = ipv6 ? 3 : 11;
  using Kind = ParsedIcmp::Kind;
  if (type == reply || type == request) {
    FUZZ_CHECK(
        parsed->kind == (type == reply ? Kind::kEchoReply : Kind::kEchoRequest),
        "echo kind");
    FUZZ_CHECK(parsed->id == Be16(icmp, 4), "echo id");
    FUZZ_CHECK(parsed->sequence == Be16(icmp, 6), "echo sequence");
    FUZZ_CHECK(parsed->payload == icmp.substr(8), "echo payload");
    FUZZ_CHECK(!parsed->quoted_destination, "echo with a quote");
  } else if (type == unreachable || type == time_exceeded) {
    FUZZ_CHECK(parsed->kind == (type == unreachable ? Kind::kUnreachable
                                                    : Kind::kTimeExceeded),
               "error kind");
    FUZZ_CHECK(parsed->payload.empty(), "error with a payload");
    CheckQuote(icmp.substr(8), ipv6, *parsed);
  } else if (ipv6 ? (type == 2 || type == 4)
                  : (type == 4 || type == 5 || type == 12)) {
    FUZZ_CHECK(parsed->kind == Kind::kOtherError, "other error kind");
    FUZZ_CHECK(parsed->payload.empty(), "error with a payload");
    CheckQuote(icmp.substr(8), ipv6, *parsed);
  } else {
    FUZZ_CHECK(parsed->kind == Kind::kOther, "other kind");
    FUZZ_CHECK(!parsed->id && !parsed->sequence && parsed->payload.empty() &&
                   !parsed->quoted_destination,
               "fields set on an unknown type");
  }
}

// BuildEchoRequest -> ParseIcmp gives back what was built, with a valid
// IPv4 checksum, also behind a minimal IPv4 header as raw sockets see it.
void CheckRoundTrip(bool ipv6, uint16_t id, uint16_t sequence,
                    absl::string_view payload) {
  std::string request = BuildEchoRequest(ipv6, id, sequence, payload);
  FUZZ_CHECK(request.size() == 8 + payload.size(), "request size");
  if (!ipv6) FUZZ_CHECK(InternetChecksum(request) == 0, "bad IPv4 checksum");
  std::string with_header;
  if (!ipv6) {
    with_header = std::string(20, '\0');
    with_header[0] = 0x45;
    with_header += request;
  }
  for (bool raw : {false, true}) {
    if (raw && ipv6) continue;
    absl::StatusOr<ParsedIcmp> parsed =
        ParseIcmp(raw ? with_header : request, ipv6, raw);
    FUZZ_CHECK(parsed.ok(), parsed.status().ToString());
    FUZZ_CHECK(parsed->kind == ParsedIcmp::Kind::kEchoRequest, "kind");
    FUZZ_CHECK(parsed->id == id && parsed->sequence == sequence, "id/seq");
    FUZZ_CHECK(parsed->payload == payload, "payload");
  }
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using latency::fuzz::Input;
  if (size == 0) return 0;
  uint8_t flags = data[0];
  bool ipv6 = (flags & 1) != 0;
  bool ip_header = (flags & 2) != 0;
  absl::string_view message(reinterpret_cast<const char*>(data) + 1, size - 1);
  latency::CheckParse(message, ipv6, ip_header);

  // The same bytes as builder inputs: id, sequence, payload.
  Input in(data + 1, size - 1);
  uint16_t id = in.U16();
  uint16_t sequence = in.U16();
  absl::string_view payload = in.Rest();
  latency::CheckRoundTrip(ipv6, id, sequence, payload);

  // The checksum of data followed by its own checksum is zero.
  if (message.size() % 2 == 0) {
    uint16_t sum = latency::InternetChecksum(message);
    std::string summed(message);
    summed.push_back(static_cast<char>(sum >> 8));
    summed.push_back(static_cast<char>(sum & 0xff));
    FUZZ_CHECK(latency::InternetChecksum(summed) == 0, "checksum");
  }

  int payload_size = static_cast<int>(id % 300) - 20;  // some negative
  uint64_t nonce = 0x0123456789abcdefULL ^ sequence;
  std::string probe = latency::BuildProbePayload(nonce, id, payload_size);
  FUZZ_CHECK(probe.size() == static_cast<size_t>(std::max(payload_size, 0)),
             "probe payload size");
  std::string full = latency::BuildProbePayload(nonce, id, 16);
  FUZZ_CHECK(full.compare(0, probe.size() < 16 ? probe.size() : 16, probe, 0,
                          probe.size() < 16 ? probe.size() : 16) == 0,
             "probe payload prefix");
  return 0;
}
