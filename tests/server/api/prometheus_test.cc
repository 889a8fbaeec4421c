// RenderPrometheus against a store of known samples: every family README
// lists, with its TYPE, unit (seconds, ratio 0-1), labels and values.
// Histogram buckets are checked for structure and for counts of samples far
// (> 5%) from any bound, not for one bucket layout (issue 18 changes it).
#include "server/api/prometheus.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/api/api_test_store.h"

namespace latency {
namespace {

using ::latency::testing::ApiTarget;
using ::latency::testing::ApiTestStore;
using ::latency::testing::kApiMs;
using ::latency::testing::kApiSec;
using ::testing::ElementsAre;
using ::testing::Pair;

using Labels = std::map<std::string, std::string>;

struct SampleLine {
  std::string name;
  Labels labels;
  double value = 0;
};

// A strict reader of the text format 0.0.4 as this renderer writes it:
// every sample belongs to the family declared just before it.
struct Exposition {
  std::map<std::string, std::string> type;  // family -> TYPE
  std::map<std::string, std::string> help;
  std::vector<std::string> order;  // families in output order
  std::vector<SampleLine> samples;
  std::vector<std::string> errors;

  std::vector<SampleLine> Of(const std::string& name,
                             const Labels& subset = {}) const {
    std::vector<SampleLine> out;
    for (const SampleLine& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : subset) {
        auto it = s.labels.find(k);
        match &= it != s.labels.end() && it->second == v;
      }
      if (match) out.push_back(s);
    }
    return out;
  }
  // The one sample with exactly these labels; NaN when absent.
  double Value(const std::string& name, const Labels& labels) const {
    for (const SampleLine& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nan("");
  }
  bool Has(const std::string& name, const Labels& labels) const {
    return !std::isnan(Value(name, labels));
  }
};

Exposition Parse(const std::string& text) {
  Exposition e;
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  static const std::regex kLabel(
      R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::string family;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::string l(line);
    if (absl::ConsumePrefix(&line, "# HELP ")) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      family = parts.first;
      e.help[family] = parts.second;
      e.order.push_back(family);
      continue;
    }
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      if (parts.first != family) e.errors.push_back("TYPE without HELP: " + l);
      e.type[parts.first] = parts.second;
      continue;
    }
    std::smatch m;
    if (!std::regex_match(l, m, kSample)) {
      e.errors.push_back("bad line: " + l);
      continue;
    }
    SampleLine s;
    s.name = m[1];
    std::string labels = m[3];
    std::string rest = labels;
    for (std::smatch lm; std::regex_search(rest, lm, kLabel);
         rest = lm.suffix()) {
      s.labels[lm[1]] = lm[2];
    }
    if (!absl::SimpleAtod(std::string(m[4]), &s.value)) {
      e.errors.push_back("bad value: " + l);
    }
    std::string base = s.name;
    if (e.type[family] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (absl::EndsWith(base, suffix) &&
            base.substr(0, base.size() - strlen(suffix)) == family) {
          base = family;
        }
      }
    }
    if (base != family) e.errors.push_back("sample outside its family: " + l);
    e.samples.push_back(std::move(s));
  }
  return e;
}

// A target whose empty series stays "unknown" (not stale) for 3 minutes.
TargetSpec SlowTarget(const std::string& name, const std::string& host) {
  TargetSpec spec = ApiTarget(name, host);
  spec.interval = absl::Minutes(1);
  return spec;
}

