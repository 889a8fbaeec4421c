#ifndef LATENCY_TESTS_TESTING_RAW_TCP_H_
#define LATENCY_TESTS_TESTING_RAW_TCP_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace latency::testing {

// A raw TCP client for tests that must misbehave where an HTTP client
// library would not: trickle bytes, never read, half-close, pipeline.
class RawTcp {
 public:
  // Connects to 127.0.0.1:port (from `source`, another loopback address,
  // when set); ok() says whether it did.
  explicit RawTcp(int port, const char* source = nullptr);
  ~RawTcp();
  RawTcp(const RawTcp&) = delete;
  RawTcp& operator=(const RawTcp&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(absl::string_view bytes);
  void ShutdownWrite();
  // Reads until the peer closes or `timeout` passes.
  std::string ReadUntilClose(absl::Duration timeout);
  // Reads until `bytes` holds `marker` `count` times, the peer closes, or
  // `timeout` passes.
  std::string ReadUntil(absl::string_view marker, int count,
                        absl::Duration timeout);
  // True once the peer has closed (reads 0 or an error without waiting
  // longer than `timeout`); data read on the way is discarded.
  bool ClosedByPeer(absl::Duration timeout);

 private:
  int fd_ = -1;
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_RAW_TCP_H_
