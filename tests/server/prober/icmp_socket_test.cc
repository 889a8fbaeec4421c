// The Linux ICMP socket against the real loopback: batches out with
// sendmmsg and back with recvmmsg, TX stamps on the error queue, and a
// payload too large for the batch buffers read whole. Runs with whichever
// socket this process may open (datagram with ping_group_range, raw as
// root); a machine that allows neither fails, as the server would.
#include "server/prober/icmp_socket.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/prober/icmp_packet.h"

namespace latency {
namespace {

constexpr uint64_t kNonce = 0x0102030405060708;

class IcmpSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<IcmpSocket>> opened =
        OpenIcmpSocket(/*ipv6=*/false, RealClockInstance());
    ASSERT_TRUE(opened.ok()) << opened.status();
    socket_ = std::move(*opened);
  }

  // Reads `queue` until `done(items so far)` or 5 s passed. A raw socket
  // (root without ping_group_range) also reads other processes' replies,
  // e.g. a test running beside this one: `done` looks for ours.
  template <typename Done>
  std::vector<IcmpReceived> ReadUntil(bool error_queue, Done done) {
    std::vector<IcmpReceived> all, batch(16);
    int64_t deadline = RealClockInstance().MonotonicNanos() + 5'000'000'000;
    while (!done(all) && RealClockInstance().MonotonicNanos() < deadline) {
      IcmpReceiveResult read =
          socket_->Receive(error_queue, absl::MakeSpan(batch));
      for (size_t i = 0; i < read.items; ++i) all.push_back(batch[i]);
      if (read.items == 0) {
        pollfd p{socket_->fd(), static_cast<short>(POLLIN | POLLERR), 0};
        poll(&p, 1, 10);
      }
    }
    return all;
  }

  // The replies among `items` to our id, by sequence.
  std::set<uint16_t> RepliedSequences(const std::vector<IcmpReceived>& items) {
    std::set<uint16_t> sequences;
    for (const IcmpReceived& item : items) {
      absl::StatusOr<ParsedIcmp> parsed =
          ParseIcmp(item.data, false, socket_->ip_header_included());
      if (parsed.ok() && parsed->kind == ParsedIcmp::Kind::kEchoReply &&
          parsed->id == socket_->id() && parsed->sequence) {
        sequences.insert(*parsed->sequence);
      }
    }
    return sequences;
  }

  std::unique_ptr<IcmpSocket> socket_;
};

TEST_F(IcmpSocketTest, ABatchGoesOutInOneCallAndComesBackWhole) {
  constexpr size_t kProbes = 150;  // over two sendmmsg and recvmmsg batches
  IpAddress loopback = *IpAddress::Parse("127.0.0.1");
  std::vector<std::string> messages(kProbes);
  std::vector<IcmpOutgoing> batch;
  for (size_t i = 0; i < kProbes; ++i) {
    BuildEchoRequestInto(false, socket_->id(), static_cast<uint16_t>(i), kNonce,
                         i, 56, &messages[i]);
    // IDs far apart: the kernel must carry each one, not count sends.
    batch.push_back(IcmpOutgoing{loopback, messages[i],
                                 static_cast<uint32_t>(i * 14'000'000 + 7),
                                 absl::OkStatus()});
  }
  socket_->SendBatch(absl::MakeSpan(batch));
  for (const IcmpOutgoing& out : batch) {
    EXPECT_TRUE(out.result.ok()) << out.result;
  }

  std::set<uint16_t> sequences = RepliedSequences(
      ReadUntil(/*error_queue=*/false, [&](const auto& so_far) {
        return RepliedSequences(so_far).size() == kProbes;
      }));
  EXPECT_EQ(sequences.size(), kProbes);
  if (socket_->kernel_timestamps()) {
    // Only this socket's own sends are stamped on its error queue.
    std::vector<IcmpReceived> stamps = ReadUntil(
        /*error_queue=*/true,
        [&](const auto& so_far) { return so_far.size() >= kProbes; });
    ASSERT_THAT(stamps, ::testing::SizeIs(kProbes));
    std::set<uint16_t> stamped;
    for (const IcmpReceived& stamp : stamps) {
      EXPECT_EQ(stamp.kind, IcmpReceived::Kind::kTxTimestamp);
      EXPECT_TRUE(stamp.kernel_realtime_ns.has_value());
      if (socket_->stamps_by_id()) {
        // The stamp alone, named by its send's ID.
        ASSERT_TRUE(stamp.stamp_id.has_value());
        EXPECT_EQ(*stamp.stamp_id % 14'000'000, 7u);
        EXPECT_EQ(stamp.data, "");
        stamped.insert(static_cast<uint16_t>(*stamp.stamp_id / 14'000'000));
      } else {
        EXPECT_FALSE(stamp.stamp_id.has_value());
        std::optional<LoopedEcho> echo = ParseLoopedEcho(stamp.data, false);
        ASSERT_TRUE(echo.has_value());
        stamped.insert(echo->sequence);
      }
    }
    EXPECT_EQ(stamped, sequences);
  }
}