// The renderer's inputs: "alpha" (both kinds, known samples), "beta" (ICMP
// only, every probe failed), "gam\"ma" (no samples yet, a name to escape).
class PrometheusTest : public ::testing::Test {
 protected:
  PrometheusTest()
      : data_({ApiTarget("alpha", "10.0.0.1"),
               ApiTarget("beta", "10.0.0.2", true, false),
               SlowTarget("gam\"ma", "10.0.0.3")}) {
    data_.clock().Advance(absl::Seconds(30));
    // alpha ICMP: RTTs far from any plausible bucket bound, then 2 timeouts
    // and an unreachable among them; the latest is ok.
    for (int64_t rtt_us : kIcmpRttsUs) {
      data_.Ok(0, ProbeKind::kIcmp, rtt_us * 1000);
    }
    data_.Fail(0, ProbeKind::kIcmp, SampleResult::kTimeout);
    data_.Fail(0, ProbeKind::kIcmp, SampleResult::kTimeout);
    data_.Fail(0, ProbeKind::kIcmp, SampleResult::kUnreachable);
    data_.clock().Advance(absl::Milliseconds(500));
    data_.Ok(0, ProbeKind::kIcmp, 3'300'000);        // the latest: 3.3 ms
    data_.clock().Advance(absl::Milliseconds(250));  // age 0.25 s
    // alpha gRPC: 4 ok, the latest 7.7 ms with 1.7 ms inside the agent.
    data_.Ok(0, ProbeKind::kGrpc, 1'400'000, 300'000);
    data_.Ok(0, ProbeKind::kGrpc, 17'000'000, 1'000'000);
    data_.Ok(0, ProbeKind::kGrpc, 70'000'000, 1'000'000);
    data_.Ok(0, ProbeKind::kGrpc, 7'700'000, 1'700'000);
    // beta ICMP: 4 failures in a row.
    for (int i = 0; i < 4; ++i) {
      data_.Fail(1, ProbeKind::kIcmp, SampleResult::kTimeout);
    }
    gauges_.icmp_max_lag_ns = 1'500'000;
    gauges_.grpc_max_lag_ns = 250'000'000;
    gauges_.icmp_available = true;
  }

  Exposition Render() {
    std::string text = RenderPrometheus(data_.store(), gauges_, [](int i) {
      TargetCounters c;
      c.icmp_late_replies = 10 + i;
      c.grpc_late_replies = 20 + i;
      c.icmp_duplicate_replies = 30 + i;
      c.icmp_mismatched_replies = 40 + i;
      c.grpc_channel_state_changes = 50 + i;
      c.skipped_probes = 60 + i;
      c.grpc_connect_replies = 70 + i;
      return c;
    });
    text_ = text;
    return Parse(text);
  }

  static constexpr int64_t kIcmpRttsUs[] = {70,   170,  330,  700,
                                            1700, 3300, 7000, 17000};
  ApiTestStore data_;
  ProberGauges gauges_;
  std::string text_;
};

Labels L(std::initializer_list<std::pair<const std::string, std::string>> l) {
  return Labels(l);
}

TEST_F(PrometheusTest, ParsesStrictlyAndDeclaresEachFamilyOnce) {
  Exposition e = Render();
  EXPECT_THAT(e.errors, ::testing::IsEmpty()) << text_;
  std::set<std::string> unique(e.order.begin(), e.order.end());
  EXPECT_EQ(unique.size(), e.order.size()) << "a family declared twice";
  for (const std::string& family : e.order) {
    EXPECT_TRUE(absl::StartsWith(family, "latency_")) << family;
    EXPECT_FALSE(e.help[family].empty()) << family;
  }
}

// Every family README's Prometheus paragraph names is rendered with a TYPE
// that fits its name: *_total counters, the histogram, the rest gauges.
TEST_F(PrometheusTest, EveryFamilyReadmeListsIsRenderedWithItsType) {
  std::ifstream readme(LATENCY_README);
  ASSERT_TRUE(readme) << LATENCY_README;
  std::stringstream buffer;
  buffer << readme.rdbuf();
  std::string text = buffer.str();
  size_t start = text.find("**Prometheus** metrics");
  ASSERT_NE(start, std::string::npos);
  std::string paragraph = text.substr(start, text.find("\n\n", start) - start);
  std::set<std::string> listed;
  static const std::regex kName(R"(`(latency_[a-z_]+)(\{[a-z]+\})?`)");
  for (std::sregex_iterator it(paragraph.begin(), paragraph.end(), kName), end;
       it != end; ++it) {
    listed.insert((*it)[1]);
  }
  EXPECT_GE(listed.size(), 15u) << paragraph;  // the paragraph parsed

  Exposition e = Render();
  for (const std::string& name : listed) {
    SCOPED_TRACE(name);
    ASSERT_EQ(e.type.count(name), 1u) << "README lists it, not rendered";
    std::string want = name == "latency_rtt_seconds"    ? "histogram"
                       : absl::EndsWith(name, "_total") ? "counter"
                                                        : "gauge";
    EXPECT_EQ(e.type[name], want);
  }
  // And nothing is rendered that README does not list.
  for (const std::string& family : e.order) {
    EXPECT_EQ(listed.count(family), 1u) << family << " is not in README";
  }
}

TEST_F(PrometheusTest, RttHistogramIsCumulativeWithExactCounts) {
  Exposition e = Render();
  ASSERT_EQ(e.type["latency_rtt_seconds"], "histogram");
  struct Series {
    Labels labels;
    std::vector<int64_t> rtts_ns;
  };
  std::vector<int64_t> icmp;
  for (int64_t us : kIcmpRttsUs) icmp.push_back(us * 1000);
  icmp.push_back(3'300'000);
  std::vector<Series> series = {
      {L({{"target", "alpha"}, {"kind", "icmp"}}), icmp},
      {L({{"target", "alpha"}, {"kind", "grpc"}}),
       {1'400'000, 17'000'000, 70'000'000, 7'700'000}},
      {L({{"target", "beta"}, {"kind", "icmp"}}), {}},
      {L({{"target", "gam\\\"ma"}, {"kind", "icmp"}}), {}},
      {L({{"target", "gam\\\"ma"}, {"kind", "grpc"}}), {}}};
  for (const Series& s : series) {
    SCOPED_TRACE(s.labels.at("target") + "/" + s.labels.at("kind"));
    std::vector<SampleLine> buckets =
        e.Of("latency_rtt_seconds_bucket", s.labels);
    ASSERT_GE(buckets.size(), 2u);
    double previous_bound = 0;
    double previous_count = 0;
    for (const SampleLine& b : buckets) {
      EXPECT_EQ(b.labels.size(), 3u);  // target, kind, le
      ASSERT_EQ(b.labels.count("le"), 1u);
      EXPECT_GE(b.value, previous_count)
          << "not cumulative at le=" << b.labels.at("le");
      previous_count = b.value;
      if (b.labels.at("le") == "+Inf") continue;
      double bound;
      ASSERT_TRUE(absl::SimpleAtod(b.labels.at("le"), &bound));
      EXPECT_GT(bound, previous_bound) << "bounds not increasing";
      previous_bound = bound;
      // Exact count where no sample is within 5% of the bound (seconds).
      bool near = false;
      uint64_t below = 0;
      for (int64_t rtt : s.rtts_ns) {
        double seconds = static_cast<double>(rtt) * 1e-9;
        near |= std::abs(seconds - bound) <= 0.05 * bound;
        below += seconds <= bound ? 1 : 0;
      }
      if (!near) {
        EXPECT_EQ(b.value, static_cast<double>(below)) << "le=" << bound;
      }
    }
    EXPECT_EQ(buckets.back().labels.at("le"), "+Inf");
    double count = e.Value("latency_rtt_seconds_count", s.labels);
    EXPECT_EQ(count, static_cast<double>(s.rtts_ns.size()));
    EXPECT_EQ(buckets.back().value, count);
    // The sum is in seconds: within 5% of the exact sum, whatever the
    // histogram's resolution.
    double exact = 0;
    for (int64_t rtt : s.rtts_ns) exact += static_cast<double>(rtt) * 1e-9;
    double sum = e.Value("latency_rtt_seconds_sum", s.labels);
    ASSERT_FALSE(std::isnan(sum));
    EXPECT_NEAR(sum, exact, 0.05 * exact);
  }
  // beta has no gRPC probe: no series at all.
  EXPECT_TRUE(
      e.Of("latency_rtt_seconds_count", {{"target", "beta"}, {"kind", "grpc"}})
          .empty());
}

TEST_F(PrometheusTest, ProbesTotalCountsEveryResultOfEverySeries) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_probes_total"], "counter");
  std::map<std::string, double> alpha_icmp;
  for (const SampleLine& s :
       e.Of("latency_probes_total", {{"target", "alpha"}, {"kind", "icmp"}})) {
    EXPECT_EQ(s.labels.size(), 3u);
    alpha_icmp[s.labels.at("result")] = s.value;
  }
  EXPECT_THAT(alpha_icmp,
              ElementsAre(Pair("error", 0), Pair("ok", 9),
                          Pair("send_failed", 0), Pair("timeout", 2),
                          Pair("ttl_exceeded", 0), Pair("unreachable", 1)));
  EXPECT_EQ(e.Value("latency_probes_total",
                    {{"target", "alpha"}, {"kind", "grpc"}, {"result", "ok"}}),
            4);
  EXPECT_EQ(
      e.Value("latency_probes_total",
              {{"target", "beta"}, {"kind", "icmp"}, {"result", "timeout"}}),
      4);
  EXPECT_EQ(
      e.Value("latency_probes_total",
              {{"target", "gam\\\"ma"}, {"kind", "grpc"}, {"result", "ok"}}),
      0);
  EXPECT_TRUE(
      e.Of("latency_probes_total", {{"target", "beta"}, {"kind", "grpc"}})
          .empty());
}

