#include "common/wire_tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.pb.h"

namespace latency {
namespace {

using ::testing::Optional;

constexpr uint16_t kService = 50051;
constexpr uint16_t kClient = 40000;
constexpr int64_t kKey = 1'234'567'890'123;  // a monotonic clock's ns

void Put16(std::string& s, size_t at, uint16_t v) {
  s[at] = static_cast<char>(v >> 8);
  s[at + 1] = static_cast<char>(v & 0xff);
}
void Put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    s[at + i] = static_cast<char>(v >> (24 - 8 * i));
  }
}

// An IPv4 (or IPv6) TCP segment from port `from` to port `to`.
std::string Segment(uint16_t from, uint16_t to, uint32_t sequence,
                    const std::string& payload, bool v6 = false,
                    uint8_t protocol = IPPROTO_TCP) {
  std::string tcp(20, '\0');
  Put16(tcp, 0, from);
  Put16(tcp, 2, to);
  Put32(tcp, 4, sequence);
  tcp[12] = 5 << 4;  // no options
  tcp += payload;
  std::string ip;
  if (v6) {
    ip.assign(40, '\0');
    ip[0] = 0x60;
    Put16(ip, 4, static_cast<uint16_t>(tcp.size()));
    ip[6] = static_cast<char>(protocol);
    ip[23] = 1;  // ::1 -> ::2
    ip[39] = 2;
  } else {
    ip.assign(20, '\0');
    ip[0] = 0x45;
    Put16(ip, 2, static_cast<uint16_t>(20 + tcp.size()));
    ip[9] = static_cast<char>(protocol);
    ip[12] = 10;  // 10.0.0.1 -> 10.0.0.2
    ip[15] = 1;
    ip[16] = 10;
    ip[19] = 2;
  }
  return ip + tcp;
}

// An HTTP/2 DATA frame holding one gRPC message.
std::string DataFrame(const google::protobuf::Message& message) {
  std::string body = message.SerializeAsString();
  std::string grpc(5, '\0');
  Put32(grpc, 1, static_cast<uint32_t>(body.size()));
  grpc += body;
  std::string frame(9, '\0');
  frame[0] = static_cast<char>(grpc.size() >> 16);
  Put16(frame, 1, static_cast<uint16_t>(grpc.size() & 0xffff));
  frame[3] = 0;  // DATA
  frame[8] = 1;  // stream 1
  return frame + grpc;
}

std::string RequestFrame(int64_t key, const std::string& payload = "pppp") {
  v1::EchoRequest request;
  request.set_sequence(7);
  request.set_payload(payload);
  request.set_client_send_time_ns(key);
  return DataFrame(request);
}

std::string ReplyFrame(int64_t key) {
  v1::EchoResponse response;
  response.set_sequence(7);
  response.set_payload("pppp");
  response.set_client_send_time_ns(key);
  response.set_agent_receive_time_ns(kKey + 5);
  response.set_agent_send_time_ns(kKey + 9);
  response.set_agent_hostname("agent");
  return DataFrame(response);
}

class EchoSegmentIndexTest : public ::testing::Test {
 protected:
  EchoSegmentIndexTest() { index_.SetServicePorts({kService}); }
  void Add(const std::string& packet, bool outgoing, int64_t time_ns) {
    index_.Add(TappedPacket{
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(packet.data()),
                            packet.size()),
        outgoing, time_ns});
  }
  EchoSegmentIndex index_;
};

TEST_F(EchoSegmentIndexTest, FindsAnEchoByKeyInEachDirection) {
  // One host sees each segment leave and arrive (loopback).
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), true, 100);
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), false, 110);
  Add(Segment(kService, kClient, 1, ReplyFrame(kKey)), true, 200);
  Add(Segment(kService, kClient, 1, ReplyFrame(kKey)), false, 210);
  WireTimes times = index_.Find(kKey);
  EXPECT_EQ(times.request_out_ns, 100);
  EXPECT_EQ(times.request_in_ns, 110);
  EXPECT_EQ(times.reply_out_ns, 200);
  EXPECT_EQ(times.reply_in_ns, 210);
  EXPECT_THAT(times.RoundTripNs(), Optional(110));
  EXPECT_THAT(times.HoldNs(), Optional(90));
}

TEST_F(EchoSegmentIndexTest, EachHostSeesItsHalf) {
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), true, 100);
  WireTimes times = index_.Find(kKey);
  EXPECT_EQ(times.RoundTripNs(), std::nullopt);
  EXPECT_EQ(times.HoldNs(), std::nullopt);
  EXPECT_EQ(index_.Find(kKey + 1).request_out_ns, 0);
}

