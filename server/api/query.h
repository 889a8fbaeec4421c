#ifndef LATENCY_SERVER_API_QUERY_H_
#define LATENCY_SERVER_API_QUERY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "latency/v1/latency.pb.h"
#include "server/history/history_db.h"
#include "server/history/history_writer.h"
#include "server/sample.h"
#include "server/store/result_store.h"

namespace latency {

// What a query reads: the current store and its targets' resolved
// addresses ("" when unresolved). Held for the length of one query, so a
// config reload never swaps the data out from under it.
struct StoreView {
  std::shared_ptr<ResultStore> store;
  std::function<std::string(int)> address_of;
  // Where this server measures from (--source): answers carry it.
  std::string source = {};
  // The history database (null when off or not open yet), how it is
  // doing, and what it keeps.
  std::shared_ptr<HistoryDb> history = nullptr;
  HistoryHealth history_health = {};
  HistoryRetention history_retention = {};
};

// QueryHandler answers every LatencyService question from the ResultStore.
// Both front ends call it — the gRPC service and the HTTP/JSON gateway — so
// they cannot drift apart: HTTP serves these very messages as JSON.
class QueryHandler {
 public:
  // `current` returns the store in use now (it changes on config reload).
  explicit QueryHandler(std::function<StoreView()> current);

  // The original tool's summary for the named (or first) target.
  // NOT_FOUND for an unknown target.
  absl::StatusOr<v1::GetLatencyResponse> GetLatency(
      const v1::GetLatencyRequest& request) const;

  // One page of the targets in configuration order (AIP-158: page_size 0
  // is kDefaultPageSize, larger values are capped at it). INVALID_ARGUMENT
  // for a negative page_size or a token this server did not issue.
  absl::StatusOr<v1::ListTargetsResponse> ListTargets(
      const v1::ListTargetsRequest& request) const;

  static constexpr int kDefaultPageSize = 1000;
  // GetLatency's targets: max_targets 0 is kDefaultMaxTargets, and at most
  // kDefaultPageSize.
  static constexpr int kDefaultMaxTargets = 100;

  // NOT_FOUND for an unknown target, INVALID_ARGUMENT for a missing target or
  // a window other than 1m/5m/15m/1h.
  absl::StatusOr<v1::GetTargetStatsResponse> GetTargetStats(
      const v1::GetTargetStatsRequest& request) const;

  // The target's stored history (see GetHistoryRequest). NOT_FOUND for an
  // unknown target or a kind it does not probe, INVALID_ARGUMENT for a bad
  // range, FAILED_PRECONDITION when history is off, UNAVAILABLE while the
  // database cannot be opened (with why).
  absl::StatusOr<v1::GetHistoryResponse> GetHistory(
      const v1::GetHistoryRequest& request) const;
  // Checks a Watch filter: NOT_FOUND for an unknown target, INVALID_ARGUMENT
  // for an unknown kind.
  absl::Status ValidateWatch(const v1::WatchRequest& request) const;
  // Watch helpers, for samples of `store` (the one a stream subscribed to).
  static bool WatchMatches(const ResultStore& store,
                           const v1::WatchRequest& request,
                           const Sample& sample);
  static v1::Sample SampleToProto(const ResultStore& store,
                                  const Sample& sample);

  StoreView Current() const { return current_(); }

 private:
  // `status`, when given, receives the target's status (worst of its
  // enabled probes), computed from the same views as the summary.
  static v1::TargetSummary Summary(const StoreView& view, int target,
                                   ProbeStatus* status = nullptr);
  // Summaries of targets [begin, end); `overall` and `statuses`, when
  // given, receive the worst status among them and each one's, computed
  // from the same views.
  static v1::ListTargetsResponse ListTargets(
      const StoreView& view, size_t begin, size_t end,
      ProbeStatus* overall = nullptr,
      std::vector<ProbeStatus>* statuses = nullptr);

  std::function<StoreView()> current_;
};

v1::ProbeKind ProbeKindToProto(ProbeKind kind);
// "ok", "off", or "degraded: " and why (GetLatencyResponse.history).
std::string HistoryStateText(const HistoryHealth& health);

}  // namespace latency

#endif  // LATENCY_SERVER_API_QUERY_H_
