#include "server/prober/icmp_packet.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

using ::testing::Optional;

TEST(InternetChecksumTest, KnownVectors) {
  // RFC 1071 section 3 example: 0x0001 0xf203 0xf4f5 0xf6f7 sums to 0xddf2.
  const char data[] = {0x00,
                       0x01,
                       static_cast<char>(0xf2),
                       0x03,
                       static_cast<char>(0xf4),
                       static_cast<char>(0xf5),
                       static_cast<char>(0xf6),
                       static_cast<char>(0xf7)};
  EXPECT_EQ(InternetChecksum(absl::string_view(data, sizeof(data))),
            static_cast<uint16_t>(~0xddf2));
  // A packet carrying its checksum sums to zero.
  std::string packet = BuildEchoRequest(false, 7, 9, "abc");
  EXPECT_EQ(InternetChecksum(packet), 0);
}

TEST(BuildEchoRequestTest, HeaderFields) {
  std::string v4 = BuildEchoRequest(false, 0x1234, 0xabcd, "xy");
  ASSERT_EQ(v4.size(), 10u);
  EXPECT_EQ(static_cast<uint8_t>(v4[0]), 8);
  EXPECT_EQ(static_cast<uint8_t>(v4[4]), 0x12);
  EXPECT_EQ(static_cast<uint8_t>(v4[7]), 0xcd);
  std::string v6 = BuildEchoRequest(true, 1, 2, "");
  EXPECT_EQ(static_cast<uint8_t>(v6[0]), 128);
  EXPECT_EQ(v6[2], 0);  // kernel fills the ICMPv6 checksum
}

TEST(BuildProbePayloadTest, NonceTokenAndFiller) {
  std::string payload =
      BuildProbePayload(0x0102030405060708, 0x1112131415161718, 56);
  ASSERT_EQ(payload.size(), 56u);
  EXPECT_EQ(payload[0], 0x01);
  EXPECT_EQ(payload[15], 0x18);
  EXPECT_EQ(payload[16], 16);
  EXPECT_EQ(BuildProbePayload(1, 2, 4).size(), 4u);
  EXPECT_EQ(BuildProbePayload(1, 2, 0).size(), 0u);
  EXPECT_NE(BuildProbePayload(1, 2, 56), BuildProbePayload(1, 3, 56));
}

std::string AsReply(std::string request, bool ipv6) {
  request[0] = static_cast<char>(ipv6 ? 129 : 0);
  return request;
}

TEST(ParseIcmpTest, EchoReplyV4AndV6) {
  for (bool ipv6 : {false, true}) {
    // The parsed payload is a view into the message, which must outlive it.
    const std::string reply =
        AsReply(BuildEchoRequest(ipv6, 5, 6, "pay"), ipv6);
    auto parsed = ParseIcmp(reply, ipv6, false);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->kind, ParsedIcmp::Kind::kEchoReply);
    EXPECT_THAT(parsed->id, Optional(5));
    EXPECT_THAT(parsed->sequence, Optional(6));
    EXPECT_EQ(parsed->payload, "pay");
  }
}

std::string Ipv4Header(const std::string& src, const std::string& dst,
                       size_t payload_bytes) {
  std::string header(20, '\0');
  header[0] = 0x45;
  header[2] = static_cast<char>((20 + payload_bytes) >> 8);
  header[3] = static_cast<char>((20 + payload_bytes) & 0xff);
  header[8] = 64;
  header[9] = 1;
  sockaddr_storage s;
  IpAddress::Parse(src)->ToSockaddr(0, &s);
  memcpy(&header[12], &reinterpret_cast<sockaddr_in*>(&s)->sin_addr, 4);
  IpAddress::Parse(dst)->ToSockaddr(0, &s);
  memcpy(&header[16], &reinterpret_cast<sockaddr_in*>(&s)->sin_addr, 4);
  return header;
}

TEST(ParseIcmpTest, RawV4SkipsTheIpHeader) {
  std::string reply = AsReply(BuildEchoRequest(false, 1, 2, "z"), false);
  auto parsed = ParseIcmp(
      Ipv4Header("10.0.0.2", "10.0.0.1", reply.size()) + reply, false, true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, ParsedIcmp::Kind::kEchoReply);
  EXPECT_THAT(parsed->sequence, Optional(2));
}

TEST(ParseIcmpTest, UnreachableQuotesTheOriginalRequest) {
  std::string request = BuildEchoRequest(false, 0x4242, 77, "");
  std::string quote =
      Ipv4Header("10.0.0.1", "192.0.2.9", request.size()) + request;
  std::string error(8, '\0');
  error[0] = 3;  // destination unreachable
  error[1] = 1;  // host unreachable
  auto parsed = ParseIcmp(
      Ipv4Header("10.0.0.254", "10.0.0.1", 8 + quote.size()) + error + quote,
      false, true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, ParsedIcmp::Kind::kUnreachable);
  EXPECT_EQ(parsed->code, 1);
  EXPECT_THAT(parsed->id, Optional(0x4242));
  EXPECT_THAT(parsed->sequence, Optional(77));
  ASSERT_TRUE(parsed->quoted_destination.has_value());
  EXPECT_EQ(parsed->quoted_destination->ToString(), "192.0.2.9");
}

