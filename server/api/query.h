#ifndef LATENCY_SERVER_API_QUERY_H_
#define LATENCY_SERVER_API_QUERY_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "latency/v1/latency.pb.h"
#include "server/sample.h"
#include "server/store/result_store.h"

namespace latency {

// QueryHandler answers every LatencyService question from the ResultStore.
// Both front ends call it — the gRPC service and the HTTP/JSON gateway — so
// they cannot drift apart: HTTP serves these very messages as JSON.
class QueryHandler {
 public:
  // `address_of` gives a target's resolved address ("" when unresolved).
  QueryHandler(const ResultStore& store,
               std::function<std::string(int)> address_of);

  // The original tool's summary for the named (or first) target.
  // NOT_FOUND for an unknown target.
  absl::StatusOr<v1::GetLatencyResponse> GetLatency(
      const v1::GetLatencyRequest& request) const;

  v1::ListTargetsResponse ListTargets() const;

  // NOT_FOUND for an unknown target, INVALID_ARGUMENT for a missing target or
  // a window other than 1m/5m/15m/1h.
  absl::StatusOr<v1::GetTargetStatsResponse> GetTargetStats(
      const v1::GetTargetStatsRequest& request) const;

  // Checks a Watch filter: NOT_FOUND for an unknown target, INVALID_ARGUMENT
  // for an unknown kind.
  absl::Status ValidateWatch(const v1::WatchRequest& request) const;
  bool WatchMatches(const v1::WatchRequest& request,
                    const Sample& sample) const;
  v1::Sample SampleToProto(const Sample& sample) const;

  const ResultStore& store() const { return store_; }

 private:
  v1::TargetSummary Summary(int target) const;

  const ResultStore& store_;
  std::function<std::string(int)> address_of_;
};

v1::ProbeKind ProbeKindToProto(ProbeKind kind);

}  // namespace latency

#endif  // LATENCY_SERVER_API_QUERY_H_
