#ifndef LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_
#define LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_

#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/prober/echo_client.h"

namespace latency::testing {

// FakeEchoClient keeps each call until the test completes it.
class FakeEchoClient final : public EchoClient {
 public:
  struct Call {
    v1::EchoRequest request;
    absl::Duration timeout;
    Done done;
  };

  void Echo(const v1::EchoRequest& request, absl::Duration timeout,
            Done done) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({request, timeout, std::move(done)});
  }
  grpc_connectivity_state State() override { return state; }

  size_t call_count() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  Call TakeCall(size_t i) {
    absl::MutexLock lock(&mu_);
    return calls_.at(i);
  }
  // Answers call i like an agent whose handler took `agent_time_ns`.
  void Reply(size_t i, int64_t agent_time_ns) {
    Call call = TakeCall(i);
    v1::EchoResponse response;
    response.set_sequence(call.request.sequence());
    response.set_payload(call.request.payload());
    response.set_agent_receive_time_ns(5'000);
    response.set_agent_send_time_ns(5'000 + agent_time_ns);
    call.done(grpc::Status::OK, response);
  }
  void Fail(size_t i, const grpc::Status& status) {
    TakeCall(i).done(status, v1::EchoResponse());
  }

  grpc_connectivity_state state = GRPC_CHANNEL_READY;

 private:
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_