TEST(ParseIcmpTest, TimeExceededV6) {
  std::string request = BuildEchoRequest(true, 9, 10, "");
  std::string ip6(40, '\0');
  ip6[0] = 0x60;
  sockaddr_storage s;
  IpAddress::Parse("2001:db8::5")->ToSockaddr(0, &s);
  memcpy(&ip6[24], &reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr, 16);
  std::string error(8, '\0');
  error[0] = 3;  // ICMPv6 time exceeded
  auto parsed = ParseIcmp(error + ip6 + request, true, false);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, ParsedIcmp::Kind::kTimeExceeded);
  EXPECT_THAT(parsed->sequence, Optional(10));
  EXPECT_EQ(parsed->quoted_destination->ToString(), "2001:db8::5");
}

TEST(ParseIcmpTest, MalformedInputIsAnErrorNotACrash) {
  EXPECT_FALSE(ParseIcmp("", false, false).ok());
  EXPECT_FALSE(ParseIcmp("abc", true, false).ok());
  EXPECT_FALSE(ParseIcmp(std::string(10, '\0'), false, true).ok());
  // An error whose quote is truncated parses, without id or sequence.
  std::string error(8, '\0');
  error[0] = 3;
  auto parsed = ParseIcmp(error + "\x45", false, false);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->sequence.has_value());
}

TEST(ParseIcmpTest, OtherErrorsQuoteTheRequestToo) {
  std::string request = BuildEchoRequest(false, 0x4242, 78, "");
  std::string quote =
      Ipv4Header("10.0.0.1", "192.0.2.9", request.size()) + request;
  std::string error(8, '\0');
  error[0] = 12;  // parameter problem
  auto parsed = ParseIcmp(error + quote, false, false);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, ParsedIcmp::Kind::kOtherError);
  EXPECT_THAT(parsed->sequence, Optional(78));
  EXPECT_EQ(parsed->quoted_destination->ToString(), "192.0.2.9");
}

TEST(ClassifyIcmpErrorTest, RedirectAndSourceQuenchAreIgnored) {
  EXPECT_FALSE(ClassifyIcmpError(false, 5, 1).has_value());
  EXPECT_FALSE(ClassifyIcmpError(false, 4, 0).has_value());
  EXPECT_FALSE(ClassifyIcmpError(true, 137, 0).has_value());
}

TEST(ClassifyIcmpErrorTest, EachTypeMapsExplicitly) {
  struct Case {
    bool ipv6;
    uint8_t type, code;
    SampleResult result;
    const char* text;
  };
  const Case cases[] = {
      {false, 3, 0, SampleResult::kUnreachable,
       "ICMP type 3 code 0 (network unreachable)"},
      {false, 3, 3, SampleResult::kUnreachable,
       "ICMP type 3 code 3 (port unreachable)"},
      {false, 3, 10, SampleResult::kUnreachable,
       "ICMP type 3 code 10 (host administratively prohibited)"},
      {false, 3, 4, SampleResult::kError,
       "ICMP type 3 code 4 (fragmentation needed: packet too big)"},
      {false, 11, 0, SampleResult::kTtlExceeded,
       "ICMP type 11 code 0 (TTL exceeded in transit)"},
      {false, 12, 1, SampleResult::kError,
       "ICMP type 12 code 1 (parameter problem)"},
      {false, 99, 7, SampleResult::kError,
       "ICMP type 99 code 7 (unexpected ICMP error)"},
      {true, 1, 0, SampleResult::kUnreachable,
       "ICMPv6 type 1 code 0 (no route to destination)"},
      {true, 1, 3, SampleResult::kUnreachable,
       "ICMPv6 type 1 code 3 (address unreachable)"},
      {true, 2, 0, SampleResult::kError,
       "ICMPv6 type 2 code 0 (packet too big)"},
      {true, 3, 0, SampleResult::kTtlExceeded,
       "ICMPv6 type 3 code 0 (hop limit exceeded in transit)"},
      {true, 4, 1, SampleResult::kError,
       "ICMPv6 type 4 code 1 (parameter problem)"},
  };
  for (const Case& c : cases) {
    std::optional<IcmpErrorVerdict> verdict =
        ClassifyIcmpError(c.ipv6, c.type, c.code);
    ASSERT_TRUE(verdict.has_value()) << c.text;
    EXPECT_EQ(verdict->result, c.result) << c.text;
    EXPECT_EQ(verdict->text, c.text);
  }
}

