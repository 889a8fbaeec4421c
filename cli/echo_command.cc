#include "cli/echo_command.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cli/rpc_util.h"
#include "common/json.h"
#include "google/protobuf/struct.pb.h"
#include "latency/v1/echo.grpc.pb.h"

namespace latency {
namespace {

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// How often the watchdog looks at the stop flag and the stream's deadline.
constexpr absl::Duration kWatchdogPoll = absl::Milliseconds(20);

// Sends echoes one at a time, unary or on one stream. A watchdog thread
// cancels the call in flight when `stop` is set (Ctrl-C) and, for the
// stream, when its reply is later than --timeout: a stream has no
// per-message deadline, and a blocked Read would otherwise wait forever.
class Echoer {
 public:
  Echoer(const EchoOptions& options, std::shared_ptr<grpc::Channel> channel,
         Clock& clock, const std::atomic<bool>* stop)
      : options_(options),
        stub_(v1::EchoService::NewStub(std::move(channel))),
        clock_(clock),
        stop_(stop),
        payload_(options.payload_bytes, 'x'),
        watchdog_([this] { Watch(); }) {}

  ~Echoer() {
    done_.Notify();
    watchdog_.join();
    if (stream_) {
      stream_context_->TryCancel();
      stream_->Finish();
    }
  }

  EchoReply Send(uint64_t sequence) {
    v1::EchoRequest request;
    request.set_sequence(sequence);
    request.set_payload(payload_);
    v1::EchoResponse response;
    int64_t start = clock_.MonotonicNanos();
    request.set_client_send_time_ns(start);
    grpc::Status status = options_.stream ? StreamEcho(request, &response)
                                          : UnaryEcho(request, &response);
    int64_t end = clock_.MonotonicNanos();
    EchoReply reply;
    reply.sequence = sequence;
    reply.ok = status.ok();
    reply.code = status.error_code();
    if (status.ok()) {
      reply.rtt_ns = end - start;
      reply.agent_time_ns =
          response.agent_send_time_ns() - response.agent_receive_time_ns();
      reply.agent_hostname = response.agent_hostname();
    } else {
      reply.error = GrpcStatusText(status);
    }
    return reply;
  }

 private:
  grpc::Status UnaryEcho(const v1::EchoRequest& request,
                         v1::EchoResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfter(options_.timeout));
    SetInFlight(&context, absl::InfiniteFuture());
    grpc::Status status = stub_->Echo(&context, request, response);
    SetInFlight(nullptr, absl::InfiniteFuture());
    return status;
  }

  // A dead or timed-out stream is closed and reopened on the next echo.
  grpc::Status StreamEcho(const v1::EchoRequest& request,
                          v1::EchoResponse* response) {
    if (!stream_) stream_context_ = std::make_unique<grpc::ClientContext>();
    // Guarded from before the stream opens: opening waits for the connection.
    SetInFlight(stream_context_.get(), absl::Now() + options_.timeout);
    if (!stream_) stream_ = stub_->EchoStream(stream_context_.get());
    bool ok = stream_->Write(request) && stream_->Read(response);
    bool timed_out = SetInFlight(nullptr, absl::InfiniteFuture());
    if (ok) return grpc::Status::OK;
    grpc::Status status = stream_->Finish();
    stream_.reset();
    if (timed_out) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          "no reply on the stream within --timeout");
    }
    return status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "stream closed by the agent")
                       : status;
  }

  // Sets the call the watchdog guards; returns whether the watchdog
  // cancelled the previous one for its deadline.
  bool SetInFlight(grpc::ClientContext* context, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    bool timed_out = timed_out_;
    in_flight_ = context;
    deadline_ = deadline;
    timed_out_ = false;
    return timed_out;
  }

  void Watch() {
    while (!done_.WaitForNotificationWithTimeout(kWatchdogPoll)) {
      bool stopping = stop_ != nullptr && stop_->load();
      absl::MutexLock lock(&mu_);
      if (in_flight_ == nullptr) continue;
      if (stopping) {
        in_flight_->TryCancel();
      } else if (absl::Now() >= deadline_) {
        timed_out_ = true;
        in_flight_->TryCancel();
        in_flight_ = nullptr;
      }
    }
  }

  const EchoOptions options_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
  Clock& clock_;
  const std::atomic<bool>* const stop_;
  const std::string payload_;
  std::unique_ptr<grpc::ClientContext> stream_context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::EchoRequest, v1::EchoResponse>>
      stream_;
  absl::Mutex mu_;
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification done_;
  std::thread watchdog_;  // last: starts after everything it reads
};

bool Stopped(const std::atomic<bool>* stop) {
  return stop != nullptr && stop->load();
}

// Sleeps `duration`, waking early when `stop` is set.
void SleepUnlessStopped(absl::Duration duration,
                        const std::atomic<bool>* stop) {
  absl::Time end = absl::Now() + duration;
  while (!Stopped(stop)) {
    absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::SleepFor(std::min(left, kWatchdogPoll));
  }
}

// The agent could not be reached at all: every failure is a connection
// failure or a missing reply.
bool Unreachable(const std::vector<EchoReply>& replies) {
  for (const EchoReply& reply : replies) {
    if (reply.ok) return false;
    if (reply.code != grpc::StatusCode::UNAVAILABLE &&
        reply.code != grpc::StatusCode::DEADLINE_EXCEEDED &&
        reply.code != grpc::StatusCode::CANCELLED) {
      return false;
    }
  }
  return !replies.empty();
}