TEST_F(PrometheusTest, LatestRttsAreInSecondsAndAbsentWithoutData) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_last_rtt_seconds"], "gauge");
  EXPECT_DOUBLE_EQ(e.Value("latency_last_rtt_seconds",
                           {{"target", "alpha"}, {"kind", "icmp"}}),
                   0.0033);
  EXPECT_DOUBLE_EQ(e.Value("latency_last_rtt_seconds",
                           {{"target", "alpha"}, {"kind", "grpc"}}),
                   0.0077);
  // Never 0 for "no data": the series is absent.
  EXPECT_EQ(e.Of("latency_last_rtt_seconds").size(), 2u);

  EXPECT_EQ(e.type["latency_network_rtt_seconds"], "gauge");
  EXPECT_DOUBLE_EQ(e.Value("latency_network_rtt_seconds",
                           {{"target", "alpha"}, {"kind", "grpc"}}),
                   0.006);  // 7.7 ms - 1.7 ms inside the agent
  EXPECT_EQ(e.Of("latency_network_rtt_seconds").size(), 1u);
}

TEST_F(PrometheusTest, LossIsARatioOverTheLastMinute) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_loss_ratio"], "gauge");
  // alpha ICMP: 3 lost of 12; beta: 4 of 4; alpha gRPC: none.
  EXPECT_DOUBLE_EQ(
      e.Value("latency_loss_ratio", {{"target", "alpha"}, {"kind", "icmp"}}),
      0.25);
  EXPECT_DOUBLE_EQ(
      e.Value("latency_loss_ratio", {{"target", "beta"}, {"kind", "icmp"}}), 1);
  EXPECT_DOUBLE_EQ(
      e.Value("latency_loss_ratio", {{"target", "alpha"}, {"kind", "grpc"}}),
      0);
  // Nothing sent: absent, not 0.
  EXPECT_TRUE(e.Of("latency_loss_ratio", {{"target", "gam\\\"ma"}}).empty());
  // Older than the window: gone from the ratio.
  data_.clock().Advance(absl::Minutes(2));
  Exposition later = Render();
  EXPECT_TRUE(later.Of("latency_loss_ratio").empty()) << text_;
}

