#ifndef LATENCY_SERVER_CONFIG_CONFIG_H_
#define LATENCY_SERVER_CONFIG_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "latency/v1/config.pb.h"
#include "server/config/file_sd.h"
#include "server/target.h"

// Loading latency-server's configuration: the --config file
// (latency.v1.ServerConfig), --target flags and flag defaults are parsed,
// merged, validated and resolved into TargetSpecs. Nothing here touches the
// network: host names are checked for syntax only and resolved by the
// prober. Every error is INVALID_ARGUMENT (or the file's errno status) and
// its message names the offending field, flag or file position.

namespace latency {

// Limits enforced by BuildSettings; exported for flag help texts.
inline constexpr int kMinIntervalMs = 10;
inline constexpr int kMaxIntervalMs = 3'600'000;  // 1 h
inline constexpr int kMinTimeoutMs = 1;
inline constexpr int kMaxTimeoutMs = 60'000;
// The ICMP prober may rely on this many payload bytes for its matching nonce
// and send stamp (datagram ICMP sockets rewrite the echo id, so the payload
// is what tells our replies from others').
inline constexpr int kMinIcmpPayloadBytes = 16;
inline constexpr int kMaxIcmpPayloadBytes = 65'000;
// gRPC's default maximum message size. The agent's own limit
// (--max_message_bytes, 1 MiB by default) may be lower; larger probes then
// fail with RESOURCE_EXHAUSTED at run time, which is a probe result.
inline constexpr int kMaxGrpcPayloadBytes = 4 * 1024 * 1024;
inline constexpr int kMaxTargetNameLength = 64;
// Label bounds: they keep each target's series and the label set of the
// whole exposition small (every label multiplies nothing, but each distinct
// name is a column in every query of a fleet's Prometheus).
inline constexpr int kMaxLabelsPerTarget = 8;
inline constexpr int kMaxDistinctLabelNames = 32;
inline constexpr int kMaxLabelValueBytes = 128;
inline constexpr int kMaxSourceBytes = 128;
inline constexpr uint16_t kDefaultGrpcPort = 50051;
// Upper bound of the two count thresholds: keeps them in an int and keeps
// stale_after_intervals * interval a finite duration.
inline constexpr int kMaxThresholdCount = 1'000'000;

// ServerSettings is the validated, fully resolved configuration.
struct ServerSettings {
  // In order: the file's targets, the --target flags, then the discovered
  // ones. Names are unique.
  std::vector<TargetSpec> targets;
  // Why discovered targets were left out (one message each).
  std::vector<std::string> skipped;
  // Every field is set (defaults 5 / 3 / 3 applied).
  v1::StatusThresholds thresholds;
  // The file's `source`, validated; empty when unset (the server then uses
  // --source or the host name).
  std::string source;
};

// Checks a vantage-point name (--source, ServerConfig.source): non-empty, at
// most kMaxSourceBytes of valid UTF-8 without control characters. `what`
// names the flag or field in the error.
absl::Status ValidateSource(absl::string_view what, absl::string_view source);

// Parses one --target flag value: [NAME=]HOST[:GRPC_PORT]. HOST is a host
// name, an IPv4 address, an IPv6 address in brackets ("[::1]:50051",
// "[fe80::1]") or a bare IPv6 address without a port ("::1"; with two or
// more colons the whole value is the address). NAME defaults to HOST and is
// always set in the result; grpc_port is set only when given. Host and name
// syntax are checked here; errors read `--target "VALUE": ...`.
absl::StatusOr<v1::TargetConfig> ParseTargetFlag(absl::string_view flag);

// ParseTargetFlag for a value from elsewhere (a file_sd file): errors read
// `WHAT: ...`.
absl::StatusOr<v1::TargetConfig> ParseTargetAddress(absl::string_view value,
                                                    absl::string_view what);

// A host name per RFC 1123 (labels of 1-63 characters, 253 in all, an
// optional trailing dot), plus '_' (docker-compose service names use it,
// SRV names start with it, resolvers accept it).
bool IsHostName(absl::string_view host);

// A configuration file's contents; above 16 MiB is an error. Messages start
// with the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Protobuf's JSON parser error `message` for input `json` as
// " LINE:COLUMN: DESCRIPTION" where it gives a position (else " MESSAGE").
std::string JsonErrorMessage(const std::string& message,
                             absl::string_view json);

// Reads and parses a ServerConfig file: JSON (protobuf's JSON mapping) when
// the name ends in ".json" (any case), text proto otherwise (.textproto,
// .txtpb, .pbtxt, .cfg, ...). Unknown fields are errors. Messages start with
// the path; text-format errors carry "PATH:LINE:COLUMN: " and the parser's
// text, which names the field. Does not validate values: see BuildSettings.
absl::StatusOr<v1::ServerConfig> LoadConfigFile(const std::string& path);

// Merges the file's config with --target flag values and validates and
// resolves the result. A target's probe setting comes from, first to last:
// the target's own `probe` (file targets only), `flag_defaults` (the
// command line's global defaults, --interval and --timeout), the file's
// `defaults`, the built-in defaults (interval 1000 ms, timeout 1000 ms, ICMP
// payload 56, gRPC payload 0, unary, ICMP and gRPC on, any address family;
// gRPC port 50051). Thresholds default to 5 % / 3 / 3.
//
// Reports every problem at once, joined by "; ", each naming its field:
// `targets[2].probe.interval_ms: must be between 10 and 3600000, got 0`,
// `defaults.timeout_ms: ...`, `--timeout (in ms): ...` (a field set in
// flag_defaults is named as the flag `--FIELD`, without a `_ms` suffix,
// which the flag takes as a duration), `--target "a=": empty host`, `duplicate
// target name "x" (targets[0] and --target #2)` (flags are counted from 1).
//
// A timeout longer than the interval is allowed: probes are sent at a fixed
// rate and pending ones are matched by sequence, so they may overlap, and a
// long lossy path needs it to count late replies as received.
//
// `discovered` targets (file_sd) follow with the resolved defaults; each is
// validated on its own and one that fails (a bad label, a name already
// taken, a label name beyond the bound) is left out and explained in
// `skipped` instead of failing the configuration. With `file_sd` patterns
// in the config, no static target is needed.
absl::StatusOr<ServerSettings> BuildSettings(
    const v1::ServerConfig& config,
    const std::vector<std::string>& target_flags,
    const v1::ProbeSettings& flag_defaults = v1::ProbeSettings(),
    const std::vector<DiscoveredTarget>& discovered = {});

}  // namespace latency

#endif  // LATENCY_SERVER_CONFIG_CONFIG_H_
