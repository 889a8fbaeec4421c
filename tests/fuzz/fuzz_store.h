#ifndef LATENCY_TESTS_FUZZ_FUZZ_STORE_H_
#define LATENCY_TESTS_FUZZ_FUZZ_STORE_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "server/sample.h"
#include "server/store/result_store.h"
#include "server/target.h"
#include "tests/fuzz/fuzz_util.h"

namespace latency::fuzz {

// The targets the query and HTTP fuzz targets serve: names with every
// character a name may have, one probe kind switched off.
inline std::vector<TargetSpec> FuzzTargets() {
  std::vector<TargetSpec> targets(3);
  targets[0].name = "local";
  targets[0].host = "127.0.0.1";
  targets[1].name = "agent-2.v6:x_y";
  targets[1].host = "2001:db8::2";
  targets[1].interval = absl::Milliseconds(200);
  targets[2].name = "icmp-only";
  targets[2].host = "10.1.2.3";
  targets[2].grpc_enabled = false;
  return targets;
}

// One sample as a prober could produce it (RTT only on success, never
// negative, completed within the last two hours), fields from `in`.
inline Sample FuzzSample(Input& in, int targets, int64_t now_ns) {
  Sample sample;
  sample.target_index = static_cast<int>(in.Below(targets));
  sample.kind = in.Bool() ? ProbeKind::kGrpc : ProbeKind::kIcmp;
  sample.sequence = in.U16();
  sample.completed_ns = now_ns -
                        static_cast<int64_t>(in.Below(7200)) * 1'000'000'000 -
                        in.Below(1'000'000'000);
  sample.sent_ns = sample.completed_ns - in.Below(2'000'000'000);
  sample.scheduled_ns = sample.sent_ns - in.Below(1'000'000);
  sample.result = static_cast<SampleResult>(in.Below(6));
  if (sample.ok()) {
    // Mostly realistic RTTs, sometimes anything a clock step could give.
    sample.rtt_ns = in.Bool() ? static_cast<int64_t>(in.U64() >> 1)
                              : static_cast<int64_t>(in.Below(2'000'000'000));
    if (sample.kind == ProbeKind::kGrpc && in.Bool()) {
      sample.agent_time_ns = in.Below(static_cast<uint32_t>(
          std::min<int64_t>(*sample.rtt_ns, 4'000'000'000) + 1));
    }
    sample.timestamp_source = static_cast<TimestampSource>(1 + in.Below(3));
  } else {
    sample.error = std::string(in.Bytes(24));
    // Any bytes: a peer's gRPC status message is not validated, and errors
    // are cut at kMaxErrorBytes, maybe mid-character.
  }
  return sample;
}

}  // namespace latency::fuzz

#endif  // LATENCY_TESTS_FUZZ_FUZZ_STORE_H_
