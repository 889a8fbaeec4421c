// Google Benchmark micro-benchmarks for the hot paths: histogram record and
// merge, one ICMP send/reply match cycle, and rendering a 1,000-target
// response as JSON and as Prometheus text.
#include <random>

#include "benchmark/benchmark.h"
#include "common/json.h"
#include "google/protobuf/util/json_util.h"
#include "server/api/prometheus.h"
#include "server/api/query.h"
#include "server/prober/icmp_prober.h"
#include "server/stats/log_histogram.h"
#include "server/store/result_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_icmp_socket.h"

namespace latency {
namespace {

using ::latency::testing::FakeClock;
using ::latency::testing::FakeIcmpSocket;

void BM_HistogramRecord(benchmark::State& state) {
  LogHistogram histogram;
  std::mt19937_64 random(1);
  std::lognormal_distribution<double> rtt(std::log(200'000.0), 0.5);
  std::vector<int64_t> values(4096);
  for (int64_t& v : values) v = static_cast<int64_t>(rtt(random));
  size_t i = 0;
  for (auto _ : state) {
    histogram.Record(values[i++ & 4095]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord);

void BM_HistogramMerge(benchmark::State& state) {
  std::mt19937_64 random(2);
  std::lognormal_distribution<double> rtt(std::log(200'000.0), 0.5);
  LogHistogram a, b;
  for (int i = 0; i < 3600; ++i) {
    a.Record(static_cast<int64_t>(rtt(random)));
    b.Record(static_cast<int64_t>(rtt(random)));
  }
  for (auto _ : state) {
    LogHistogram merged = a;
    merged.Merge(b);
    benchmark::DoNotOptimize(merged.Quantile(0.99));
  }
}
BENCHMARK(BM_HistogramMerge);

class NullSink final : public SampleSink {
 public:
  void Record(const Sample& sample) override {
    benchmark::DoNotOptimize(sample.rtt_ns);
  }
};

// One probe: send, TX stamp, reply, match, emit.
void BM_IcmpSendAndMatch(benchmark::State& state) {
  FakeClock clock;
  NullSink sink;
  auto v4 = std::make_unique<FakeIcmpSocket>(false);
  FakeIcmpSocket* socket = v4.get();
  IcmpProber prober(clock, sink, std::move(v4), nullptr);
  const int targets = static_cast<int>(state.range(0));
  for (int i = 0; i < targets; ++i) {
    IcmpTarget target;
    target.target_index = i;
    target.address = IpAddress::Parse("127.1." + std::to_string(i / 250) + "." +
                                      std::to_string(i % 250 + 1));
    prober.AddTarget(target);
  }
  prober.PlanSchedule(clock.MonotonicNanos());
  int64_t probes = 0;
  for (auto _ : state) {
    clock.Advance(absl::Milliseconds(1000.0 / targets));
    size_t first = socket->sent.size();
    prober.SendDue(clock.MonotonicNanos());
    for (size_t i = first; i < socket->sent.size(); ++i) {
      IcmpReceived reply;
      reply.peer = socket->sent[i].to;
      reply.data = socket->sent[i].message;
      reply.data[0] = 0;
      reply.userspace_ns = clock.MonotonicNanos();
      socket->inbox.push_back(std::move(reply));
      ++probes;
    }
    prober.DrainSocket(*socket);
    if (socket->sent.size() > 100'000) socket->sent.clear();
  }
  state.SetItemsProcessed(probes);
}
BENCHMARK(BM_IcmpSendAndMatch)->Arg(1)->Arg(1000);

// A store with `n` targets, each with an hour of 1 Hz samples.
std::shared_ptr<ResultStore> FilledStore(FakeClock& clock, int n) {
  std::vector<TargetSpec> targets(n);
  for (int i = 0; i < n; ++i) {
    targets[i].name = "target-" + std::to_string(i);
    targets[i].host = "127.1.0." + std::to_string(i % 250 + 1);
  }
  auto store =
      std::make_unique<ResultStore>(clock, targets, StatusThresholds());
  std::mt19937_64 random(3);
  std::lognormal_distribution<double> rtt(std::log(200'000.0), 0.3);
  for (int second = 0; second < 60; ++second) {
    clock.Advance(absl::Seconds(1));
    for (int i = 0; i < n; ++i) {
      for (ProbeKind kind : {ProbeKind::kIcmp, ProbeKind::kGrpc}) {
        Sample sample;
        sample.target_index = i;
        sample.kind = kind;
        sample.completed_ns = clock.MonotonicNanos();
        sample.result = SampleResult::kOk;
        sample.rtt_ns = static_cast<int64_t>(rtt(random));
        store->Record(sample);
      }
    }
  }
  return store;
}

void BM_RenderListTargetsJson(benchmark::State& state) {
  FakeClock clock;
  auto store = FilledStore(clock, static_cast<int>(state.range(0)));
  QueryHandler query([store] {
    return StoreView{store, [](int) { return std::string("127.1.0.1"); }};
  });
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ToJson(*query.ListTargets(v1::ListTargetsRequest())));
  }
}
BENCHMARK(BM_RenderListTargetsJson)
    ->Arg(1)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond);

void BM_RenderPrometheus(benchmark::State& state) {
  FakeClock clock;
  auto store = FilledStore(clock, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(RenderPrometheus(
        *store, ProberGauges(), [](int) { return TargetCounters(); }));
  }
}
BENCHMARK(BM_RenderPrometheus)
    ->Arg(1)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond);

void BM_MetricsJsonOneTarget(benchmark::State& state) {
  FakeClock clock;
  auto store = FilledStore(clock, 1);
  QueryHandler query([store] {
    return StoreView{store, [](int) { return std::string("127.0.0.1"); }};
  });
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ToJson(*query.GetLatency(v1::GetLatencyRequest())));
  }
}
BENCHMARK(BM_MetricsJsonOneTarget);

}  // namespace
}  // namespace latency

BENCHMARK_MAIN();

namespace latency {
namespace {
void BM_ProtobufJsonOnly(benchmark::State& state) {
  FakeClock clock;
  auto store = FilledStore(clock, 1);
  QueryHandler query([store] {
    return StoreView{store, [](int) { return std::string("127.0.0.1"); }};
  });
  v1::GetLatencyResponse response = *query.GetLatency(v1::GetLatencyRequest());
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  for (auto _ : state) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(response, &json, options);
    benchmark::DoNotOptimize(json);
  }
}
BENCHMARK(BM_ProtobufJsonOnly);
void BM_GetLatencyOnly(benchmark::State& state) {
  FakeClock clock;
  auto store = FilledStore(clock, 1);
  QueryHandler query([store] {
    return StoreView{store, [](int) { return std::string("127.0.0.1"); }};
  });
  for (auto _ : state) {
    benchmark::DoNotOptimize(query.GetLatency(v1::GetLatencyRequest()));
  }
}
BENCHMARK(BM_GetLatencyOnly);
}  // namespace
}  // namespace latency
