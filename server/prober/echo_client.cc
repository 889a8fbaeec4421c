#include "server/prober/echo_client.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace latency {
namespace {

// Counts calls in flight so a destructor can wait for their callbacks.
class InFlight {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  void Done() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  void WaitZero() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

class UnaryEchoClient final : public EchoClient {
 public:
  explicit UnaryEchoClient(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)),
        stub_(v1::EchoService::NewStub(channel_)) {}

  ~UnaryEchoClient() override {
    {
      absl::MutexLock lock(&mu_);
      for (grpc::ClientContext* context : contexts_) context->TryCancel();
    }
    in_flight_.WaitZero();
  }

  void Echo(const v1::EchoRequest& request, absl::Duration timeout,
            Done done) override {
    struct Call {
      grpc::ClientContext context;
      v1::EchoRequest request;
      v1::EchoResponse response;
    };
    auto* call = new Call;
    call->request = request;
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoNanoseconds(timeout));
    {
      absl::MutexLock lock(&mu_);
      contexts_.insert(&call->context);
    }
    in_flight_.Add();
    stub_->async()->Echo(
        &call->context, &call->request, &call->response,
        [this, call, done = std::move(done)](grpc::Status status) {
          done(status, call->response);
          {
            absl::MutexLock lock(&mu_);
            contexts_.erase(&call->context);
          }
          delete call;
          in_flight_.Done();
        });
  }

  grpc_connectivity_state State() override {
    return channel_->GetState(/*try_to_connect=*/false);
  }

  void Connect() override { channel_->GetState(/*try_to_connect=*/true); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
  absl::Mutex mu_;
  std::set<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
  InFlight in_flight_;
};

class StreamEchoClient;

// One EchoStream. Deletes itself in OnDone after detaching from its owner.
class StreamCall final
    : public grpc::ClientBidiReactor<v1::EchoRequest, v1::EchoResponse> {
 public:
  StreamCall(v1::EchoService::Stub* stub, StreamEchoClient* owner,
             InFlight* in_flight)
      : owner_(owner), in_flight_(in_flight) {
    in_flight_->Add();
    stub->async()->EchoStream(&context_, this);
    StartRead(&response_);
    StartCall();
  }

  // Queues one request. Returns false when the stream is already broken.
  bool Send(const v1::EchoRequest& request, int64_t sent_ns,
            EchoClient::Done done) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (broken_) return false;
    pending_[request.sequence()] = {sent_ns, std::move(done)};
    writes_.push_back(request);
    if (!writing_) {
      writing_ = true;
      StartWrite(&writes_.front());
    }
    return true;
  }

  // Sent time of the oldest unanswered request.
  std::optional<int64_t> OldestPendingNs() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::optional<int64_t> oldest;
    for (const auto& [seq, entry] : pending_) {
      if (!oldest || entry.sent_ns < *oldest) oldest = entry.sent_ns;
    }
    return oldest;
  }

  void Cancel() { context_.TryCancel(); }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    if (!ok) {
      broken_ = true;
      writing_ = false;
      return;
    }
    if (writes_.empty()) {
      writing_ = false;
    } else {
      StartWrite(&writes_.front());
    }
  }

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      return;
    }
    EchoClient::Done done;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(response_.sequence());
      if (it != pending_.end()) {
        done = std::move(it->second.done);
        pending_.erase(it);
      }
    }
    if (done) done(grpc::Status::OK, response_);
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override;

 private:
  struct Entry {
    int64_t sent_ns;
    EchoClient::Done done;
  };

  StreamEchoClient* const owner_;
  InFlight* const in_flight_;
  grpc::ClientContext context_;
  v1::EchoResponse response_;
  absl::Mutex mu_;
  std::map<uint64_t, Entry> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::EchoRequest> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

class StreamEchoClient final : public EchoClient {
 public:
  StreamEchoClient(std::shared_ptr<grpc::Channel> channel, Clock& clock)
      : channel_(std::move(channel)),
        stub_(v1::EchoService::NewStub(channel_)),
        clock_(clock) {}

  ~StreamEchoClient() override {
    {
      absl::MutexLock lock(&mu_);
      if (call_ != nullptr) call_->Cancel();
    }
    in_flight_.WaitZero();
  }