// Linux 6.13 takes a TX stamp's ID with each send (SCM_TS_OPT_ID), on
// IPv4 and IPv6 sockets: stamps then come back named by it, without the
// packet for the prober to parse. (Older kernels may have it backported;
// they are held to nothing here.)
TEST(IcmpSocketIdTest, StampsByIdWhereTheKernelTakesThem) {
  utsname name;
  ASSERT_EQ(uname(&name), 0);
  int major = 0, minor = 0;
  ASSERT_EQ(sscanf(name.release, "%d.%d", &major, &minor), 2);
  const bool takes_ids = major > 6 || (major == 6 && minor >= 13);
  for (bool ipv6 : {false, true}) {
    SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
    absl::StatusOr<std::unique_ptr<IcmpSocket>> opened =
        OpenIcmpSocket(ipv6, RealClockInstance());
    ASSERT_TRUE(opened.ok()) << opened.status();
    IcmpSocket& socket = **opened;
    std::string message;
    BuildEchoRequestInto(ipv6, socket.id(), 3, kNonce, 1, 56, &message);
    IcmpOutgoing out{*IpAddress::Parse(ipv6 ? "::1" : "127.0.0.1"), message,
                     0x7654'3210, absl::OkStatus()};
    socket.SendBatch(absl::MakeSpan(&out, 1));
    ASSERT_TRUE(out.result.ok()) << out.result;
    std::vector<IcmpReceived> items(4);
    IcmpReceiveResult read;
    for (int tries = 0; tries < 500 && read.items == 0; ++tries) {
      pollfd p{socket.fd(), POLLERR, 0};
      poll(&p, 1, 10);
      read = socket.Receive(/*error_queue=*/true, absl::MakeSpan(items));
    }
    ASSERT_EQ(read.items, 1u);
    ASSERT_EQ(items[0].kind, IcmpReceived::Kind::kTxTimestamp);
    if (takes_ids) {
      EXPECT_TRUE(socket.stamps_by_id()) << name.release;
    }
    if (socket.stamps_by_id()) {
      EXPECT_THAT(items[0].stamp_id, ::testing::Optional(0x7654'3210u));
      EXPECT_EQ(items[0].data, "");
    } else {
      EXPECT_TRUE(ParseLoopedEcho(items[0].data, ipv6).has_value());
    }
  }
}

// Kernels that do not take the per-send ID, played for real: one refuses
// a control message it does not know (EINVAL: before 6.13), one ignores a
// level it does not handle, as IPv6 datagram sockets before 5.19 ignore
// every control message, and stamps by its own count of sends. Either way
// the probes still go out, and from the next batch on (the first at once
// when refused) the stamps carry their packets.
struct OlderKernel {
  bool ipv6;
  bool refuses;  // else ignores
};

class IcmpSocketOlderKernelTest : public ::testing::TestWithParam<OlderKernel> {
 protected:
  void SetUp() override {
    StampIdControl control;
    if (GetParam().refuses) {
      control.type = 0x7fff;  // no such SOL_SOCKET message
    } else {
      control.level = IPPROTO_TCP;  // not read by an ICMP socket
    }
    absl::StatusOr<std::unique_ptr<IcmpSocket>> opened =
        OpenIcmpSocket(GetParam().ipv6, RealClockInstance(), control);
    ASSERT_TRUE(opened.ok()) << opened.status();
    socket_ = std::move(*opened);
    ASSERT_TRUE(socket_->kernel_timestamps());
  }

  void SendThree(uint16_t first_sequence) {
    IpAddress loopback =
        *IpAddress::Parse(GetParam().ipv6 ? "::1" : "127.0.0.1");
    std::vector<std::string> messages(3);
    std::vector<IcmpOutgoing> batch;
    for (size_t i = 0; i < messages.size(); ++i) {
      BuildEchoRequestInto(GetParam().ipv6, socket_->id(),
                           static_cast<uint16_t>(first_sequence + i), kNonce, i,
                           56, &messages[i]);
      batch.push_back(IcmpOutgoing{loopback, messages[i],
                                   static_cast<uint32_t>(i), absl::OkStatus()});
    }
    socket_->SendBatch(absl::MakeSpan(batch));
    for (const IcmpOutgoing& out : batch) {
      EXPECT_TRUE(out.result.ok()) << out.result;
    }
  }

  // Reads three TX stamps (5 s at most): the sequences of the packets they
  // carry; none may carry an ID.
  std::set<uint16_t> ReadThreeStamps() {
    std::set<uint16_t> sequences;
    std::vector<IcmpReceived> items(8);
    int stamps = 0;
    int64_t deadline = RealClockInstance().MonotonicNanos() + 5'000'000'000;
    while (stamps < 3 && RealClockInstance().MonotonicNanos() < deadline) {
      IcmpReceiveResult read =
          socket_->Receive(/*error_queue=*/true, absl::MakeSpan(items));
      for (size_t i = 0; i < read.items; ++i) {
        EXPECT_EQ(items[i].kind, IcmpReceived::Kind::kTxTimestamp);
        EXPECT_FALSE(items[i].stamp_id.has_value());
        ++stamps;
        std::optional<LoopedEcho> echo =
            ParseLoopedEcho(items[i].data, GetParam().ipv6);
        if (echo) sequences.insert(echo->sequence);
      }
      if (read.items == 0) {
        pollfd p{socket_->fd(), POLLERR, 0};
        poll(&p, 1, 10);
      }
    }
    EXPECT_EQ(stamps, 3);
    return sequences;
  }

  std::unique_ptr<IcmpSocket> socket_;
};

TEST_P(IcmpSocketOlderKernelTest, StampsCarryThePacketsOnceTheIdIsNotTaken) {
  SendThree(100);
  std::set<uint16_t> first = ReadThreeStamps();
  EXPECT_FALSE(socket_->stamps_by_id());
  if (GetParam().refuses) {
    EXPECT_EQ(first, (std::set<uint16_t>{100, 101, 102}));
  } else {
    EXPECT_THAT(first, ::testing::IsEmpty());  // stamps alone, unnamed
  }
  SendThree(200);
  EXPECT_EQ(ReadThreeStamps(), (std::set<uint16_t>{200, 201, 202}));
}

INSTANTIATE_TEST_SUITE_P(
    RefusesOrIgnores, IcmpSocketOlderKernelTest,
    ::testing::Values(OlderKernel{false, true}, OlderKernel{false, false},
                      OlderKernel{true, true}, OlderKernel{true, false}),
    [](const ::testing::TestParamInfo<OlderKernel>& kernel) {
      return std::string(kernel.param.ipv6 ? "Ipv6" : "Ipv4") +
             (kernel.param.refuses ? "Refuses" : "Ignores");
    });

// A batch's packets count against the send buffer until the device has
// sent them: with the default (about 200 KB) a few hundred probes leaving
// at once behind a queue were refused with EAGAIN (100k targets on the
// namespace testbed: 3,600 send failures in 20 s).
TEST_F(IcmpSocketTest, TheSendBufferHoldsBurstsOfProbes) {
  int send_buffer = 0;
  socklen_t length = sizeof(send_buffer);
  ASSERT_EQ(
      getsockopt(socket_->fd(), SOL_SOCKET, SO_SNDBUF, &send_buffer, &length),
      0);
  int max_without_privilege = 0;
  std::ifstream("/proc/sys/net/core/wmem_max") >> max_without_privilege;
  // The kernel doubles what is asked; root may exceed wmem_max.
  EXPECT_GE(send_buffer, geteuid() == 0 ? 8 << 20 : 2 * max_without_privilege);
}

TEST_F(IcmpSocketTest, AReplyLargerThanTheBatchBuffersIsReadWhole) {
  constexpr int kPayload = 60'000;
  std::string message;
  BuildEchoRequestInto(false, socket_->id(), 9, kNonce, 1, kPayload, &message);
  ASSERT_TRUE(socket_->Send(*IpAddress::Parse("127.0.0.1"), message).ok());
  std::vector<IcmpReceived> items = ReadUntil(
      /*error_queue=*/false,
      [&](const auto& so_far) { return !RepliedSequences(so_far).empty(); });
  ASSERT_THAT(RepliedSequences(items), ::testing::ElementsAre(9));
  for (const IcmpReceived& item : items) {
    absl::StatusOr<ParsedIcmp> parsed =
        ParseIcmp(item.data, false, socket_->ip_header_included());
    // Ours: a raw socket also reads other tests' replies (TSan's parallel
    // run read another socket's sequence 9).
    if (parsed.ok() && parsed->id == socket_->id() && parsed->sequence == 9) {
      EXPECT_TRUE(ProbePayloadMatches(parsed->payload, kNonce, 1, kPayload));
    }
  }
}

}  // namespace
}  // namespace latency