TEST_F(PrometheusTest, StatusIsOneForTheCurrentStatusOnly) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_status"], "gauge");
  struct Want {
    std::string target, kind, status;
  };
  for (const Want& w :
       // 25% loss, but 12 samples are too few to call it degraded (20).
       {Want{"alpha", "icmp", "ok"}, Want{"alpha", "grpc", "ok"},
        Want{"beta", "icmp", "down"}, Want{"gam\\\"ma", "icmp", "unknown"},
        Want{"gam\\\"ma", "grpc", "unknown"}}) {
    SCOPED_TRACE(w.target + "/" + w.kind);
    std::map<std::string, double> by_status;
    for (const SampleLine& s :
         e.Of("latency_status", {{"target", w.target}, {"kind", w.kind}})) {
      by_status[s.labels.at("status")] = s.value;
    }
    ASSERT_EQ(by_status.size(),
              6u);  // unknown ok degraded down stale no_permission
    for (const auto& [status, value] : by_status) {
      EXPECT_EQ(value, status == w.status ? 1 : 0) << status;
    }
  }
}

TEST_F(PrometheusTest, AgeAndConsecutiveFailures) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_sample_age_seconds"], "gauge");
  EXPECT_DOUBLE_EQ(e.Value("latency_sample_age_seconds",
                           {{"target", "alpha"}, {"kind", "icmp"}}),
                   0.25);
  EXPECT_DOUBLE_EQ(e.Value("latency_sample_age_seconds",
                           {{"target", "alpha"}, {"kind", "grpc"}}),
                   0);
  EXPECT_TRUE(
      e.Of("latency_sample_age_seconds", {{"target", "gam\\\"ma"}}).empty());
  data_.clock().Advance(absl::Seconds(2));
  e = Render();
  EXPECT_DOUBLE_EQ(e.Value("latency_sample_age_seconds",
                           {{"target", "beta"}, {"kind", "icmp"}}),
                   2);

  EXPECT_EQ(e.type["latency_consecutive_failures"], "gauge");
  EXPECT_EQ(e.Value("latency_consecutive_failures",
                    {{"target", "beta"}, {"kind", "icmp"}}),
            4);
  EXPECT_EQ(e.Value("latency_consecutive_failures",
                    {{"target", "alpha"}, {"kind", "icmp"}}),
            0);
  EXPECT_EQ(e.Value("latency_consecutive_failures",
                    {{"target", "gam\\\"ma"}, {"kind", "grpc"}}),
            0);
}

