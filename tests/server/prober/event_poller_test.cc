#include "server/prober/event_poller.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

// An epoll_pwait2 that fails as under a seccomp profile (EPERM, or ENOSYS
// as newer container runtimes answer) or on a kernel older than 5.11.
struct FailingPwait2 {
  int error;
  int* calls;
  int operator()(int, epoll_event*, int, const timespec*) const {
    ++*calls;
    errno = error;
    return -1;
  }
};

class EventPollerTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(event_fd_, 0);
  }
  void TearDown() override { close(event_fd_); }
  void Signal() {
    uint64_t one = 1;
    ASSERT_EQ(write(event_fd_, &one, sizeof(one)), 8);
  }
  int event_fd_ = -1;
};

TEST_P(EventPollerTest, FallsBackToEpollWaitAndStillWakesOnTime) {
  int calls = 0;
  auto poller = EventPoller::Create(FailingPwait2{GetParam(), &calls});
  ASSERT_TRUE(poller.ok()) << poller.status();
  ASSERT_TRUE((*poller)->Add(event_fd_, EPOLLIN, 7).ok());

  // A ready fd is reported, through the fallback.
  Signal();
  epoll_event events[4];
  int n = (*poller)->Wait(events, 4, 1'000'000'000);
  ASSERT_EQ(n, 1);
  EXPECT_EQ(events[0].data.u32, 7u);
  EXPECT_FALSE((*poller)->using_pwait2());
  EXPECT_EQ(calls, 1);

  // Nothing ready: a sub-millisecond timeout returns no events, not before
  // it has passed (timerfd never fires early), and never spins forever.
  uint64_t drained;
  ASSERT_EQ(read(event_fd_, &drained, sizeof(drained)), 8);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ((*poller)->Wait(events, 4, 300'000), 0);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::microseconds(300));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(calls, 1);  // the failing call is not retried
}

INSTANTIATE_TEST_SUITE_P(SeccompAndOldKernels, EventPollerTest,
                         ::testing::Values(EPERM, ENOSYS));

TEST(EventPollerOtherErrorsTest, AreNoEventsAndKeepEpollPwait2) {
  int calls = 0;
  auto poller = EventPoller::Create(FailingPwait2{EBADF, &calls});
  ASSERT_TRUE(poller.ok());
  epoll_event events[1];
  EXPECT_EQ((*poller)->Wait(events, 1, 0), 0);
  EXPECT_EQ((*poller)->Wait(events, 1, 0), 0);
  EXPECT_TRUE((*poller)->using_pwait2());
  EXPECT_EQ(calls, 2);
}

TEST(EventPollerSystemTest, RealEpollPwait2ReportsReadyFds) {
  auto poller = EventPoller::Create();
  ASSERT_TRUE(poller.ok());
  int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_TRUE((*poller)->Add(fd, EPOLLIN, 3).ok());
  epoll_event events[2];
  ASSERT_EQ((*poller)->Wait(events, 2, 0), 1);
  EXPECT_EQ(events[0].data.u32, 3u);
  close(fd);
}

}  // namespace
}  // namespace latency
