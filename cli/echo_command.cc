#include "cli/echo_command.h"

#include <cmath>
#include <thread>

#include "absl/strings/str_format.h"
#include "cli/rpc_util.h"
#include "latency/v1/echo.grpc.pb.h"

namespace latency {
namespace {

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Sends echoes one at a time, unary or on one stream.
class Echoer {
 public:
  Echoer(const EchoOptions& options, std::shared_ptr<grpc::Channel> channel,
         Clock& clock)
      : options_(options),
        stub_(v1::EchoService::NewStub(std::move(channel))),
        clock_(clock),
        payload_(options.payload_bytes, 'x') {}

  ~Echoer() {
    if (stream_) {
      stream_->WritesDone();
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
    return stub_->Echo(&context, request, response);
  }

  // The stream has no per-message deadline; its context's deadline is the
  // whole session, and a dead stream is reopened on the next echo.
  grpc::Status StreamEcho(const v1::EchoRequest& request,
                          v1::EchoResponse* response) {
    if (!stream_) {
      stream_context_ = std::make_unique<grpc::ClientContext>();
      stream_ = stub_->EchoStream(stream_context_.get());
    }
    if (!stream_->Write(request) || !stream_->Read(response)) {
      grpc::Status status = stream_->Finish();
      stream_.reset();
      return status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "stream closed by the agent")
                         : status;
    }
    return grpc::Status::OK;
  }

  const EchoOptions options_;
  std::unique_ptr<v1::EchoService::Stub> stub_;
  Clock& clock_;
  const std::string payload_;
  std::unique_ptr<grpc::ClientContext> stream_context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::EchoRequest, v1::EchoResponse>>
      stream_;
};

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
  out << absl::StrFormat("ECHO %s: %d payload bytes, %s\n", options.agent,
                         options.payload_bytes,
                         options.stream ? "stream" : "unary");
  Echoer echoer(options, std::move(channel), clock);
  std::vector<EchoReply> replies;
  for (uint64_t seq = 1;
       options.count == 0 || seq <= static_cast<uint64_t>(options.count);
       ++seq) {
    if (stop != nullptr && *stop) break;
    if (seq > 1)
      std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.interval));
    if (stop != nullptr && *stop) break;
    replies.push_back(echoer.Send(seq));
    out << FormatReplyLine(replies.back()) << "\n" << std::flush;
  }
  EchoSummary summary = Summarize(replies);
  out << FormatSummary(options.agent, summary) << std::flush;
  if (summary.received == 0) return 2;
  return summary.received == summary.sent ? 0 : 1;
}

}  // namespace latency