std::string WithIpv4Header(const std::string& message, const std::string& dst) {
  std::string header = Ipv4Header("10.0.0.1", dst, message.size());
  uint16_t checksum = InternetChecksum(header);
  header[10] = static_cast<char>(checksum >> 8);
  header[11] = static_cast<char>(checksum & 0xff);
  return header + message;
}

TEST(ParseLoopedEchoTest, FindsTheRequestBehindAnyLinkHeader) {
  std::string request = BuildEchoRequest(false, 0x0102, 0x0304, "payload");
  std::string packet = WithIpv4Header(request, "192.0.2.9");
  for (size_t link : {0, 14, 18}) {
    auto echo = ParseLoopedEcho(std::string(link, '\x01') + packet, false);
    ASSERT_TRUE(echo.has_value()) << link;
    EXPECT_EQ(echo->destination.ToString(), "192.0.2.9");
    EXPECT_EQ(echo->id, 0x0102);
    EXPECT_EQ(echo->sequence, 0x0304);
  }
  std::string v6 = BuildEchoRequest(true, 7, 8, "xyz");
  std::string ip6(40, '\0');
  ip6[0] = 0x60;
  ip6[5] = static_cast<char>(v6.size());
  ip6[6] = 58;
  sockaddr_storage s;
  IpAddress::Parse("2001:db8::5")->ToSockaddr(0, &s);
  memcpy(&ip6[24], &reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr, 16);
  auto echo = ParseLoopedEcho(std::string(14, '\0') + ip6 + v6, true);
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->destination.ToString(), "2001:db8::5");
  EXPECT_EQ(echo->sequence, 8);
}

TEST(ParseLoopedEchoTest, RejectsWhatIsNotOneOfOurRequests) {
  std::string request = BuildEchoRequest(false, 1, 2, "p");
  std::string packet = WithIpv4Header(request, "192.0.2.9");
  EXPECT_FALSE(ParseLoopedEcho("", false).has_value());
  EXPECT_FALSE(ParseLoopedEcho(request, false).has_value());  // no IP header
  // Truncated (length fields disagree), bad header checksum, a reply.
  EXPECT_FALSE(
      ParseLoopedEcho(packet.substr(0, packet.size() - 1), false).has_value());
  std::string corrupted = packet;
  corrupted[8] ^= 1;
  EXPECT_FALSE(ParseLoopedEcho(corrupted, false).has_value());
  EXPECT_FALSE(ParseLoopedEcho(
                   WithIpv4Header(AsReply(request, false), "192.0.2.9"), false)
                   .has_value());
  EXPECT_FALSE(ParseLoopedEcho(std::string(100, '\0'), true).has_value());
}

TEST(IpAddressTest, ParsePrintCompare) {
  EXPECT_EQ(IpAddress::Parse("127.0.0.1")->ToString(), "127.0.0.1");
  EXPECT_EQ(IpAddress::Parse("::1")->ToString(), "::1");
  EXPECT_TRUE(IpAddress::Parse("::1")->is_v6());
  EXPECT_FALSE(IpAddress::Parse("localhost").has_value());
  EXPECT_EQ(*IpAddress::Parse("10.0.0.1"), *IpAddress::Parse("10.0.0.1"));
  EXPECT_NE(*IpAddress::Parse("10.0.0.1"), *IpAddress::Parse("10.0.0.2"));
}

// The prober builds requests into reused buffers and checks payloads
// without building them: both agree with the allocating builders.
TEST(IcmpPacketTest, BuildIntoAndPayloadMatchAgreeWithTheBuilders) {
  std::string buffer = "left over from a longer packet, to be replaced";
  for (bool ipv6 : {false, true}) {
    for (int size : {0, 5, 16, 56, 1400}) {
      std::string payload = BuildProbePayload(0x0102030405060708, 42, size);
      ASSERT_EQ(payload.size(), static_cast<size_t>(size));
      BuildEchoRequestInto(ipv6, 0x1234, 7, 0x0102030405060708, 42, size,
                           &buffer);
      EXPECT_EQ(buffer, BuildEchoRequest(ipv6, 0x1234, 7, payload));
      EXPECT_TRUE(ProbePayloadMatches(payload, 0x0102030405060708, 42, size));
      // Another probe's token (when the payload is long enough to hold it).
      if (size >= 16) {
        EXPECT_FALSE(
            ProbePayloadMatches(payload, 0x0102030405060708, 43, size));
      }
      EXPECT_FALSE(
          ProbePayloadMatches(payload + "x", 0x0102030405060708, 42, size));
      if (size > 0) {
        std::string corrupted = payload;
        corrupted.back() ^= 1;
        EXPECT_FALSE(
            ProbePayloadMatches(corrupted, 0x0102030405060708, 42, size));
      }
    }
  }
}

}  // namespace
}  // namespace latency
