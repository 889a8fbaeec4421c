// Writes the seed corpora of tests/fuzz (tests/fuzz/corpus/NAME/SEED), byte
// for byte as the fuzz targets read them:
//   make_seeds tests/fuzz/corpus
// Seeds are real-looking inputs: ICMP replies and errors as each socket kind
// delivers them, the example config as text/JSON/binary, HTTP requests for
// every route, and LatencyService responses produced by QueryHandler.
#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "latency/v1/config.pb.h"
#include "server/api/query.h"
#include "server/history/minute_chunk.h"
#include "server/prober/icmp_packet.h"
#include "tests/fuzz/fuzz_store.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

namespace fs = std::filesystem;

// The inverse of fuzz::Input: appends values the way Input reads them.
class Encoder {
 public:
  Encoder& Byte(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Encoder& Bool(bool v) { return Byte(v ? 1 : 0); }
  Encoder& U16(uint16_t v) { return Byte(v >> 8).Byte(v & 0xff); }
  Encoder& U32(uint32_t v) { return U16(v >> 16).U16(v & 0xffff); }
  Encoder& U64(uint64_t v) { return U32(v >> 32).U32(v & 0xffffffff); }
  Encoder& Below(uint32_t v) { return U32(v); }  // v < n reads back as v
  Encoder& Bytes(const std::string& s) {
    U32(static_cast<uint32_t>(s.size()));
    return Raw(s);
  }
  Encoder& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

fs::path g_root;

// `tag` (a mode or type byte, NUL included) followed by `rest`.
std::string Tag(char tag, const std::string& rest) {
  return std::string(1, tag) + rest;
}

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Reply(bool v6, uint16_t id, uint16_t sequence) {
  std::string payload = BuildProbePayload(0x1122334455667788, 7, 56);
  std::string message = BuildEchoRequest(v6, id, sequence, payload);
  message[0] = static_cast<char>(v6 ? 129 : 0);
  return message;
}

std::string Ipv4Header(const char* source, const char* destination,
                       size_t options = 0) {
  std::string header(20 + options, '\0');
  header[0] = static_cast<char>(0x40 | (5 + options / 4));
  header[8] = 64;  // TTL
  header[9] = 1;   // ICMP
  inet_pton(AF_INET, source, header.data() + 12);
  inet_pton(AF_INET, destination, header.data() + 16);
  return header;
}

std::string Ipv6Header(const char* source, const char* destination) {
  std::string header(40, '\0');
  header[0] = 0x60;
  header[6] = 58;  // ICMPv6
  header[7] = 64;
  inet_pton(AF_INET6, source, header.data() + 8);
  inet_pton(AF_INET6, destination, header.data() + 24);
  return header;
}

// An ICMP error quoting our request to `destination`.
std::string Error(bool v6, uint8_t type, uint8_t code,
                  const char* destination) {
  std::string error(8, '\0');
  error[0] = static_cast<char>(type);
  error[1] = static_cast<char>(code);
  error += v6 ? Ipv6Header("2001:db8::1", destination)
              : Ipv4Header("10.0.0.1", destination);
  error += BuildEchoRequest(v6, 0x1234, 42, std::string(8, 'x'));
  return error;
}

void IcmpPacketSeeds() {
  const std::string n = "icmp_packet";
  // Flags byte: bit 0 IPv6, bit 1 IPv4 header included (raw socket).
  Write(n, "v4_dgram_reply", Tag(0, Reply(false, 0x1234, 1)));
  Write(n, "v4_raw_reply",
        "\x02" + Ipv4Header("127.0.0.1", "127.0.0.1") + Reply(false, 7, 2));
  Write(n, "v4_raw_reply_ip_options",
        "\x02" + Ipv4Header("10.0.0.9", "10.0.0.1", 8) + Reply(false, 7, 3));
  Write(n, "v4_dgram_unreachable", Tag(0, Error(false, 3, 1, "10.9.9.9")));
  Write(n, "v4_raw_time_exceeded",
        "\x02" + Ipv4Header("10.0.0.254", "10.0.0.1") +
            Error(false, 11, 0, "10.9.9.9"));
  Write(n, "v4_echo_request", Tag(0, BuildEchoRequest(false, 1, 1, "ping")));
  Write(n, "v4_truncated", std::string("\x00\x00\x00\x12", 4));
  Write(n, "v6_reply", "\x01" + Reply(true, 0x4321, 9));
  Write(n, "v6_unreachable", "\x01" + Error(true, 1, 4, "2001:db8::2"));
  Write(n, "v6_time_exceeded", "\x01" + Error(true, 3, 0, "2001:db8::2"));
  Write(n, "v6_other_type",
        "\x01" + std::string("\x87\x00\x00\x00", 4) + std::string(20, '\x01'));
}

// icmp_prober inputs: header, then ops (see icmp_prober_fuzz.cc's Op).
enum Op : uint8_t {
  kAdvance,
  kReply,
  kGarbage,
  kQueuedError,
  kErrorMessage,
  kTxStamp,
  kDrain,
  kUpdateAddress,
  kSendError,
  kDuplicate
};

Encoder ProberHeader(
    const std::vector<std::tuple<uint32_t, uint32_t, uint32_t>>& targets) {
  Encoder e;
  e.Below(static_cast<uint32_t>(targets.size() - 1));
  for (const auto& [address, interval, timeout] : targets) {
    e.Below(address).Below(interval).Below(timeout).Below(40);  // 56 B
  }
  return e;
}

void Advance(Encoder& e, uint8_t ms, bool times20 = false) {
  e.Byte(kAdvance).Bool(false).Byte(ms).Bool(times20);
}
void ReplyToLast(Encoder& e, bool v6, uint8_t mutate = 0, bool stamps = false) {
  e.Byte(kReply).Bool(v6).Below(0).Bool(false).Byte(mutate);
  if (mutate & 0x01) e.Below(3).Below(0x40);
  if (stamps) {
    e.Bool(true).U16(5);
  } else {
    e.Bool(false);
  }
}
void Drain(Encoder& e) { e.Byte(kDrain).Bool(false).Bool(true); }

void IcmpProberSeeds() {
  const std::string n = "icmp_prober";
  // Address indexes: 0 127.0.0.1, 1 127.0.0.2, 2 10.1.2.3, 3 ::1,
  // 4 2001:db8::2, 5 unresolved. Intervals 10/100/250/1000 ms, timeouts
  // 1/50/500/1000/3000 ms.
  {
    Encoder e = ProberHeader({{0, 3, 2}, {3, 3, 2}});
    for (int round = 0; round < 3; ++round) {
      Advance(e, 250, true);  // 5 s: both due
      ReplyToLast(e, false, 0, round == 1);
      ReplyToLast(e, true);
      Drain(e);
    }
    Write(n, "replies_v4_v6", e.str());
  }
  {
    Encoder e = ProberHeader({{0, 1, 4}});
    for (int round = 0; round < 4; ++round) {
      Advance(e, 100);
      ReplyToLast(e, false, round == 2 ? 0x01 : 0);  // one bad payload
      e.Byte(kDuplicate).Bool(false);
      e.Byte(kTxStamp).Bool(false).Below(0).Bool(false).Bool(true).Byte(1).U16(
          10);
      Drain(e);
    }
    Advance(e, 250, true);
    Write(n, "duplicates_stamps_mismatch", e.str());
  }
  {
    Encoder e = ProberHeader({{2, 2, 3}, {4, 2, 3}});
    Advance(e, 250);
    e.Byte(kQueuedError)
        .Bool(false)
        .Below(0)
        .Bool(false)
        .Below(8)
        .Bool(false)
        .Bool(false)
        .Bool(false)
        .Byte(1);
    e.Byte(kErrorMessage)
        .Bool(true)
        .Below(0)
        .Bool(false)
        .Bool(true)
        .Byte(0)
        .Bool(false)
        .Below(8)
        .Below(3);
    Drain(e);
    Advance(e, 250, true);
    Write(n, "errors", e.str());
  }
  {
    Encoder e = ProberHeader({{5, 0, 0}, {0, 0, 1}});
    Advance(e, 20);
    e.Byte(kUpdateAddress).Bool(false).Below(0).Below(1);
    e.Byte(kSendError).Bool(false);
    Advance(e, 20);
    e.Byte(kSendError).Bool(false);
    Advance(e, 20);
    e.Byte(kGarbage)
        .Bool(false)
        .Bool(true)
        .Below(0)
        .Bytes(std::string(4, '\0'))
        .Bool(false);
    Drain(e);
    Advance(e, 200);
    Write(n, "unresolved_send_errors_timeouts", e.str());
  }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void ConfigSeeds() {
  const std::string n = "config";
  std::string example = ReadFile(g_root / ".." / ".." / ".." / "server" /
                                 "config" / "example.textproto");
  if (example.empty()) {
    std::fprintf(stderr, "example.textproto not found from %s\n",
                 g_root.c_str());
    std::exit(1);
  }
  v1::ServerConfig config;
  google::protobuf::TextFormat::ParseFromString(example, &config);
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  google::protobuf::util::MessageToJsonString(config, &json, options);
  // Mode byte: 0 text file, 1 JSON file, 2 flags, 3 binary; 0x80 also
  // uses the first target's probe settings as flag defaults.
  Write(n, "example_textproto", Tag(0, example));
  Write(n, "example_json", "\x01" + json);
  Write(n, "example_binary", "\x83" + config.SerializeAsString());
  Write(n, "flags",
        "\x02local=127.0.0.1\n[::1]:50051\nagent.example:7\n"
        "v6=fe80::1%eth0\nbad=[::1\n=x\nhost:0");
  Write(n, "textproto_and_flags",
        Tag(0,
            "targets { host: \"10.0.0.1\" probe { interval_ms: 5 } }\n"
            "thresholds { degraded_loss_percent: nan }\n--\nlocal=127.0.0.1\n"
            "10.0.0.1"));
  Write(n, "json_error",
        "\x01{\n  \"targets\": [{\"host\": 1, }],\n"
        "  \"bogus\": true\n}");
}

void HttpSeeds() {
  // METHOD (with '!': the gateway that wants a token), target, headers, an
  // empty line, body.
  const std::string n = "http_gateway";
  auto get = [](const std::string& target, const std::string& headers = "") {
    return "GET\n" + target + "\n" + headers;
  };
  Write(n, "metrics", get("/metrics"));
  Write(n, "metrics_accept_prometheus",
        get("/metrics", "Accept: text/plain;version=0.0.4\n"));
  Write(n, "metrics_format_openmetrics", get("/metrics?format=openmetrics"));
  Write(n, "metrics_format_bad", get("/metrics?format=xml&format=json"));
  Write(n, "latency_target", get("/v1/latency?target=agent-2.v6%3Ax_y"));
  Write(n, "latency_unknown", get("/v1/latency?target=nope"));
  Write(n, "targets", get("/v1/targets"));
  Write(n, "stats_window", get("/v1/targets/local/stats?window=5m"));
  Write(n, "stats_encoded_name", get("/v1/targets/agent-2.v6%3ax_y/stats"));
  Write(n, "stats_bad_window", get("/v1/targets/icmp-only/stats?window=2m"));
  Write(n, "readyz", get("/readyz"));
  Write(n, "post_metrics", "POST\n/metrics\nContent-Type: text/plain\n\nbody");
  Write(n, "head_targets", "HEAD\n/v1/targets\n");
  Write(n, "range", get("/v1/targets", "Range: bytes=0-9,20-\n"));
  Write(n, "not_found", get("/v2/nothing?x=%zz"));
  Write(n, "auth_ok",
        "!GET\n/v1/targets/local/stats\n"
        "Authorization: Bearer fuzz-token-0123\n");
  Write(n, "auth_wrong",
        "!GET\n/metrics?format=prometheus\n"
        "Authorization: bearer fuzz-token-0124\n");
  Write(n, "auth_missing_healthz", "!GET\n/healthz\n");
  Write(n, "auth_missing_encoded", "!GET\n/%76%31/targets\n");
}

v1::Sample FuzzSampleProto(const QueryHandler& query, int64_t now) {
  Sample sample;
  sample.target_index = 1;
  sample.kind = ProbeKind::kGrpc;
  sample.sequence = 99;
  sample.scheduled_ns = now - 2'000'000;
  sample.sent_ns = now - 1'900'000;
  sample.completed_ns = now;
  sample.result = SampleResult::kOk;
  sample.rtt_ns = 1'900'000;
  sample.agent_time_ns = 40'000;
  return QueryHandler::SampleToProto(*query.Current().store, sample);
}

// query inputs and json's messages come from one store of samples.
void QueryAndJsonSeeds() {
  Encoder samples;
  const int kSamples = 40;
  samples.Below(kSamples);
  for (int i = 0; i < kSamples; ++i) {
    bool ok = i % 5 != 4;
    samples.Below(i % 3)
        .Bool(i % 2 == 1)
        .U16(static_cast<uint16_t>(i))
        .Below(static_cast<uint32_t>(i * 97 % 4000))
        .Below(1000)
        .Below(100'000)
        .Below(10)
        .Below(ok ? 0 : 1 + (i / 5) % 5);
    if (ok) {
      samples.Bool(false).Below(100'000 + i * 1'000);
      if (i % 2 == 1) samples.Bool(true).Below(20'000);
      samples.Below(i % 3);
    } else {
      samples.Bytes(i % 2 == 0 ? "no reply within timeout" : "");
    }
  }
  const std::string q = "query";
  Write(q, "stats_local_1m", samples.str() + "local\n1m\n\n\x01");
  Write(q, "stats_v6_1h", samples.str() + "agent-2.v6:x_y\n1h\nlocal\n\x02");
  Write(q, "stats_icmp_only_default",
        samples.str() + "icmp-only\n\nnope\n\x05");
  Write(q, "unknown_target_bad_window", samples.str() + "x\n2m\n\n\xff");
  Write(q, "no_samples", Encoder().Below(0).str() + "local\n15m\n\n");

  // The same store, answered by QueryHandler, serialized for json_fuzz
  // (type byte: 0 GetLatency, 1 GetTargetStats, 2 ListTargets, 3 Watch, 4
  // ErrorResponse, 5 Sample).
  testing::FakeClock clock(int64_t{10} * 3600 * 1'000'000'000);
  auto shared = std::make_shared<ResultStore>(clock, fuzz::FuzzTargets(),
                                              StatusThresholds());
  ResultStore& store = *shared;
  QueryHandler query([shared] {
    return StoreView{shared, [](int) { return std::string("127.0.0.1"); }};
  });
  std::string bytes = samples.str();
  fuzz::Input in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  int count = static_cast<int>(in.Below(64));
  for (int i = 0; i < count; ++i) {
    store.Record(fuzz::FuzzSample(in, 3, clock.MonotonicNanos()));
  }
  const std::string j = "json";
  Write(j, "get_latency",
        Tag(0, query.GetLatency(v1::GetLatencyRequest())->SerializeAsString()));
  Write(j, "get_latency_empty", std::string(1, '\x00'));
  for (const char* target : {"local", "icmp-only"}) {
    v1::GetTargetStatsRequest request;
    request.set_target(target);
    request.set_window("5m");
    Write(j, absl::StrCat("stats_", target),
          "\x01" + query.GetTargetStats(request)->SerializeAsString());
  }
  Write(j, "list_targets",
        "\x02" +
            query.ListTargets(v1::ListTargetsRequest())->SerializeAsString());
  v1::WatchResponse watch;
  *watch.mutable_sample() = FuzzSampleProto(query, clock.MonotonicNanos());
  Write(j, "watch", "\x03" + watch.SerializeAsString());
  v1::ErrorResponse error;
  error.set_code(5);  // NOT_FOUND
  error.set_message("unknown target 'x'");
  Write(j, "error", "\x04" + error.SerializeAsString());
  v1::Sample special = watch.sample();
  special.set_rtt_ms(std::numeric_limits<double>::quiet_NaN());
  special.set_send_lag_ms(-std::numeric_limits<double>::infinity());
  special.set_error("caf\xc3\xa9 \"quoted\" \\ \n");
  Write(j, "sample_nan_inf_utf8", "\x05" + special.SerializeAsString());
}

// Rows, histograms and chunks as the history database stores them: a
// steady minute, one with losses and an error, an empty one; an hour with
// gaps.
void HistoryBlobSeeds() {
  constexpr int64_t kHour = 1'796'000'400;
  std::vector<HistoryRow> rows;
  for (int m = 0; m < 60; m += (m % 7 == 3 ? 3 : 1)) {
    HistoryRow row;
    row.start_s = kHour + 60 * m;
    for (int s = 0; s < 60; ++s) {
      Sample sample;
      sample.kind = m % 2 == 0 ? ProbeKind::kIcmp : ProbeKind::kGrpc;
      if (m % 5 == 0 && s % 9 == 0) {
        sample.result = SampleResult::kTimeout;
      } else {
        sample.result = SampleResult::kOk;
        sample.rtt_ns = 5'000'000 + 7'919 * ((s * 31 + m) % 97);
        if (sample.kind == ProbeKind::kGrpc) sample.agent_time_ns = 20'000;
      }
      row.Add(sample, m % 5 == 0 ? ProbeStatus::kDegraded : ProbeStatus::kOk);
    }
    if (m == 4) {  // a minute without probes
      row = HistoryRow();
      row.start_s = kHour + 60 * m;
    }
    rows.push_back(row);
  }
  const std::string h = "history_blob";
  Write(h, "row_steady", "\x00" + rows[1].Encode());
  Write(h, "row_lossy", "\x00" + rows[0].Encode());
  Write(h, "row_empty", std::string(1, '\x00') + rows[4].Encode());
  Write(h, "histogram", "\x01" + rows[1].rtt.Encode());
  Write(h, "chunk_hour", "\x02" + EncodeMinuteChunk(kHour, rows));
  Write(h, "chunk_one", "\x02" + EncodeMinuteChunk(kHour, {rows[2]}));
}

}  // namespace
}  // namespace latency

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s tests/fuzz/corpus\n", argv[0]);
    return 2;
  }
  latency::g_root = argv[1];
  latency::IcmpPacketSeeds();
  latency::IcmpProberSeeds();
  latency::ConfigSeeds();
  latency::HttpSeeds();
  latency::QueryAndJsonSeeds();
  latency::HistoryBlobSeeds();
  return 0;
}
