// Fuzzes QueryHandler (what both the gRPC service and the HTTP gateway
// answer with) against a small ResultStore filled with fuzzer-made samples:
// GetTargetStats / GetLatency / ValidateWatch with fuzzed target, window and
// kind. Checks:
//  - empty target -> INVALID_ARGUMENT, unknown target -> NOT_FOUND naming
//    it, bad window -> INVALID_ARGUMENT "window: ...", else OK;
//  - an OK answer describes the asked target and window, has one entry per
//    enabled probe kind, sent = received + lost, failures add up to lost,
//    loss in [0, 100] and absent when nothing was sent, min <= p50 <= p90
//    <= p99 <= p99.9 <= max, min <= mean <= max, latencies absent without
//    a received sample; statuses are known names;
//  - every answer's ToJson output parses back into the same message type.
//
// Input: sample count, samples (see FuzzSample), then lines: target, window,
// latency target, watch kind.
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/utf8.h"
#include "server/api/query.h"
#include "tests/fuzz/fuzz_proto.h"
#include "tests/fuzz/fuzz_store.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

using ::latency::fuzz::Input;

const std::set<std::string> kStatuses = {"unknown", "ok",    "degraded",
                                         "down",    "stale", "disabled"};

template <typename Response>
void CheckJson(const Response& response) {
  std::string json = ToJson(response);
  Response back;
  auto status = fuzz::ParseJsonStrict(json, &back);
  FUZZ_CHECK(status.ok(), absl::StrCat(status.ToString(), "\n", json));
}

void CheckSummary(const v1::TargetSummary& summary, const TargetSpec& spec) {
  FUZZ_CHECK(summary.name() == spec.name, summary.name());
  FUZZ_CHECK(kStatuses.count(summary.status()) == 1, summary.status());
  FUZZ_CHECK(summary.probes_size() == 2, summary.ShortDebugString());
  for (const v1::ProbeSummary& probe : summary.probes()) {
    FUZZ_CHECK(kStatuses.count(probe.status()) == 1, probe.status());
    FUZZ_CHECK(!probe.has_last_rtt_ms() || probe.last_rtt_ms() >= 0,
               probe.ShortDebugString());
    FUZZ_CHECK(!probe.has_age_ms() || probe.age_ms() >= 0,
               probe.ShortDebugString());
  }
}

void CheckStats(const v1::ProbeStats& stats) {
  std::string what = stats.ShortDebugString();
  FUZZ_CHECK(kStatuses.count(stats.status()) == 1, what);
  FUZZ_CHECK(stats.sent() == stats.received() + stats.lost(), what);
  uint64_t failures = 0;
  for (const auto& [cause, count] : stats.failures()) {
    FUZZ_CHECK(count > 0 && !cause.empty(), what);
    failures += count;
  }
  FUZZ_CHECK(failures == stats.lost(), what);
  FUZZ_CHECK(stats.has_loss_percent() == (stats.sent() > 0), what);
  if (stats.has_loss_percent()) {
    FUZZ_CHECK(stats.loss_percent() >= 0 && stats.loss_percent() <= 100, what);
  }
  bool any = stats.received() > 0;
  FUZZ_CHECK(stats.has_min_ms() == any && stats.has_max_ms() == any &&
                 stats.has_mean_ms() == any && stats.has_p50_ms() == any &&
                 stats.has_p999_ms() == any,
             what);
  if (!any) return;
  FUZZ_CHECK(stats.min_ms() >= 0, what);
  FUZZ_CHECK(stats.min_ms() <= stats.p50_ms() &&
                 stats.p50_ms() <= stats.p90_ms() &&
                 stats.p90_ms() <= stats.p99_ms() &&
                 stats.p99_ms() <= stats.p999_ms() &&
                 stats.p999_ms() <= stats.max_ms(),
             what);
  // The mean is a running mean of doubles: allow rounding.
  double slack = 1e-9 * stats.max_ms();
  FUZZ_CHECK(stats.min_ms() - slack <= stats.mean_ms() &&
                 stats.mean_ms() <= stats.max_ms() + slack,
             what);
  FUZZ_CHECK(!stats.has_stddev_ms() || stats.stddev_ms() >= 0, what);
  FUZZ_CHECK(!stats.has_jitter_ms() || stats.jitter_ms() >= 0, what);
}

