#include "tests/testing/raw_tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/time/clock.h"

namespace latency::testing {

RawTcp::RawTcp(int port, const char* source) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  if (source != nullptr) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawTcp::~RawTcp() {
  if (fd_ >= 0) close(fd_);
}

bool RawTcp::Send(absl::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void RawTcp::ShutdownWrite() { shutdown(fd_, SHUT_WR); }

std::string RawTcp::ReadUntil(absl::string_view marker, int count,
                              absl::Duration timeout) {
  std::string bytes;
  const absl::Time deadline = absl::Now() + timeout;
  // Counts markers in what arrived since the last look (plus a marker's
  // length before it), so reading a long reply stays linear.
  int seen = 0;
  size_t from = 0;
  auto found = [&] {
    for (size_t at = bytes.find(marker.data(), from, marker.size());
         at != std::string::npos;
         at = bytes.find(marker.data(), at + marker.size(), marker.size())) {
      ++seen;
      from = at + marker.size();
    }
    if (bytes.size() >= marker.size()) {
      from = std::max(from, bytes.size() - marker.size() + 1);
    }
    return seen >= count;
  };
  while (!found()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <=
        0) {
      continue;
    }
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  return bytes;
}

std::string RawTcp::ReadUntilClose(absl::Duration timeout) {
  // A marker that never appears: read to the end.
  return ReadUntil(absl::string_view("\0\0never\0\0", 9), 1, timeout);
}

bool RawTcp::ClosedByPeer(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // ReadUntilClose returns early only when the peer closed.
  ReadUntilClose(timeout);
  return absl::Now() < deadline;
}

}  // namespace latency::testing