  void Echo(const v1::EchoRequest& request, absl::Duration timeout,
            Done done) override {
    int64_t now = clock_.MonotonicNanos();
    absl::MutexLock lock(&mu_);
    if (call_ != nullptr) {
      std::optional<int64_t> oldest = call_->OldestPendingNs();
      if (oldest && now - *oldest > absl::ToInt64Nanoseconds(timeout)) {
        // Stuck stream (e.g. a blackholed connection): replace it. Its
        // pending probes fail from OnDone.
        call_->Cancel();
        call_ = nullptr;
      }
    }
    if (call_ == nullptr)
      call_ = new StreamCall(stub_.get(), this, &in_flight_);
    if (!call_->Send(request, now, done)) {
      call_ = nullptr;
      done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "echo stream broken"),
           v1::EchoResponse());
    }
  }

  grpc_connectivity_state State() override {
    return channel_->GetState(/*try_to_connect=*/false);
  }

  void Connect() override { channel_->GetState(/*try_to_connect=*/true); }

  void Detach(StreamCall* call) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (call_ == call) call_ = nullptr;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
  Clock& clock_;
  absl::Mutex mu_;
  StreamCall* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  InFlight in_flight_;
};

void StreamCall::OnDone(const grpc::Status& status) {
  owner_->Detach(this);
  std::map<uint64_t, Entry> orphans;
  {
    absl::MutexLock lock(&mu_);
    orphans.swap(pending_);
  }
  grpc::Status failure = status.ok()
                             ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "echo stream ended by the agent")
                             : status;
  for (auto& [seq, entry] : orphans) entry.done(failure, v1::EchoResponse());
  InFlight* in_flight = in_flight_;
  delete this;
  in_flight->Done();
}

}  // namespace

ProbeChannelTuning TuneProbeChannel(absl::Duration interval,
                                    absl::Duration timeout) {
  auto ms = [](absl::Duration d, int64_t lo, int64_t hi) {
    return static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(d), lo, hi));
  };
  ProbeChannelTuning tuning;
  tuning.max_backoff_ms = ms(interval, 100, 10'000);
  tuning.initial_backoff_ms = std::min(100, tuning.max_backoff_ms);
  // A probe succeeds on a path whose RTT is under the timeout; connecting
  // there takes about 3 RTTs with TLS (TCP, TLS 1.3, HTTP/2 settings).
  // Attempts to a dead address still end after the keepalive timeout, which
  // gRPC also sets as TCP_USER_TIMEOUT and which bounds the SYN retries.
  tuning.min_connect_timeout_ms = ms(4 * timeout, 1000, 60'000);
  // Not below 1 s: TCP_USER_TIMEOUT under a few RTOs (200 ms minimum) would
  // drop a healthy connection for one lost segment.
  tuning.keepalive_time_ms =
      ms(std::max(interval, kMinProbeKeepaliveTime), 1000, 60'000);
  tuning.keepalive_timeout_ms = ms(timeout, 1000, 60'000);
  return tuning;
}

std::shared_ptr<grpc::Channel> MakeProbeChannel(
    const std::string& target, absl::Duration interval, absl::Duration timeout,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& authority) {
  ProbeChannelTuning tuning = TuneProbeChannel(interval, timeout);
  grpc::ChannelArguments args;
  if (!authority.empty()) {
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, authority);
  }
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, tuning.initial_backoff_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, tuning.min_connect_timeout_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, tuning.max_backoff_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, tuning.keepalive_time_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, tuning.keepalive_timeout_ms);
  // Unary probes leave the connection without calls between probes; it
  // must be watched then too, and pings need no data between them.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // One connection per target: identical channel args would otherwise share
  // subchannels through the global pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Nothing here serves channelz, and its per-channel and per-subchannel
  // nodes are 3.5 KB of a probe channel's ~44 KB (BENCHMARKS.md, "Memory
  // per gRPC target").
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // Replies echo the payload (config allows up to 4 MiB).
  args.SetMaxReceiveMessageSize(8 << 20);
  return grpc::CreateCustomChannel(
      target,
      credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(),
      args);
}

std::unique_ptr<EchoClient> MakeUnaryEchoClient(
    std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<UnaryEchoClient>(std::move(channel));
}

std::unique_ptr<EchoClient> MakeStreamEchoClient(
    std::shared_ptr<grpc::Channel> channel, Clock& clock) {
  return std::make_unique<StreamEchoClient>(std::move(channel), clock);
}

}  // namespace latency
