#include "cli/query_commands.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "google/protobuf/util/time_util.h"
#include "latency/v1/latency.grpc.pb.h"

namespace latency {
namespace {

// How often RunWatch's helper thread looks at the stop flag.
constexpr absl::Duration kStopPoll = absl::Milliseconds(50);

// Rows of cells printed as left-aligned columns two spaces apart.
class Table {
 public:
  void AddRow(std::vector<std::string> cells) {
    rows_.push_back(std::move(cells));
  }

  std::string Render() const {
    std::vector<size_t> widths;
    for (const auto& row : rows_) {
      if (widths.size() < row.size()) widths.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) {
        widths[i] = std::max(widths[i], row[i].size());
      }
    }
    std::string text;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        if (i > 0) line += "  ";
        line += row[i];
        line.append(widths[i] - row[i].size(), ' ');
      }
      absl::StrAppend(&text, absl::StripTrailingAsciiWhitespace(line), "\n");
    }
    return text;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string Ms(bool present, double ms) {
  return present ? absl::StrFormat("%.3f", ms) : "-";
}

std::string Text(const std::string& text) { return text.empty() ? "-" : text; }

std::string Age(bool present, double age_ms) {
  return present ? FormatAge(age_ms) : "-";
}

// "PROBE_KIND_ICMP" -> "icmp", "..._UNSPECIFIED" -> "-".
std::string EnumLabel(const std::string& name, absl::string_view prefix,
                      int value) {
  if (name.empty()) return absl::StrCat(value);
  absl::string_view suffix = absl::StripPrefix(name, prefix);
  if (suffix == "UNSPECIFIED") return "-";
  return absl::AsciiStrToLower(suffix);
}

std::string KindLabel(v1::ProbeKind kind) {
  return EnumLabel(v1::ProbeKind_Name(kind), "PROBE_KIND_", kind);
}

std::string ResultLabel(v1::SampleResult result) {
  return EnumLabel(v1::SampleResult_Name(result), "SAMPLE_RESULT_", result);
}

// The target's enabled probe of `kind`, or null.
const v1::ProbeSummary* FindProbe(const v1::TargetSummary& target,
                                  v1::ProbeKind kind) {
  for (const v1::ProbeSummary& probe : target.probes()) {
    if (probe.kind() == kind && probe.enabled()) return &probe;
  }
  return nullptr;
}

// ICMP_MS GRPC_MS NET_MS AGE for one target.
std::vector<std::string> ProbeCells(const v1::TargetSummary& target) {
  const v1::ProbeSummary* icmp = FindProbe(target, v1::PROBE_KIND_ICMP);
  const v1::ProbeSummary* grpc = FindProbe(target, v1::PROBE_KIND_GRPC);
  bool has_age = false;
  double oldest = 0;
  for (const v1::ProbeSummary& probe : target.probes()) {
    if (!probe.enabled() || !probe.has_age_ms()) continue;
    oldest = has_age ? std::max(oldest, probe.age_ms()) : probe.age_ms();
    has_age = true;
  }
  return {icmp ? Ms(icmp->has_last_rtt_ms(), icmp->last_rtt_ms()) : "-",
          grpc ? Ms(grpc->has_last_rtt_ms(), grpc->last_rtt_ms()) : "-",
          grpc
              ? Ms(grpc->has_last_network_rtt_ms(), grpc->last_network_rtt_ms())
              : "-",
          Age(has_age, oldest)};
}

std::string LastErrors(const v1::TargetSummary& target) {
  std::vector<std::string> errors;
  for (const v1::ProbeSummary& probe : target.probes()) {
    if (probe.enabled() && !probe.last_error().empty()) {
      errors.push_back(
          absl::StrCat(KindLabel(probe.kind()), ": ", probe.last_error()));
    }
  }
  return errors.empty() ? "-" : absl::StrJoin(errors, "; ");
}

std::vector<std::string> Concat(std::vector<std::string> head,
                                const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// One `watch` line; the widths fit a typical line, longer cells push on.
std::string WatchRow(absl::string_view time, absl::string_view target,
                     absl::string_view kind, absl::string_view result,
                     absl::string_view rtt, absl::string_view network,
                     absl::string_view error) {
  std::string line =
      absl::StrFormat("%-23s  %-12s  %-4s  %-12s  %9s  %9s  %s", time, target,
                      kind, result, rtt, network, error);
  return absl::StrCat(absl::StripTrailingAsciiWhitespace(line), "\n");
}

int OkExitCode(const std::string& status) {
  return status == "ok" ? kExitOk : kExitNotOk;
}

// Prints why a call failed and returns the exit code for it.
int ReportRpcError(const grpc::Status& status, const QueryOptions& options,
                   std::ostream& err) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err << "latencyctl: cannot reach latency-server at " << options.server
          << ": " << GrpcStatusText(status) << "\n";
      break;
    case grpc::StatusCode::NOT_FOUND:
      err << "latencyctl: unknown target "
          << (options.target.empty() ? GrpcStatusText(status) : options.target)
          << "\n";
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      err << "latencyctl: token rejected by latency-server at "
          << options.server
          << " (give the current token with --auth_token_file, over TLS): "
          << GrpcStatusText(status) << "\n";
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      err << "latencyctl: invalid request: " << status.error_message() << "\n";
      break;
    default:
      err << "latencyctl: latency-server failed the call: "
          << GrpcStatusText(status) << "\n";
  }
  return kExitError;
}