void CheckTargetStats(const QueryHandler& query, const ResultStore& store,
                      const std::string& target, const std::string& window) {
  v1::GetTargetStatsRequest request;
  request.set_target(target);
  request.set_window(window);
  absl::StatusOr<v1::GetTargetStatsResponse> response =
      query.GetTargetStats(request);
  std::optional<int> index = store.FindTarget(target);
  std::string what = absl::StrCat("'", target, "' '", window,
                                  "': ", response.status().ToString());
  if (target.empty()) {
    FUZZ_CHECK(response.status().code() == absl::StatusCode::kInvalidArgument,
               what);
    return;
  }
  if (!index) {
    FUZZ_CHECK(response.status().code() == absl::StatusCode::kNotFound, what);
    // The message names the target, with stray bytes replaced (proto3
    // strings and gRPC status messages must be UTF-8).
    FUZZ_CHECK(
        absl::StrContains(response.status().message(), ToValidUtf8(target)),
        what);
    FUZZ_CHECK(IsValidUtf8(response.status().message()), what);
    return;
  }
  bool good_window = window.empty() || window == "1m" || window == "5m" ||
                     window == "15m" || window == "1h";
  if (!good_window) {
    FUZZ_CHECK(response.status().code() == absl::StatusCode::kInvalidArgument,
               what);
    FUZZ_CHECK(absl::StartsWith(response.status().message(), "window: "), what);
    return;
  }
  FUZZ_CHECK(response.ok(), what);
  const TargetSpec& spec = store.targets()[*index];
  CheckSummary(response->target(), spec);
  FUZZ_CHECK(response->window() == (window.empty() ? "1m" : window), what);
  int enabled = (spec.icmp_enabled ? 1 : 0) + (spec.grpc_enabled ? 1 : 0);
  FUZZ_CHECK(response->probes_size() == enabled, what);
  for (const v1::ProbeStats& stats : response->probes()) CheckStats(stats);
  CheckJson(*response);
}

void CheckLatency(const QueryHandler& query, const ResultStore& store,
                  const std::string& target) {
  v1::GetLatencyRequest request;
  request.set_target(target);
  absl::StatusOr<v1::GetLatencyResponse> response = query.GetLatency(request);
  std::optional<int> index = target.empty() ? 0 : store.FindTarget(target);
  if (!index) {
    FUZZ_CHECK(response.status().code() == absl::StatusCode::kNotFound,
               response.status().ToString());
    return;
  }
  FUZZ_CHECK(response.ok(), response.status().ToString());
  FUZZ_CHECK(response->target() == store.targets()[*index].name,
             response->target());
  FUZZ_CHECK(kStatuses.count(response->status()) == 1, response->status());
  FUZZ_CHECK(
      response->targets_size() == static_cast<int>(store.targets().size()),
      "targets");
  for (int i = 0; i < response->targets_size(); ++i) {
    CheckSummary(response->targets(i), store.targets()[i]);
  }
  CheckJson(*response);
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latency::fuzz::Input in(data, size);
  latency::testing::FakeClock clock(int64_t{10} * 3600 * 1'000'000'000);
  std::vector<latency::TargetSpec> targets = latency::fuzz::FuzzTargets();
  auto shared = std::make_shared<latency::ResultStore>(
      clock, targets, latency::StatusThresholds());
  latency::ResultStore& store = *shared;
  latency::QueryHandler query([shared] {
    return latency::StoreView{shared, [](int i) {
                                return i == 0 ? std::string("127.0.0.1")
                                              : std::string();
                              }};
  });
  int samples = static_cast<int>(in.Below(64));
  for (int i = 0; i < samples; ++i) {
    store.Record(latency::fuzz::FuzzSample(in, static_cast<int>(targets.size()),
                                           clock.MonotonicNanos()));
  }
  std::string target(in.Until('\n'));
  std::string window(in.Until('\n'));
  std::string latency_target(in.Until('\n'));
  latency::CheckTargetStats(query, store, target, window);
  latency::CheckLatency(query, store, latency_target);
  latency::v1::WatchRequest watch;
  watch.set_target(target);
  watch.set_kind(
      static_cast<latency::v1::ProbeKind>(static_cast<int8_t>(in.Byte())));
  absl::Status valid = query.ValidateWatch(watch);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.code() == absl::StatusCode::kNotFound ||
                   valid.code() == absl::StatusCode::kInvalidArgument,
               valid.ToString());
  }
  latency::CheckJson(*query.ListTargets(latency::v1::ListTargetsRequest()));
  return 0;
}