// Each counter of a probe kind the target has; beta (ICMP only) has none
// of the gRPC ones: a fleet of ICMP-only targets pays no series for them.
TEST_F(PrometheusTest, ProberCountersPerTarget) {
  Exposition e = Render();
  const std::vector<std::string> names = {"alpha", "beta", "gam\\\"ma"};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(names[i]);
    const std::string& t = names[i];
    const bool grpc = t != "beta";
    EXPECT_EQ(e.Value("latency_late_replies_total",
                      {{"target", t}, {"kind", "icmp"}}),
              10 + i);
    EXPECT_EQ(e.Value("latency_duplicate_replies_total", {{"target", t}}),
              30 + i);
    EXPECT_EQ(e.Value("latency_mismatched_replies_total", {{"target", t}}),
              40 + i);
    EXPECT_EQ(e.Value("latency_skipped_probes_total", {{"target", t}}), 60 + i);
    EXPECT_EQ(
        e.Has("latency_late_replies_total", {{"target", t}, {"kind", "grpc"}}),
        grpc);
    EXPECT_EQ(
        e.Has("latency_grpc_channel_state_changes_total", {{"target", t}}),
        grpc);
    EXPECT_EQ(e.Has("latency_grpc_connect_replies_total", {{"target", t}}),
              grpc);
    if (!grpc) continue;
    EXPECT_EQ(e.Value("latency_late_replies_total",
                      {{"target", t}, {"kind", "grpc"}}),
              20 + i);
    EXPECT_EQ(
        e.Value("latency_grpc_channel_state_changes_total", {{"target", t}}),
        50 + i);
    EXPECT_EQ(e.Value("latency_grpc_connect_replies_total", {{"target", t}}),
              70 + i);
  }
}

// And a gRPC-only target has none of the ICMP ones.
TEST(PrometheusKindsTest, GrpcOnlyTargetHasNoIcmpCounters) {
  ApiTestStore data({ApiTarget("g", "10.0.0.9", false, true)});
  Exposition e = Parse(RenderPrometheus(data.store(), ProberGauges(),
                                        [](int) { return TargetCounters(); }));
  EXPECT_TRUE(
      e.Has("latency_late_replies_total", {{"target", "g"}, {"kind", "grpc"}}));
  EXPECT_TRUE(e.Has("latency_grpc_connect_replies_total", {{"target", "g"}}));
  EXPECT_FALSE(
      e.Has("latency_late_replies_total", {{"target", "g"}, {"kind", "icmp"}}));
  EXPECT_FALSE(e.Has("latency_duplicate_replies_total", {{"target", "g"}}));
  EXPECT_FALSE(e.Has("latency_mismatched_replies_total", {{"target", "g"}}));
}

TEST_F(PrometheusTest, ProberGaugesInSeconds) {
  Exposition e = Render();
  EXPECT_EQ(e.type["latency_prober_lag_seconds"], "gauge");
  EXPECT_DOUBLE_EQ(e.Value("latency_prober_lag_seconds", {{"kind", "icmp"}}),
                   0.0015);
  EXPECT_DOUBLE_EQ(e.Value("latency_prober_lag_seconds", {{"kind", "grpc"}}),
                   0.25);
  EXPECT_EQ(e.type["latency_icmp_available"], "gauge");
  EXPECT_EQ(e.Value("latency_icmp_available", {}), 1);
  gauges_.icmp_available = false;
  EXPECT_EQ(Render().Value("latency_icmp_available", {}), 0);
}

