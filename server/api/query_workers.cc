#include "server/api/query_workers.h"

#include <sys/resource.h>
#include <unistd.h>

namespace latency {

void LowerToQueryPriority() {
  int lowered =
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kQueryThreadNice);
  (void)lowered;
}

QueryWorkers::QueryWorkers(int threads, int max_queued)
    : max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

QueryWorkers::~QueryWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

bool QueryWorkers::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || static_cast<int>(queue_.size()) >= max_queued_) {
      return false;
    }
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
  return true;
}

void QueryWorkers::Run() {
  LowerToQueryPriority();
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace latency