TEST_F(EchoSegmentIndexTest, FindsTheKeyAmongOtherFrames) {
  // A PING, a WINDOW_UPDATE and a HEADERS frame full of 0x18 bytes before
  // the DATA frame, and another call's DATA after it, in one segment.
  std::string ping("\x00\x00\x08\x06\x00\x00\x00\x00\x00", 9);
  ping += std::string(8, '\x18');
  std::string window("\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x01\x00\x00",
                     13);
  std::string headers("\x00\x00\x06\x01\x04\x00\x00\x00\x01", 9);
  headers += "\x18\x18\x83\x18\x81\x18";
  Add(Segment(kClient, kService, 1,
              ping + window + headers + RequestFrame(kKey) +
                  RequestFrame(kKey + 1)),
      true, 100);
  EXPECT_EQ(index_.Find(kKey).request_out_ns, 100);
  EXPECT_EQ(index_.Find(kKey + 1).request_out_ns, 100);
  // Nothing else looked like a key.
  EXPECT_EQ(index_.size(), 2u);
}

TEST_F(EchoSegmentIndexTest, AKeySplitAcrossSegmentsIsFoundInTheSecond) {
  std::string frame = RequestFrame(kKey);
  for (size_t cut = frame.size() - 9; cut < frame.size(); ++cut) {
    EchoSegmentIndex index;
    index.SetServicePorts({kService});
    std::string first = Segment(kClient, kService, 1000, frame.substr(0, cut));
    std::string second =
        Segment(kClient, kService, static_cast<uint32_t>(1000 + cut),
                frame.substr(cut));
    index.Add(
        {absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(first.data()),
                             first.size()),
         true, 100});
    index.Add(
        {absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(second.data()),
                             second.size()),
         true, 150});
    EXPECT_EQ(index.Find(kKey).request_out_ns, 150) << "cut at " << cut;
  }
}

TEST_F(EchoSegmentIndexTest, ASegmentAfterAGapIsNotJoinedToTheTail) {
  std::string frame = RequestFrame(kKey);
  size_t cut = frame.size() - 4;
  Add(Segment(kClient, kService, 1000, frame.substr(0, cut)), true, 100);
  // Not the next sequence number: a lost segment in between.
  Add(Segment(kClient, kService, static_cast<uint32_t>(1000 + cut + 1),
              frame.substr(cut)),
      true, 150);
  EXPECT_EQ(index_.Find(kKey).request_out_ns, 0);
}

TEST_F(EchoSegmentIndexTest, TheFirstSightingCounts) {
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), true, 100);
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), true, 300);  // resent
  EXPECT_EQ(index_.Find(kKey).request_out_ns, 100);
}

TEST_F(EchoSegmentIndexTest, IgnoresOtherPortsProtocolsAndFragments) {
  Add(Segment(kClient, 443, 1, RequestFrame(kKey)), true, 100);
  Add(Segment(kClient, kService, 1, RequestFrame(kKey), false, IPPROTO_UDP),
      true, 100);
  std::string fragment = Segment(kClient, kService, 1, RequestFrame(kKey));
  fragment[6] = 0x20;  // more fragments
  Add(fragment, true, 100);
  Add("", true, 100);
  Add(Segment(kClient, kService, 1, "").substr(0, 30), true, 100);  // cut
  EXPECT_EQ(index_.size(), 0u);
}

TEST_F(EchoSegmentIndexTest, ReadsIpv6) {
  Add(Segment(kClient, kService, 1, RequestFrame(kKey), true), true, 100);
  Add(Segment(kService, kClient, 1, ReplyFrame(kKey), true), false, 180);
  EXPECT_THAT(index_.Find(kKey).RoundTripNs(), Optional(80));
}

TEST_F(EchoSegmentIndexTest, KeysExpireAndForget) {
  Add(Segment(kClient, kService, 1, RequestFrame(kKey)), true, 100);
  Add(Segment(kClient, kService, 1, RequestFrame(kKey + 1)), true, 200);
  index_.Forget(kKey + 1);
  EXPECT_EQ(index_.Find(kKey + 1).request_out_ns, 0);
  Add(Segment(kClient, kService, 1, RequestFrame(kKey + 2)), true,
      100 + EchoSegmentIndex::kKeepNs + 1);
  EXPECT_EQ(index_.Find(kKey).request_out_ns, 0);
  EXPECT_EQ(index_.size(), 1u);
}