std::string JsonReply(const EchoReply& reply) {
  google::protobuf::Struct line;
  auto& fields = *line.mutable_fields();
  fields["seq"].set_number_value(static_cast<double>(reply.sequence));
  fields["ok"].set_bool_value(reply.ok);
  auto ms_or_null = [&](const char* name, bool present, int64_t ns) {
    if (present) {
      fields[name].set_number_value(Ms(ns));
    } else {
      fields[name].set_null_value(google::protobuf::NULL_VALUE);
    }
  };
  ms_or_null("rtt_ms", reply.ok, reply.rtt_ns);
  ms_or_null("agent_ms", reply.ok, reply.agent_time_ns);
  ms_or_null("network_ms", reply.ok, reply.rtt_ns - reply.agent_time_ns);
  fields["host"].set_string_value(reply.agent_hostname);
  if (reply.ok) {
    fields["error"].set_null_value(google::protobuf::NULL_VALUE);
  } else {
    fields["error"].set_string_value(reply.error);
  }
  return ToJson(line);
}

std::string JsonSummary(const std::string& agent, const EchoSummary& summary) {
  google::protobuf::Struct line;
  auto& fields = *line.mutable_fields();
  fields["agent"].set_string_value(agent);
  fields["sent"].set_number_value(summary.sent);
  fields["received"].set_number_value(summary.received);
  fields["loss_percent"].set_number_value(
      summary.sent == 0
          ? 0.0
          : 100.0 * (summary.sent - summary.received) / summary.sent);
  for (const auto& [name, value] :
       {std::pair{"min_ms", summary.min_ms},
        std::pair{"avg_ms", summary.avg_ms},
        std::pair{"max_ms", summary.max_ms},
        std::pair{"stddev_ms", summary.stddev_ms}}) {
    if (value) {
      fields[name].set_number_value(*value);
    } else {
      fields[name].set_null_value(google::protobuf::NULL_VALUE);
    }
  }
  return ToJson(line);
}

}  // namespace

EchoSummary Summarize(const std::vector<EchoReply>& replies) {
  EchoSummary summary;
  summary.sent = static_cast<int>(replies.size());
  double sum = 0, sum_sq = 0;
  for (const EchoReply& reply : replies) {
    if (!reply.ok) continue;
    double ms = Ms(reply.rtt_ns);
    ++summary.received;
    sum += ms;
    sum_sq += ms * ms;
    summary.min_ms = summary.min_ms ? std::min(*summary.min_ms, ms) : ms;
    summary.max_ms = summary.max_ms ? std::max(*summary.max_ms, ms) : ms;
  }
  if (summary.received > 0) {
    double mean = sum / summary.received;
    summary.avg_ms = mean;
    summary.stddev_ms =
        std::sqrt(std::max(0.0, sum_sq / summary.received - mean * mean));
  }
  return summary;
}

std::string FormatReplyLine(const EchoReply& reply) {
  if (!reply.ok) {
    return absl::StrFormat("seq=%d error: %s", reply.sequence, reply.error);
  }
  return absl::StrFormat(
      "seq=%d rtt=%.3f ms agent=%.3f ms network=%.3f ms host=%s",
      reply.sequence, Ms(reply.rtt_ns), Ms(reply.agent_time_ns),
      Ms(reply.rtt_ns - reply.agent_time_ns), reply.agent_hostname);
}

std::string FormatSummary(const std::string& agent,
                          const EchoSummary& summary) {
  double loss = summary.sent == 0
                    ? 0.0
                    : 100.0 * (summary.sent - summary.received) / summary.sent;
  std::string text = absl::StrFormat(
      "--- %s echo statistics ---\n%d sent, %d received, %.1f%% loss\n", agent,
      summary.sent, summary.received, loss);
  if (summary.avg_ms) {
    text += absl::StrFormat("rtt min/avg/max/stddev = %.3f/%.3f/%.3f/%.3f ms\n",
                            *summary.min_ms, *summary.avg_ms, *summary.max_ms,
                            *summary.stddev_ms);
  }
  return text;
}

int RunEcho(const EchoOptions& options, std::shared_ptr<grpc::Channel> channel,
            Clock& clock, std::ostream& out, const std::atomic<bool>* stop) {
  if (!options.json) {
    out << absl::StrFormat("ECHO %s: %d payload bytes, %s\n", options.agent,
                           options.payload_bytes,
                           options.stream ? "stream" : "unary")
        << std::flush;
  }
  std::vector<EchoReply> replies;
  {
    Echoer echoer(options, std::move(channel), clock, stop);
    for (uint64_t seq = 1;
         options.count == 0 || seq <= static_cast<uint64_t>(options.count);
         ++seq) {
      if (Stopped(stop)) break;
      if (seq > 1) SleepUnlessStopped(options.interval, stop);
      if (Stopped(stop)) break;
      EchoReply reply = echoer.Send(seq);
      if (!reply.ok && Stopped(stop)) break;  // cut short by Ctrl-C: not lost
      replies.push_back(std::move(reply));
      out << (options.json ? JsonReply(replies.back())
                           : FormatReplyLine(replies.back()))
          << "\n"
          << std::flush;
    }
  }
  EchoSummary summary = Summarize(replies);
  if (options.json) {
    out << JsonSummary(options.agent, summary) << "\n" << std::flush;
  } else {
    out << FormatSummary(options.agent, summary) << std::flush;
  }
  if (summary.received == summary.sent) return kExitOk;
  return Unreachable(replies) ? kExitError : kExitNotOk;
}

}  // namespace latency
