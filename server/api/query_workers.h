#ifndef LATENCY_SERVER_API_QUERY_WORKERS_H_
#define LATENCY_SERVER_API_QUERY_WORKERS_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace latency {

// The nice value of every thread that answers queries (HTTP and gRPC), above
// the probers' 0: a gRPC probe's RTT includes its threads' wake-ups, which
// otherwise queue behind busy query threads (BENCHMARKS.md, "Probe medians
// under query load").
inline constexpr int kQueryThreadNice = 10;

// Lowers the calling thread to kQueryThreadNice (Linux nice values are per
// thread). Failing only costs the priority, so it is not reported.
void LowerToQueryPriority();

// QueryWorkers runs the gRPC query service's unary calls on its own threads
// at kQueryThreadNice instead of on gRPC's, which the gRPC prober's
// completions share. Bounded: Post refuses work when max_queued tasks
// already wait (the caller answers RESOURCE_EXHAUSTED), so a flood of
// queries costs a refusal, not memory. Destruction runs what is queued
// (each task finishes a call the server's shutdown waits for), then joins.
class QueryWorkers {
 public:
  QueryWorkers(int threads, int max_queued);
  ~QueryWorkers();
  QueryWorkers(const QueryWorkers&) = delete;
  QueryWorkers& operator=(const QueryWorkers&) = delete;

  // Queues `task`; false (and `task` dropped) when the queue is full.
  bool Post(std::function<void()> task);
  int max_queued() const { return max_queued_; }

 private:
  void Run();

  const int max_queued_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_QUERY_WORKERS_H_
