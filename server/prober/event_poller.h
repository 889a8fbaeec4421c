#ifndef LATENCY_SERVER_PROBER_EVENT_POLLER_H_
#define LATENCY_SERVER_PROBER_EVENT_POLLER_H_

#include <sys/epoll.h>
#include <time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

namespace latency {

// EventPoller waits on an epoll set with a nanosecond timeout, as the ICMP
// loop needs for sub-millisecond sends and deadlines. It uses epoll_pwait2
// (Linux 5.11+); when that call is missing (ENOSYS: older kernels) or
// forbidden (EPERM/ENOSYS: a seccomp profile without it) it switches for
// good to epoll_wait plus a timerfd armed for the exact wake-up, so short
// timeouts still wake on time instead of spinning. Other errors are logged
// and read as "no events". Not thread-safe: one loop owns it.
class EventPoller {
 public:
  // The epoll_pwait2 system call (no signal mask), injectable so tests can
  // make it fail as a seccomp profile or an old kernel would.
  using Pwait2 = std::function<int(int epoll_fd, epoll_event* events,
                                   int max_events, const timespec* timeout)>;
  static Pwait2 SystemPwait2();

  static absl::StatusOr<std::unique_ptr<EventPoller>> Create(
      Pwait2 pwait2 = SystemPwait2());
  ~EventPoller();
  EventPoller(const EventPoller&) = delete;
  EventPoller& operator=(const EventPoller&) = delete;

  // Watches `fd` for `events`; Wait reports it with data.u32 == tag
  // (any value but kReservedTag).
  absl::Status Add(int fd, uint32_t events, uint32_t tag);
  // Waits until an event or `timeout_ns` (nullopt: no timeout) passes.
  // Returns how many events it wrote to `events` (0 on timeout or error).
  int Wait(epoll_event* events, int max_events,
           std::optional<int64_t> timeout_ns);

  // False once it has fallen back to epoll_wait + timerfd.
  bool using_pwait2() const { return use_pwait2_; }

  static constexpr uint32_t kReservedTag = 0xffffffff;  // the timerfd

 private:
  EventPoller(int epoll_fd, int timer_fd, Pwait2 pwait2)
      : epoll_fd_(epoll_fd), timer_fd_(timer_fd), pwait2_(std::move(pwait2)) {}
  int WaitFallback(epoll_event* events, int max_events,
                   std::optional<int64_t> timeout_ns);
  void NoteError(const char* call, int error);

  const int epoll_fd_;
  const int timer_fd_;
  Pwait2 pwait2_;
  bool use_pwait2_ = true;
  uint64_t errors_ = 0;
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBER_EVENT_POLLER_H_