// Every series says where it was measured from (source) and carries its
// target's configured labels, escaped; without a source the label is absent.
TEST(PrometheusLabelsTest, SourceOnEverySeriesAndTargetLabelsOnTargets) {
  TargetSpec labelled = ApiTarget("alpha", "10.0.0.1");
  labelled.labels = {{"az", "eu-west-1b"}, {"role", "db \"primary\""}};
  ApiTestStore data({labelled, ApiTarget("beta", "10.0.0.2")});
  data.Ok(0, ProbeKind::kIcmp, 1'000'000);
  data.Ok(1, ProbeKind::kGrpc, 2'000'000, 100'000);
  const auto counters = [](int) { return TargetCounters(); };
  Exposition e =
      Parse(RenderPrometheus(data.store(), ProberGauges(), counters,
                             ExpositionFormat::kPrometheusText, "eu-west-1a"));
  ASSERT_THAT(e.errors, ::testing::IsEmpty());
  ASSERT_FALSE(e.samples.empty());
  for (const SampleLine& sample : e.samples) {
    SCOPED_TRACE(sample.name);
    EXPECT_EQ(sample.labels.count("source"), 1u);
    EXPECT_EQ(sample.labels.at("source"), "eu-west-1a");
    auto target = sample.labels.find("target");
    if (target == sample.labels.end()) continue;  // prober-wide gauges
    if (target->second == "alpha") {
      EXPECT_EQ(sample.labels.at("az"), "eu-west-1b");
      // As written in the exposition (this test's reader keeps escapes).
      EXPECT_EQ(sample.labels.at("role"), R"(db \"primary\")");
    } else {
      EXPECT_EQ(sample.labels.count("az"), 0u);
      EXPECT_EQ(sample.labels.count("role"), 0u);
    }
  }
  EXPECT_DOUBLE_EQ(
      e.Value("latency_last_rtt_seconds", {{"source", "eu-west-1a"},
                                           {"target", "alpha"},
                                           {"az", "eu-west-1b"},
                                           {"role", R"(db \"primary\")"},
                                           {"kind", "icmp"}}),
      0.001);
  EXPECT_EQ(e.Value("latency_icmp_available", {{"source", "eu-west-1a"}}), 0);

  Exposition unsourced =
      Parse(RenderPrometheus(data.store(), ProberGauges(), counters));
  for (const SampleLine& sample : unsourced.samples) {
    EXPECT_EQ(sample.labels.count("source"), 0u) << sample.name;
  }
}

// In parts of any budget the renderer gives exactly the whole text; each
// part ends at a line's end and stops within one target's lines past its
// budget (a histogram's 22 lines are the most one step writes).
TEST_F(PrometheusTest, PartsJoinToTheWholeTextAndEndAtLineEnds) {
  const auto counters = [](int) { return TargetCounters(); };
  for (ExpositionFormat format :
       {ExpositionFormat::kPrometheusText, ExpositionFormat::kOpenMetrics}) {
    const std::string whole =
        RenderPrometheus(data_.store(), gauges_, counters, format, "here");
    for (size_t budget : {size_t{1}, size_t{100}, size_t{5000}}) {
      ExpositionRenderer renderer(data_.store(), gauges_, counters, format,
                                  "here");
      std::string joined;
      int parts = 0;
      bool more = true;
      while (more) {
        std::string part;
        more = renderer.Next(part, budget);
        ++parts;
        ASSERT_LT(parts, 10'000) << "no end";
        if (!part.empty()) {
          EXPECT_EQ(part.back(), '\n') << budget;
        }
        EXPECT_LT(part.size(), budget + 4096) << budget;
        joined += part;
      }
      EXPECT_EQ(joined, whole) << "budget " << budget;
      if (budget == 1) {
        EXPECT_GT(parts, 30);
      }
    }
  }
}

// What the lines say is copied when the renderer is made: probes completed
// while a slow client reads the parts do not mix two moments in one scrape.
TEST_F(PrometheusTest, PartsDescribeTheMomentTheRendererWasMade) {
  const auto counters = [](int) { return TargetCounters(); };
  const std::string before = RenderPrometheus(data_.store(), gauges_, counters);
  ExpositionRenderer renderer(data_.store(), gauges_, counters,
                              ExpositionFormat::kPrometheusText, "");
  for (int i = 0; i < 5; ++i) {
    data_.Fail(1, ProbeKind::kIcmp, SampleResult::kTimeout);
  }
  std::string text;
  while (renderer.Next(text, 1)) {
  }
  const Exposition then = Parse(text);
  const Labels beta_timeouts =
      L({{"target", "beta"}, {"kind", "icmp"}, {"result", "timeout"}});
  EXPECT_EQ(then.Value("latency_probes_total", beta_timeouts),
            Parse(before).Value("latency_probes_total", beta_timeouts));
  EXPECT_EQ(then.Value("latency_consecutive_failures",
                       L({{"target", "beta"}, {"kind", "icmp"}})),
            4);
  EXPECT_EQ(Parse(RenderPrometheus(data_.store(), gauges_, counters))
                .Value("latency_consecutive_failures",
                       L({{"target", "beta"}, {"kind", "icmp"}})),
            9);
}

TEST(EscapeLabelValueTest, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain-name.v6:x_y"), "plain-name.v6:x_y");
}

}  // namespace
}  // namespace latency
