// Google Benchmark micro-benchmarks for the hot paths: histogram record and
// merge, one ICMP send/reply match cycle, and rendering a 1,000-target
// response as JSON and as Prometheus text.
#include <netinet/in.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
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

// Counts heap allocations, so a benchmark can report them per operation.
std::atomic<uint64_t> g_allocations{0};

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC takes free() in a replaced operator delete for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace latency {
namespace {

using ::latency::testing::FakeClock;

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

// A socket that answers every echo request at once, like loopback, and
// hands back its TX stamp first, as the kernel does (with the packet, or
// by ID alone), reusing its buffers so that what the benchmark counts is
// the prober's allocations.
class EchoingSocket final : public IcmpSocket {
 public:
  explicit EchoingSocket(bool by_id) : by_id_(by_id) {}
  int fd() const override { return -1; }
  bool ipv6() const override { return false; }
  bool ip_header_included() const override { return false; }
  uint16_t id() const override { return 0x1234; }
  bool kernel_timestamps() const override { return true; }
  bool stamps_by_id() const override { return by_id_; }
  std::string mode() const override { return "echoing"; }

  void SendBatch(absl::Span<IcmpOutgoing> batch) override {
    for (IcmpOutgoing& out : batch) {
      out.result = Echo(out.to, out.message, out.stamp_id);
    }
  }
  absl::Status Send(const IpAddress& to, absl::string_view message) override {
    return Echo(to, message, 0);
  }

  IcmpReceiveResult Receive(bool error_queue,
                            absl::Span<IcmpReceived> items) override {
    Ring& ring = error_queue ? errors_ : messages_;
    IcmpReceiveResult result;
    while (result.items < items.size() && !ring.empty()) {
      ring.PopInto(items[result.items++]);
    }
    result.drained = ring.empty();
    return result;
  }

  int64_t now_ns = 0;

 private:
  absl::Status Echo(const IpAddress& to, absl::string_view message,
                    uint32_t stamp_id) {
    IcmpReceived& stamp = errors_.Push();
    stamp.kind = IcmpReceived::Kind::kTxTimestamp;
    stamp.peer.reset();
    stamp.kernel_realtime_ns = stamp.kernel_monotonic_ns = now_ns;
    stamp.userspace_ns = now_ns;
    if (by_id_) {
      stamp.stamp_id = stamp_id;
      stamp.data.clear();
    } else {
      stamp.stamp_id.reset();
      AppendLoopedPacket(to, message, &stamp.data);
    }
    IcmpReceived& reply = messages_.Push();
    reply.kind = IcmpReceived::Kind::kMessage;
    reply.peer = to;
    reply.data.assign(message.data(), message.size());
    reply.data[0] = 0;  // echo reply
    reply.kernel_realtime_ns = reply.kernel_monotonic_ns = now_ns + 20'000;
    reply.userspace_ns = now_ns + 25'000;
    return absl::OkStatus();
  }

  static void AppendLoopedPacket(const IpAddress& to, absl::string_view message,
                                 std::string* data) {
    // Ethernet header, IPv4 header to `to`, the message.
    data->assign(14, '\0');
    (*data)[12] = 0x08;
    char ip[20] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1};
    size_t total = 20 + message.size();
    ip[2] = static_cast<char>(total >> 8);
    ip[3] = static_cast<char>(total & 0xff);
    sockaddr_storage destination;
    to.ToSockaddr(0, &destination);
    memcpy(&ip[16], &reinterpret_cast<sockaddr_in*>(&destination)->sin_addr, 4);
    data->append(ip, sizeof(ip));
    data->append(message.data(), message.size());
  }

  // A queue whose items keep their buffers when reused.
  class Ring {
   public:
    bool empty() const { return size_ == 0; }
    IcmpReceived& Push() {
      if (size_ == items_.size()) {
        std::vector<IcmpReceived> bigger(std::max<size_t>(64, 2 * size_));
        for (size_t i = 0; i < size_; ++i) {
          bigger[i] = std::move(items_[(head_ + i) % items_.size()]);
        }
        items_ = std::move(bigger);
        head_ = 0;
      }
      return items_[(head_ + size_++) % items_.size()];
    }
    void PopInto(IcmpReceived& out) {
      std::swap(out, items_[head_]);
      head_ = (head_ + 1) % items_.size();
      --size_;
    }

   private:
    std::vector<IcmpReceived> items_;
    size_t head_ = 0, size_ = 0;
  };
  const bool by_id_;
  Ring errors_, messages_;
};

// One probe: send, TX stamp, reply, match, emit; `allocs/probe` counts the
// heap allocations per probe on this steady path (the sink does none).
// Arguments: targets, and whether TX stamps come by ID (Linux 6.13+) or
// with the packet.
void BM_IcmpSendAndMatch(benchmark::State& state) {
  FakeClock clock;
  NullSink sink;
  auto v4 = std::make_unique<EchoingSocket>(state.range(1) != 0);
  EchoingSocket* socket = v4.get();
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
  auto cycle = [&] {
    clock.Advance(absl::Milliseconds(1000.0 / targets));
    socket->now_ns = clock.MonotonicNanos();
    prober.SendDue(clock.MonotonicNanos());
    prober.DrainSocket(*socket);
    prober.ExpireTimeouts(clock.MonotonicNanos());
  };
  // Warm up past the first round and the retention of ended probes (5 s),
  // so maps and queues have reached their steady size.
  for (int i = 0; i < 10 * targets; ++i) cycle();
  uint64_t allocations = g_allocations.load();
  for (auto _ : state) cycle();
  state.counters["allocs/probe"] =
      static_cast<double>(g_allocations.load() - allocations) /
      static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IcmpSendAndMatch)
    ->ArgNames({"targets", "by_id"})
    ->ArgsProduct({{1, 1000, 10000}, {0, 1}});

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
