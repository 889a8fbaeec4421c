#ifndef LATENCY_CLI_QUERY_COMMANDS_H_
#define LATENCY_CLI_QUERY_COMMANDS_H_

#include <atomic>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/rpc_util.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "latency/v1/latency.pb.h"

namespace latency {

// How the query commands print a response.
enum class OutputFormat {
  kTable,  // aligned columns for people; "-" where a value is absent
  kJson,   // protobuf's JSON mapping, one object per line
};

// QueryOptions are the settings of `latencyctl status|targets|stats|watch`.
struct QueryOptions {
  std::string server = "127.0.0.1:50052";     // latency-server's gRPC address
  absl::Duration timeout = absl::Seconds(2);  // deadline of each unary call
  OutputFormat output = OutputFormat::kTable;
  // status: the target the summary describes (empty = the first one);
  // stats: required; watch: filter (empty = every target).
  std::string target;
  std::string window = "1m";  // stats: "1m", "5m", "15m" or "1h"
  v1::ProbeKind kind = v1::PROBE_KIND_UNSPECIFIED;  // watch filter
  int count = 0;  // watch: stop after this many samples; 0 = until stopped
  // history: the range ends now and starts this long before; the point
  // step (zero: the server's default, about 300 points).
  absl::Duration since = absl::Hours(1);
  absl::Duration step = absl::ZeroDuration();
};

// Pure formatters. Every one returns whole lines ending in '\n', columns
// aligned, milliseconds with 3 decimals and "-" for every absent optional
// field or empty status: a missing measurement is never printed as 0.

// `status`: the summary (overall status, the target's ICMP latency, gRPC
// figures and age), a blank line, then one row per target: NAME STATUS
// ICMP_MS GRPC_MS NET_MS AGE. A target's AGE is the oldest age among its
// enabled probes, so stale data shows.
std::string FormatStatusTable(const v1::GetLatencyResponse& response);

// `targets`: NAME HOST ADDRESS PORT STATUS ICMP_MS GRPC_MS NET_MS AGE
// LAST_ERROR, one row per target (LAST_ERROR is "kind: error" per failing
// probe, joined by "; ").
std::string FormatTargetsTable(const v1::ListTargetsResponse& response);

// `stats`: a title line (target, address, status, window), one row per
// probe kind with SENT RECV LOSS% LAST MIN MEAN MAX STDDEV JITTER P50 P90
// P99 P99.9 NET_P50, then the failure causes per kind, sorted by cause.
std::string FormatStatsTable(const v1::GetTargetStatsResponse& response);

// `history`: a title line (target, kind, range, step, resolution), a
// sparkline of the p50 per point (a space where nothing is stored), then one
// row per point with data: TIME SENT LOSS% MIN P50 P90 P99 MAX NET_P50
// STATUS; or a line saying the range holds no stored history.
std::string FormatHistoryTable(const v1::GetHistoryResponse& response);
// One character per value from "▁▂▃▄▅▆▇█" scaled from the smallest to the
// largest present value, a space for an absent one.
std::string Sparkline(const std::vector<std::optional<double>>& values);
// `watch`: the column header and one line per sample: scheduled wall time in
// `zone` (milliseconds), target, kind, result, rtt ms, network ms, error.
std::string FormatWatchHeader();
std::string FormatWatchLine(const v1::Sample& sample, absl::TimeZone zone);

// A duration given in milliseconds, for people: "350ms", "2.5s", "3m05s".
std::string FormatAge(double age_ms);

// `message` in protobuf's JSON mapping on one line (no trailing newline),
// exactly as the HTTP gateway serves it (common/json.h): field names as in
// the .proto, enums by name, every field present, and an absent optional
// field as null, which means "no data".
std::string FormatJson(const google::protobuf::Message& message);

// `matrix`: what one server answered to ListTargets (every page), and the
// address it was asked at.
struct MatrixRow {
  std::string server;
  v1::ListTargetsResponse targets;
};

// One row per source (a server's --source, else its address), one column per
// target name (first seen first): the latest RTT of `kind` (ICMP when
// unspecified) in ms when ok, the RTT with "*" when degraded or stale, the
// status (down, unknown) when there is no usable RTT, "-" when that source
// does not probe that target (or not with `kind`).
std::string FormatMatrixTable(const std::vector<MatrixRow>& rows,
                              v1::ProbeKind kind);
// One JSON object per line per probed cell: {"source", "server", "target",
// "probe": ProbeSummary in protobuf's JSON mapping}.
std::string FormatMatrixJson(const std::vector<MatrixRow>& rows,
                             v1::ProbeKind kind);
// kExitOk when every probed cell is ok, else kExitNotOk.
int MatrixExitCode(const std::vector<MatrixRow>& rows, v1::ProbeKind kind);

// Exit codes a response implies: kExitOk when ok, kExitNotOk otherwise.
// status: the status of `target` when one was asked about (other targets
// do not count), else the overall status, is "ok"; targets: every target is
// "ok" (true for none); stats: the target's status is "ok".
int StatusExitCode(const v1::GetLatencyResponse& response,
                   const std::string& target = "");
int TargetsExitCode(const v1::ListTargetsResponse& response);
int StatsExitCode(const v1::GetTargetStatsResponse& response);

// The commands. Each makes its call(s) on `channel` to latency-server
// (`options.server` only labels messages), prints the response in
// `options.output` to `out` and problems to `err`, and returns the process
// exit code: the response's (above) on success; kExitError when the server
// cannot be reached or the deadline passes ("latencyctl: cannot reach
// latency-server at ADDR: ..."), for an unknown target ("latencyctl:
// unknown target X"), a rejected argument such as a bad window, or any
// other failed call. Unary calls use `options.timeout` as their deadline.
int RunStatus(const QueryOptions& options,
              std::shared_ptr<grpc::ChannelInterface> channel,
              std::ostream& out, std::ostream& err);
int RunTargets(const QueryOptions& options,
               std::shared_ptr<grpc::ChannelInterface> channel,
               std::ostream& out, std::ostream& err);
int RunStats(const QueryOptions& options,
             std::shared_ptr<grpc::ChannelInterface> channel, std::ostream& out,
             std::ostream& err);
// `history`: GetHistory over [now - options.since, now) at options.step;
// exit 0 when the server answered (with data or without).
int RunHistory(const QueryOptions& options,
               std::shared_ptr<grpc::ChannelInterface> channel,
               std::ostream& out, std::ostream& err);

// Every page of ListTargets into `all` (source and total from the last).
grpc::Status ListAllTargets(std::shared_ptr<grpc::ChannelInterface> channel,
                            absl::Duration timeout,
                            v1::ListTargetsResponse* all);

// `matrix`: ListTargets on every server at once (each a (address, channel)
// pair), then the matrix of those that answered; a server that did not is
// reported on `err` ("cannot reach latency-server at ADDR") and makes the
// exit code kExitError, after the others' rows are printed.
int RunMatrix(
    const QueryOptions& options,
    const std::vector<
        std::pair<std::string, std::shared_ptr<grpc::ChannelInterface>>>&
        servers,
    std::ostream& out, std::ostream& err);

// Streams samples matching `options.target` and `options.kind` (no deadline)
// and prints each as it arrives, flushing per line, until the server ends
// the stream cleanly, `options.count` samples have arrived or `stop` (may be
// null; polled from a helper thread that cancels the call) becomes true.
// When the server ends the stream with UNAVAILABLE over a connection that
// is still up (it reloaded its configuration), says so on `err` ("...;
// reconnected") and watches again. Returns kExitOk on any of those,
// kExitError when the stream fails.
int RunWatch(const QueryOptions& options,
             std::shared_ptr<grpc::ChannelInterface> channel, std::ostream& out,
             std::ostream& err, const std::atomic<bool>* stop = nullptr);

}  // namespace latency

#endif  // LATENCY_CLI_QUERY_COMMANDS_H_