TEST(EchoPortFilterTest, TheKernelTakesItForAnyNumberOfPorts) {
  std::vector<uint16_t> ports;
  for (uint16_t p = 1; p <= 40; ++p) {
    ports.push_back(p);
    std::vector<sock_filter> program =
        EchoPortFilter(absl::MakeConstSpan(ports));
    for (size_t i = 0; i < program.size(); ++i) {
      const sock_filter& insn = program[i];
      if (BPF_CLASS(insn.code) != BPF_JMP) continue;
      if (BPF_OP(insn.code) == BPF_JA) {
        EXPECT_LT(i + 1 + insn.k, program.size());
      } else {
        EXPECT_LT(i + 1 + insn.jt, program.size());
        EXPECT_LT(i + 1 + insn.jf, program.size());
      }
    }
    EXPECT_EQ(BPF_CLASS(program.back().code), BPF_RET);
    // The kernel checks a program when it is attached (any socket will do).
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sock_fprog fprog{static_cast<unsigned short>(program.size()),
                     program.data()};
    EXPECT_EQ(
        setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog), 0)
        << ports.size() << " ports: " << strerror(errno);
    close(fd);
  }
}

// The real tap on loopback: needs CAP_NET_RAW (CI runs as root).
class WireTapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address),
        0);
    ASSERT_EQ(listen(listener_, 4), 0);
    socklen_t size = sizeof address;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    absl::StatusOr<std::unique_ptr<WireTap>> tap = WireTap::Open({});
    if (!tap.ok() && geteuid() != 0) {
      GTEST_SKIP() << "no CAP_NET_RAW: " << tap.status();
    }
    ASSERT_TRUE(tap.ok()) << tap.status();
    tap_ = std::move(*tap);
  }
  void TearDown() override { close(listener_); }

  // A connection to the listener: (client, server) sockets.
  std::pair<int, int> Connect(uint16_t port) {
    int client = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    EXPECT_EQ(
        connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address),
        0);
    return {client, accept(listener_, nullptr, nullptr)};
  }
  static void Pass(int from, int to, const std::string& bytes) {
    ASSERT_EQ(write(from, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    std::string got(bytes.size(), '\0');
    size_t have = 0;
    while (have < got.size()) {
      ssize_t n = read(to, got.data() + have, got.size() - have);
      ASSERT_GT(n, 0);
      have += static_cast<size_t>(n);
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<WireTap> tap_;
};

TEST_F(WireTapTest, StampsAnEchoOnLoopback) {
  tap_->AddServicePort(port_);
  auto [client, server] = Connect(port_);
  Pass(client, server, RequestFrame(kKey));
  Pass(server, client, ReplyFrame(kKey));
  WireTimes times = tap_->Lookup(kKey);
  // Loopback: this host sees each segment leave and arrive.
  std::optional<int64_t> round_trip = times.RoundTripNs();
  std::optional<int64_t> hold = times.HoldNs();
  ASSERT_TRUE(round_trip && hold);
  EXPECT_GT(*round_trip, *hold);
  EXPECT_GT(*hold, 0);
  EXPECT_LT(*round_trip, 1'000'000'000);
  EXPECT_THAT(tap_->TakeRoundTripNs(kKey), Optional(*round_trip));
  EXPECT_EQ(tap_->Lookup(kKey).request_out_ns, 0);  // taken
  close(client);
  close(server);
}

TEST_F(WireTapTest, OtherPortsStayOutOfTheKernelFilter) {
  tap_->AddServicePort(static_cast<uint16_t>(port_ == 9 ? 10 : 9));
  auto [client, server] = Connect(port_);
  Pass(client, server, RequestFrame(kKey));
  EXPECT_EQ(tap_->packets_read(), 0u);
  // Once its port is added, the next echo is seen.
  tap_->AddServicePort(port_);
  Pass(client, server, RequestFrame(kKey + 1));
  EXPECT_GT(tap_->Lookup(kKey + 1).request_out_ns, 0);
  EXPECT_EQ(tap_->dropped(), 0u);
  close(client);
  close(server);
}

TEST_F(WireTapTest, SegmentsWithoutDataStayOutOfTheKernelFilter) {
  tap_->AddServicePort(port_);
  // The handshake and the close: SYN, SYN-ACK, ACK, FIN, ACK, nothing else.
  auto [client, server] = Connect(port_);
  close(client);
  close(server);
  EXPECT_EQ(tap_->packets_read(), 0u);
}

}  // namespace
}  // namespace latency
