#include "server/prober/event_poller.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace latency {

EventPoller::Pwait2 EventPoller::SystemPwait2() {
  return [](int epoll_fd, epoll_event* events, int max_events,
            const timespec* timeout) {
    // The raw call, as seccomp sees it; glibc's wrapper adds nothing here.
    return static_cast<int>(syscall(SYS_epoll_pwait2, epoll_fd, events,
                                    max_events, timeout, nullptr, 0));
  };
}

absl::StatusOr<std::unique_ptr<EventPoller>> EventPoller::Create(
    Pwait2 pwait2) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    return absl::InternalError(
        absl::StrCat("epoll_create1: ", strerror(errno)));
  }
  int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd < 0) {
    int error = errno;
    close(epoll_fd);
    return absl::InternalError(
        absl::StrCat("timerfd_create: ", strerror(error)));
  }
  std::unique_ptr<EventPoller> poller(
      new EventPoller(epoll_fd, timer_fd, std::move(pwait2)));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u32 = kReservedTag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer_fd, &event) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll_ctl(timerfd): ", strerror(errno)));
  }
  return poller;
}

EventPoller::~EventPoller() {
  close(timer_fd_);
  close(epoll_fd_);
}

absl::Status EventPoller::Add(int fd, uint32_t events, uint32_t tag) {
  epoll_event event{};
  event.events = events;
  event.data.u32 = tag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  return absl::OkStatus();
}

int EventPoller::Wait(epoll_event* events, int max_events,
                      std::optional<int64_t> timeout_ns) {
  if (use_pwait2_) {
    timespec timeout{};
    if (timeout_ns) {
      int64_t ns = std::max<int64_t>(0, *timeout_ns);
      timeout = {static_cast<time_t>(ns / 1'000'000'000),
                 static_cast<long>(ns % 1'000'000'000)};
    }
    int n =
        pwait2_(epoll_fd_, events, max_events, timeout_ns ? &timeout : nullptr);
    if (n >= 0) return n;
    int error = errno;
    if (error != ENOSYS && error != EPERM) {
      NoteError("epoll_pwait2", error);
      return 0;
    }
    use_pwait2_ = false;
    Logger("prober")->warn(
        "epoll_pwait2 unavailable ({}: kernel older than 5.11, or a seccomp "
        "profile without it): using epoll_wait with a timerfd",
        strerror(error));
  }
  return WaitFallback(events, max_events, timeout_ns);
}

int EventPoller::WaitFallback(epoll_event* events, int max_events,
                              std::optional<int64_t> timeout_ns) {
  int timeout_ms = -1;
  if (timeout_ns) {
    int64_t ns = std::max<int64_t>(0, *timeout_ns);
    if (ns > 0) {
      // The timer wakes us on time; epoll_wait's own (rounded up)
      // millisecond timeout is only a safety net.
      itimerspec when{};
      when.it_value = {static_cast<time_t>(ns / 1'000'000'000),
                       static_cast<long>(ns % 1'000'000'000)};
      if (timerfd_settime(timer_fd_, 0, &when, nullptr) != 0) {
        NoteError("timerfd_settime", errno);
      }
    }
    timeout_ms = static_cast<int>(
        std::min<int64_t>((ns + 999'999) / 1'000'000, 1 << 30));
  }
  int n = epoll_wait(epoll_fd_, events, max_events, timeout_ms);
  if (n < 0) {
    NoteError("epoll_wait", errno);
    return 0;
  }
  // Drop the timer's own event (and consume its expiry).
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u32 == kReservedTag) {
      uint64_t expirations;
      ssize_t ignored = read(timer_fd_, &expirations, sizeof(expirations));
      (void)ignored;
      continue;
    }
    events[kept++] = events[i];
  }
  return kept;
}

void EventPoller::NoteError(const char* call, int error) {
  if (error == EINTR) return;
  // Log the first few, then every 1000th: an error that repeats on every
  // wake-up must not flood the log.
  if (++errors_ <= 3 || errors_ % 1000 == 0) {
    Logger("prober")->error("{} failed ({} so far): {}", call, errors_,
                            strerror(error));
  }
}

}  // namespace latency