// Writes `response` as --output asks and returns its exit code.
template <typename Response, typename ExitCodeFn>
int Print(const QueryOptions& options, const Response& response,
          std::string (*format)(const Response&), const ExitCodeFn& exit_code,
          std::ostream& out) {
  if (options.output == OutputFormat::kJson) {
    out << FormatJson(response) << "\n";
  } else {
    out << format(response);
  }
  out << std::flush;
  return exit_code(response);
}

// A blocking unary method of the generated stub.
template <typename Request, typename Response>
using UnaryMethod = grpc::Status (v1::LatencyService::Stub::*)(
    grpc::ClientContext*, const Request&, Response*);

// Calls `method` with the --timeout deadline, prints the response in the
// chosen format and returns its exit code (or the failed call's).
template <typename Request, typename Response, typename ExitCodeFn>
int RunUnary(const QueryOptions& options,
             std::shared_ptr<grpc::ChannelInterface> channel,
             UnaryMethod<Request, Response> method, const Request& request,
             std::string (*format)(const Response&),
             const ExitCodeFn& exit_code, std::ostream& out,
             std::ostream& err) {
  std::unique_ptr<v1::LatencyService::Stub> stub =
      v1::LatencyService::NewStub(std::move(channel));
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(options.timeout));
  Response response;
  grpc::Status status = ((*stub).*method)(&context, request, &response);
  if (!status.ok()) return ReportRpcError(status, options, err);
  return Print(options, response, format, exit_code, out);
}

}  // namespace

