#include "server/prober/resolver.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

// A resolver that blocks until released, like one that never answers.
class BlockingResolve {
 public:
  absl::StatusOr<IpAddress> operator()(const std::string& host,
                                       AddressFamily /*family*/) {
    {
      absl::MutexLock lock(&mu_);
      ++started_;
    }
    release_.WaitForNotification();
    return host == "bad" ? absl::StatusOr<IpAddress>(
                               absl::UnavailableError("resolving bad"))
                         : *IpAddress::Parse("10.0.0.7");
  }
  void WaitStarted(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return started_ >= n;
    };
    mu_.Await(absl::Condition(&reached));
  }
  void Release() { release_.Notify(); }

 private:
  absl::Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification release_;
};

TEST(ResolverPoolTest, ResolvesInParallel) {
  auto resolve = std::make_shared<BlockingResolve>();
  ResolverPool pool(4, [resolve](const std::string& h, AddressFamily f) {
    return (*resolve)(h, f);
  });
  absl::Mutex mu;
  std::vector<std::string> results;
  absl::Notification all_done;
  for (const char* host : {"a", "b", "bad"}) {
    pool.Submit(
        host, AddressFamily::kAny,
        [&, host](const absl::StatusOr<IpAddress>& address) {
          absl::MutexLock lock(&mu);
          results.push_back(std::string(host) + "=" +
                            (address.ok() ? address->ToString() : "error"));
          if (results.size() == 3) all_done.Notify();
        });
  }
  // All three are blocked in the resolver at once: none waits for another.
  resolve->WaitStarted(3);
  resolve->Release();
  all_done.WaitForNotification();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(results, ::testing::UnorderedElementsAre(
                           "a=10.0.0.7", "b=10.0.0.7", "bad=error"));
}

// Shutdown with a dead resolver: the pool's destructor returns while a
// resolution hangs, and that result is never delivered.
TEST(ResolverPoolTest, DestroyingNeverWaitsForAHungResolution) {
  auto resolve = std::make_shared<BlockingResolve>();
  auto delivered = std::make_shared<std::atomic<int>>(0);
  {
    ResolverPool pool(1, [resolve](const std::string& h, AddressFamily f) {
      return (*resolve)(h, f);
    });
    pool.Submit(
        "a", AddressFamily::kAny,
        [delivered](const absl::StatusOr<IpAddress>&) { ++*delivered; });
    pool.Submit(
        "b", AddressFamily::kAny,
        [delivered](const absl::StatusOr<IpAddress>&) { ++*delivered; });
    resolve->WaitStarted(1);
  }  // returns although "a" is still being resolved
  resolve->Release();
  // Had the pool waited, the block above would never have ended. The worker
  // now finishes "a", finds the pool gone and exits without delivering; "b"
  // was dropped.
  EXPECT_EQ(delivered->load(), 0);
}

}  // namespace
}  // namespace latency
