#ifndef LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_
#define LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_

#include <functional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/prober/echo_client.h"

namespace latency::testing {

// FakeEchoClient keeps each call until the test completes it.
// Like the real clients, destroying it cancels the calls still open (their
// callbacks get CANCELLED).
class FakeEchoClient final : public EchoClient {
 public:
  struct Call {
    v1::EchoRequest request;
    absl::Duration timeout;
    Done done;
  };

  ~FakeEchoClient() override {
    std::vector<Call> open;
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < calls_.size(); ++i) {
        if (!answered_[i]) open.push_back(calls_[i]);
      }
    }
    for (Call& call : open) {
      call.done(grpc::Status(grpc::StatusCode::CANCELLED, "client destroyed"),
                v1::EchoResponse());
    }
  }

  void Echo(const v1::EchoRequest& request, absl::Duration timeout,
            Done done) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({request, timeout, std::move(done)});
    answered_.push_back(false);
  }
  grpc_connectivity_state State() override { return state; }
  void Connect() override { ++connects; }

  size_t call_count() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  Call TakeCall(size_t i) {
    absl::MutexLock lock(&mu_);
    return calls_.at(i);
  }
  // Answers call i like an agent whose handler took `agent_time_ns`.
  // `edit` may add to the response (wire stamps, holds).
  void Reply(size_t i, int64_t agent_time_ns,
             const std::function<void(v1::EchoResponse&)>& edit = nullptr) {
    Call call = Answer(i);
    v1::EchoResponse response;
    response.set_client_send_time_ns(call.request.client_send_time_ns());
    if (edit) edit(response);
    response.set_sequence(call.request.sequence());
    response.set_payload(call.request.payload());
    response.set_agent_receive_time_ns(5'000);
    response.set_agent_send_time_ns(5'000 + agent_time_ns);
    call.done(grpc::Status::OK, response);
  }
  void Fail(size_t i, const grpc::Status& status) {
    Answer(i).done(status, v1::EchoResponse());
  }

  grpc_connectivity_state state = GRPC_CHANNEL_READY;
  int connects = 0;

 private:
  Call Answer(size_t i) {
    absl::MutexLock lock(&mu_);
    answered_.at(i) = true;
    return calls_.at(i);
  }

  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> answered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_FAKE_ECHO_CLIENT_H_