std::string FormatAge(double age_ms) {
  // Thresholds sit where rounding would print "1000ms" or "60.0s".
  if (age_ms < 999.5) return absl::StrFormat("%.0fms", age_ms);
  if (age_ms < 59'950) return absl::StrFormat("%.1fs", age_ms / 1000);
  int64_t seconds = std::llround(age_ms / 1000);
  return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
}

std::string FormatStatusTable(const v1::GetLatencyResponse& response) {
  Table summary;
  summary.AddRow({"status", Text(response.status())});
  summary.AddRow({"target", Text(response.target())});
  summary.AddRow(
      {"latency_ms",
       absl::StrCat(Ms(response.has_latency_ms(), response.latency_ms()),
                    "  (icmp ", Text(response.icmp_status()), ")")});
  summary.AddRow(
      {"grpc_ms", absl::StrCat(Ms(response.has_grpc_latency_ms(),
                                  response.grpc_latency_ms()),
                               "  (grpc ", Text(response.grpc_status()), ")")});
  summary.AddRow({"network_ms", Ms(response.has_grpc_network_latency_ms(),
                                   response.grpc_network_latency_ms())});
  summary.AddRow({"age", Age(response.has_age_ms(), response.age_ms())});

  Table targets;
  targets.AddRow({"NAME", "STATUS", "ICMP_MS", "GRPC_MS", "NET_MS", "AGE"});
  for (const v1::TargetSummary& target : response.targets()) {
    targets.AddRow(Concat({Text(target.name()), Text(target.status())},
                          ProbeCells(target)));
  }
  std::string text = absl::StrCat(summary.Render(), "\n", targets.Render());
  if (static_cast<uint32_t>(response.targets_size()) <
      response.target_count()) {
    absl::StrAppend(&text, "... ",
                    response.target_count() - response.targets_size(),
                    " more targets, worst first above (`latencyctl targets` "
                    "lists every one)\n");
  }
  return text;
}

std::string FormatTargetsTable(const v1::ListTargetsResponse& response) {
  Table table;
  table.AddRow({"NAME", "HOST", "ADDRESS", "PORT", "STATUS", "ICMP_MS",
                "GRPC_MS", "NET_MS", "AGE", "LAST_ERROR"});
  for (const v1::TargetSummary& target : response.targets()) {
    std::vector<std::string> row = Concat(
        {Text(target.name()), Text(target.host()), Text(target.address()),
         target.grpc_port() == 0 ? "-" : absl::StrCat(target.grpc_port()),
         Text(target.status())},
        ProbeCells(target));
    row.push_back(LastErrors(target));
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string Sparkline(const std::vector<std::optional<double>>& values) {
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = 0;
  double hi = 0;
  bool any = false;
  for (const std::optional<double>& v : values) {
    if (!v) continue;
    lo = any ? std::min(lo, *v) : *v;
    hi = any ? std::max(hi, *v) : *v;
    any = true;
  }
  std::string line;
  for (const std::optional<double>& v : values) {
    if (!v) {
      line += ' ';
      continue;
    }
    const int level =
        hi > lo ? static_cast<int>((*v - lo) / (hi - lo) * 7.0 + 0.5) : 0;
    line += kBlocks[std::clamp(level, 0, 7)];
  }
  return line;
}

std::string FormatHistoryTable(const v1::GetHistoryResponse& response) {
  using google::protobuf::util::TimeUtil;
  std::string text = absl::StrFormat(
      "target %s  %s  %s .. %s  step %s (%s rows)  (times in ms)\n",
      Text(response.target()), KindLabel(response.kind()),
      TimeUtil::ToString(response.start()), TimeUtil::ToString(response.end()),
      TimeUtil::ToString(response.step()), Text(response.resolution()));
  std::vector<std::optional<double>> p50;
  Table table;
  table.AddRow({"TIME", "SENT", "LOSS%", "MIN", "P50", "P90", "P99", "MAX",
                "NET_P50", "STATUS"});
  int rows = 0;
  for (const v1::HistoryPoint& p : response.points()) {
    p50.push_back(p.has_p50_ms() ? std::optional<double>(p.p50_ms())
                                 : std::nullopt);
    if (p.sent() == 0) continue;
    ++rows;
    table.AddRow(
        {TimeUtil::ToString(p.time()), absl::StrCat(p.sent()),
         p.has_loss_percent() ? absl::StrFormat("%.1f", p.loss_percent()) : "-",
         Ms(p.has_min_ms(), p.min_ms()), Ms(p.has_p50_ms(), p.p50_ms()),
         Ms(p.has_p90_ms(), p.p90_ms()), Ms(p.has_p99_ms(), p.p99_ms()),
         Ms(p.has_max_ms(), p.max_ms()),
         Ms(p.has_network_p50_ms(), p.network_p50_ms()), Text(p.status())});
  }
  if (rows == 0) {
    return text + "no stored history in this range\n";
  }
  absl::StrAppend(&text, "p50 |", Sparkline(p50), "|\n\n", table.Render());
  return text;
}

std::string FormatStatsTable(const v1::GetTargetStatsResponse& response) {
  const v1::TargetSummary& target = response.target();
  std::string text =
      absl::StrFormat("target %s (%s)  status %s  window %s  (times in ms)\n\n",
                      Text(target.name()), Text(target.address()),
                      Text(target.status()), Text(response.window()));
  Table table;
  table.AddRow({"KIND", "STATUS", "SENT", "RECV", "LOSS%", "LAST", "MIN",
                "MEAN", "MAX", "STDDEV", "JITTER", "P50", "P90", "P99", "P99.9",
                "NET_P50"});
  std::vector<std::string> failures;
  std::vector<std::string> percentiles;
  for (const v1::ProbeStats& p : response.probes()) {
    if (p.has_p50_ms()) {
      percentiles.push_back(absl::StrCat(
          KindLabel(p.kind()), p.percentiles_exact()
                                   ? " exact (the window's samples)"
                                   : " from the histogram (within 0.1%)"));
    }
    table.AddRow(
        {KindLabel(p.kind()), Text(p.status()), absl::StrCat(p.sent()),
         absl::StrCat(p.received()),
         p.has_loss_percent() ? absl::StrFormat("%.1f", p.loss_percent()) : "-",
         Ms(p.has_last_ms(), p.last_ms()), Ms(p.has_min_ms(), p.min_ms()),
         Ms(p.has_mean_ms(), p.mean_ms()), Ms(p.has_max_ms(), p.max_ms()),
         Ms(p.has_stddev_ms(), p.stddev_ms()),
         Ms(p.has_jitter_ms(), p.jitter_ms()), Ms(p.has_p50_ms(), p.p50_ms()),
         Ms(p.has_p90_ms(), p.p90_ms()), Ms(p.has_p99_ms(), p.p99_ms()),
         Ms(p.has_p999_ms(), p.p999_ms()),
         Ms(p.has_network_p50_ms(), p.network_p50_ms())});
    if (p.failures().empty()) continue;
    std::map<std::string, uint64_t> sorted(p.failures().begin(),
                                           p.failures().end());
    failures.push_back(
        absl::StrCat("  ", KindLabel(p.kind()), ": ",
                     absl::StrJoin(sorted, ", ", absl::PairFormatter("="))));
  }
  absl::StrAppend(&text, table.Render(), "\n");
  if (!percentiles.empty()) {
    absl::StrAppend(&text, "percentiles: ", absl::StrJoin(percentiles, ", "),
                    "\n");
  }
  if (failures.empty()) {
    absl::StrAppend(&text, "failures: none\n");
  } else {
    absl::StrAppend(&text, "failures:\n", absl::StrJoin(failures, "\n"), "\n");
  }
  return text;
}

std::string FormatWatchHeader() {
  return WatchRow("TIME", "TARGET", "KIND", "RESULT", "RTT_MS", "NET_MS",
                  "ERROR");
}

std::string FormatWatchLine(const v1::Sample& sample, absl::TimeZone zone) {
  std::string time = "-";
  if (sample.has_scheduled_time()) {
    absl::Time scheduled =
        absl::FromUnixSeconds(sample.scheduled_time().seconds()) +
        absl::Nanoseconds(sample.scheduled_time().nanos());
    time = absl::FormatTime("%Y-%m-%d %H:%M:%E3S", scheduled, zone);
  }
  return WatchRow(
      time, Text(sample.target()), KindLabel(sample.kind()),
      ResultLabel(sample.result()), Ms(sample.has_rtt_ms(), sample.rtt_ms()),
      Ms(sample.has_network_rtt_ms(), sample.network_rtt_ms()), sample.error());
}

std::string FormatJson(const google::protobuf::Message& message) {
  return ToJson(message);
}

int StatusExitCode(const v1::GetLatencyResponse& response,
                   const std::string& target) {
  if (target.empty()) return OkExitCode(response.status());
  for (const v1::TargetSummary& summary : response.targets()) {
    if (summary.name() == target) return OkExitCode(summary.status());
  }
  return kExitNotOk;
}

int TargetsExitCode(const v1::ListTargetsResponse& response) {
  for (const v1::TargetSummary& target : response.targets()) {
    if (target.status() != "ok") return kExitNotOk;
  }
  return kExitOk;
}

int StatsExitCode(const v1::GetTargetStatsResponse& response) {
  return OkExitCode(response.target().status());
}

int RunStatus(const QueryOptions& options,
              std::shared_ptr<grpc::ChannelInterface> channel,
              std::ostream& out, std::ostream& err) {
  v1::GetLatencyRequest request;
  request.set_target(options.target);
  return RunUnary(
      options, std::move(channel), &v1::LatencyService::Stub::GetLatency,
      request, &FormatStatusTable,
      [&options](const v1::GetLatencyResponse& response) {
        return StatusExitCode(response, options.target);
      },
      out, err);
}

grpc::Status ListAllTargets(std::shared_ptr<grpc::ChannelInterface> channel,
                            absl::Duration timeout,
                            v1::ListTargetsResponse* all) {
  std::unique_ptr<v1::LatencyService::Stub> stub =
      v1::LatencyService::NewStub(std::move(channel));
  v1::ListTargetsRequest request;
  do {
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfter(timeout));
    v1::ListTargetsResponse page;
    grpc::Status status = stub->ListTargets(&context, request, &page);
    if (!status.ok()) return status;
    all->mutable_targets()->MergeFrom(page.targets());
    all->set_total_size(page.total_size());
    all->set_source(page.source());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return grpc::Status::OK;
}

int RunTargets(const QueryOptions& options,
               std::shared_ptr<grpc::ChannelInterface> channel,
               std::ostream& out, std::ostream& err) {
  // Every page, so the table (and the exit code) covers every target.
  v1::ListTargetsResponse all;
  grpc::Status status =
      ListAllTargets(std::move(channel), options.timeout, &all);
  if (!status.ok()) return ReportRpcError(status, options, err);
  return Print(options, all, &FormatTargetsTable, &TargetsExitCode, out);
}

namespace {

// The probe of `kind` (ICMP when unspecified) in `target`, if enabled.
const v1::ProbeSummary* MatrixProbe(const v1::TargetSummary& target,
                                    v1::ProbeKind kind) {
  if (kind == v1::PROBE_KIND_UNSPECIFIED) kind = v1::PROBE_KIND_ICMP;
  for (const v1::ProbeSummary& probe : target.probes()) {
    if (probe.kind() == kind && probe.enabled()) return &probe;
  }
  return nullptr;
}

// A row's label: the server's source, or its address when it has none.
std::string MatrixSource(const MatrixRow& row) {
  return row.targets.source().empty() ? row.server : row.targets.source();
}

}  // namespace

std::string FormatMatrixTable(const std::vector<MatrixRow>& rows,
                              v1::ProbeKind kind) {
  std::vector<std::string> columns;  // target names, first seen first
  for (const MatrixRow& row : rows) {
    for (const v1::TargetSummary& target : row.targets.targets()) {
      if (std::find(columns.begin(), columns.end(), target.name()) ==
          columns.end()) {
        columns.push_back(target.name());
      }
    }
  }
  Table table;
  std::vector<std::string> header = {"SOURCE \\ TARGET"};
  header.insert(header.end(), columns.begin(), columns.end());
  table.AddRow(header);
  bool starred = false;
  for (const MatrixRow& row : rows) {
    std::vector<std::string> cells = {MatrixSource(row)};
    for (const std::string& name : columns) {
      const v1::ProbeSummary* probe = nullptr;
      for (const v1::TargetSummary& target : row.targets.targets()) {
        if (target.name() == name) probe = MatrixProbe(target, kind);
      }
      if (probe == nullptr) {
        cells.push_back("-");
      } else if (probe->status() == "ok") {
        cells.push_back(Ms(probe->has_last_rtt_ms(), probe->last_rtt_ms()));
      } else if (probe->has_last_rtt_ms() && probe->status() != "down") {
        cells.push_back(absl::StrCat(Ms(true, probe->last_rtt_ms()), "*"));
        starred = true;
      } else {
        cells.push_back(probe->status().empty() ? "unknown" : probe->status());
      }
    }
    table.AddRow(cells);
  }
  std::string text = absl::StrCat(
      "latest ", kind == v1::PROBE_KIND_GRPC ? "gRPC" : "ICMP",
      " RTT (ms) from each source (row) to each target (column); - not "
      "probed\n",
      table.Render());
  if (starred) {
    absl::StrAppend(&text,
                    "* not ok (degraded or stale): latencyctl status "
                    "--server=... says why\n");
  }
  return text;
}

std::string FormatMatrixJson(const std::vector<MatrixRow>& rows,
                             v1::ProbeKind kind) {
  std::string text;
  for (const MatrixRow& row : rows) {
    for (const v1::TargetSummary& target : row.targets.targets()) {
      const v1::ProbeSummary* probe = MatrixProbe(target, kind);
      if (probe == nullptr) continue;
      v1::ProbeSummary cell = *probe;
      absl::StrAppend(&text, "{\"source\":", JsonQuote(MatrixSource(row)),
                      ",\"server\":", JsonQuote(row.server),
                      ",\"target\":", JsonQuote(target.name()),
                      ",\"probe\":", ToJson(cell), "}\n");
    }
  }
  return text;
}

int MatrixExitCode(const std::vector<MatrixRow>& rows, v1::ProbeKind kind) {
  for (const MatrixRow& row : rows) {
    for (const v1::TargetSummary& target : row.targets.targets()) {
      const v1::ProbeSummary* probe = MatrixProbe(target, kind);
      if (probe != nullptr && probe->status() != "ok") return kExitNotOk;
    }
  }
  return kExitOk;
}

int RunMatrix(
    const QueryOptions& options,
    const std::vector<
        std::pair<std::string, std::shared_ptr<grpc::ChannelInterface>>>&
        servers,
    std::ostream& out, std::ostream& err) {
  // Every server at once: one slow or dead server costs one timeout.
  std::vector<MatrixRow> rows(servers.size());
  std::vector<grpc::Status> results(servers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < servers.size(); ++i) {
    rows[i].server = servers[i].first;
    threads.emplace_back([&, i] {
      results[i] =
          ListAllTargets(servers[i].second, options.timeout, &rows[i].targets);
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<MatrixRow> answered;
  bool failed = false;
  for (size_t i = 0; i < servers.size(); ++i) {
    if (results[i].ok()) {
      answered.push_back(std::move(rows[i]));
      continue;
    }
    QueryOptions server = options;
    server.server = servers[i].first;
    ReportRpcError(results[i], server, err);
    failed = true;
  }
  out << (options.output == OutputFormat::kJson
              ? FormatMatrixJson(answered, options.kind)
              : FormatMatrixTable(answered, options.kind));
  if (failed) return kExitError;
  return MatrixExitCode(answered, options.kind);
}

int RunStats(const QueryOptions& options,
             std::shared_ptr<grpc::ChannelInterface> channel, std::ostream& out,
             std::ostream& err) {
  v1::GetTargetStatsRequest request;
  request.set_target(options.target);
  request.set_window(options.window);
  return RunUnary(options, std::move(channel),
                  &v1::LatencyService::Stub::GetTargetStats, request,
                  &FormatStatsTable, &StatsExitCode, out, err);
}

int RunHistory(const QueryOptions& options,
               std::shared_ptr<grpc::ChannelInterface> channel,
               std::ostream& out, std::ostream& err) {
  v1::GetHistoryRequest request;
  request.set_target(options.target);
  request.set_kind(options.kind);
  const absl::Time now = absl::Now();
  const absl::Time start = now - options.since;
  request.mutable_start()->set_seconds(absl::ToUnixSeconds(start));
  request.mutable_end()->set_seconds(absl::ToUnixSeconds(now) + 1);
  if (options.step > absl::ZeroDuration()) {
    request.mutable_step()->set_seconds(absl::ToInt64Seconds(options.step));
  }
  return RunUnary(
      options, std::move(channel), &v1::LatencyService::Stub::GetHistory,
      request, &FormatHistoryTable,
      [](const v1::GetHistoryResponse&) { return kExitOk; }, out, err);
}

int RunWatch(const QueryOptions& options,
             std::shared_ptr<grpc::ChannelInterface> channel, std::ostream& out,
             std::ostream& err, const std::atomic<bool>* stop) {
  std::unique_ptr<v1::LatencyService::Stub> stub =
      v1::LatencyService::NewStub(channel);
  v1::WatchRequest request;
  request.set_target(options.target);
  request.set_kind(options.kind);
  if (options.output == OutputFormat::kTable) out << FormatWatchHeader();
  out << std::flush;
  absl::TimeZone local = absl::LocalTimeZone();
  int received = 0;
  while (true) {
    grpc::ClientContext context;
    std::atomic<bool> cancelled{false};  // by us: a clean stop, not an error
    absl::Notification done;
    std::thread canceller([&] {
      while (!done.WaitForNotificationWithTimeout(kStopPoll)) {
        if (stop != nullptr && stop->load()) {
          cancelled = true;
          context.TryCancel();
          return;
        }
      }
    });
    std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader =
        stub->Watch(&context, request);
    v1::WatchResponse response;
    bool counted_out = false;
    while (reader->Read(&response)) {
      if (options.output == OutputFormat::kJson) {
        out << FormatJson(response) << "\n";
      } else {
        out << FormatWatchLine(response.sample(), local);
      }
      out << std::flush;
      if (options.count > 0 && ++received >= options.count) {
        counted_out = true;
        cancelled = true;
        context.TryCancel();
        break;
      }
    }
    grpc::Status status = reader->Finish();
    done.Notify();
    canceller.join();
    if (cancelled || counted_out || status.ok()) return kExitOk;
    // The server ends every stream with UNAVAILABLE when it reloads its
    // configuration, over a connection that stays up: watch again.
    bool connected = channel->GetState(false) == GRPC_CHANNEL_READY;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || !connected) {
      return ReportRpcError(status, options, err);
    }
    absl::SleepFor(kStopPoll);
    err << "latencyctl: latency-server ended the watch ("
        << status.error_message() << "); reconnected\n"
        << std::flush;
  }
}

}  // namespace latency
