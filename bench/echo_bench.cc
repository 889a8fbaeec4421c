// The project's gRPC probe path (the prober's EchoClient on a persistent
// channel) against a running latency-agent: RTT and network-RTT medians and
// p99 for unary and streaming echo, one probe at a time like the prober.
//
//   echo_bench --agent=127.0.0.1:50051 --count=2000 --interval_us=0
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/flags.h"
#include "server/prober/echo_client.h"

ABSL_FLAG(std::string, agent, "127.0.0.1:50051", "latency-agent address");
ABSL_FLAG(int32_t, count, 2000, "echoes per mode");
ABSL_FLAG(int32_t, interval_us, 0, "pause between echoes (0: back to back)");
ABSL_FLAG(int32_t, payload_bytes, 32, "echo payload size");
ABSL_FLAG(std::vector<std::string>, modes,
          std::vector<std::string>({"unary", "stream"}),
          "echo modes to run, in order: unary, stream");

namespace {

struct Result {
  std::vector<double> rtt_us;
  std::vector<double> network_us;
};

Result Run(latency::EchoClient& client, int count, int interval_us, int bytes) {
  latency::Clock& clock = latency::RealClockInstance();
  Result result;
  std::string payload(static_cast<size_t>(bytes), 'x');
  for (int i = 0; i < count + 10; ++i) {
    if (interval_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(interval_us));
    latency::v1::EchoRequest request;
    request.set_sequence(static_cast<uint64_t>(i));
    request.set_payload(payload);
    absl::Notification done;
    int64_t rtt = 0, agent = 0;
    bool ok = false;
    int64_t start = clock.MonotonicNanos();
    client.Echo(request, absl::Seconds(5),
                [&](const grpc::Status& status,
                    const latency::v1::EchoResponse& response) {
                  rtt = clock.MonotonicNanos() - start;
                  agent = response.agent_send_time_ns() -
                          response.agent_receive_time_ns();
                  ok = status.ok();
                  done.Notify();
                });
    done.WaitForNotification();
    if (!ok || i < 10) continue;  // the first echoes warm the connection up
    result.rtt_us.push_back(static_cast<double>(rtt) / 1e3);
    result.network_us.push_back(static_cast<double>(rtt - agent) / 1e3);
  }
  return result;
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(q *
                                    static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  latency::ParseFlags(argc, argv, "echo_bench", "gRPC echo latency benchmark");
  std::string agent = absl::GetFlag(FLAGS_agent);
  int count = absl::GetFlag(FLAGS_count);
  int interval = absl::GetFlag(FLAGS_interval_us);
  int bytes = absl::GetFlag(FLAGS_payload_bytes);
  for (const std::string& mode : absl::GetFlag(FLAGS_modes)) {
    bool stream = mode == "stream";
    auto channel = latency::MakeProbeChannel("ipv4:" + agent, absl::Seconds(1),
                                             absl::Seconds(1));
    std::unique_ptr<latency::EchoClient> client =
        stream ? latency::MakeStreamEchoClient(channel,
                                               latency::RealClockInstance())
               : latency::MakeUnaryEchoClient(channel);
    Result r = Run(*client, count, interval, bytes);
    printf(
        "grpc_%s count=%zu median_us=%.1f p99_us=%.1f network_median_us=%.1f\n",
        stream ? "stream" : "unary", r.rtt_us.size(), Percentile(r.rtt_us, 0.5),
        Percentile(r.rtt_us, 0.99), Percentile(r.network_us, 0.5));
  }
  return 0;
}
