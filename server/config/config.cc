#include "server/config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/utf8.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/dns_sd.h"

namespace latency {
namespace {

constexpr size_t kMaxConfigFileBytes = 16 << 20;
constexpr int kMaxPort = 65535;

// Errors collects every validation problem so one start-up shows them all.
class Errors {
 public:
  void Add(absl::string_view path, absl::string_view message) {
    messages_.push_back(absl::StrCat(path, ": ", message));
  }
  void AddRaw(absl::string_view message) { messages_.emplace_back(message); }
  bool empty() const { return messages_.empty(); }
  absl::Status ToStatus() const {
    if (messages_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(messages_, "; "));
  }

 private:
  std::vector<std::string> messages_;
};

// "defaults" + "interval_ms" -> "defaults.interval_ms"; a field of the
// flag defaults (empty prefix) is named as the flag that exists,
// "--interval (in ms)" (the flag takes a duration such as 500ms).
std::string FieldPath(absl::string_view prefix, absl::string_view field) {
  if (prefix.empty()) {
    if (absl::ConsumeSuffix(&field, "_ms")) {
      return absl::StrCat("--", field, " (in ms)");
    }
    return absl::StrCat("--", field);
  }
  return absl::StrCat(prefix, ".", field);
}

void CheckRange(absl::string_view path, uint64_t value, uint64_t min,
                uint64_t max, absl::string_view why, Errors* errors) {
  if (value < min || value > max) {
    errors->Add(path, absl::StrCat("must be between ", min, " and ", max, why,
                                   ", got ", value));
  }
}

enum class HostKind { kInvalid, kName, kIpv4, kIpv6 };

bool IsZoneChar(char c) {
  return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
}

}  // namespace

bool IsHostName(absl::string_view host) {
  if (absl::EndsWith(host, ".")) host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

namespace {

// Syntax only: literal addresses via inet_pton, names by charset. An IPv6
// address may carry a zone ("fe80::1%eth0").
HostKind ClassifyHost(absl::string_view host) {
  if (absl::StrContains(host, ':')) {
    std::vector<absl::string_view> parts =
        absl::StrSplit(host, absl::MaxSplits('%', 1));
    if (parts.size() == 2 &&
        (parts[1].empty() ||
         !std::all_of(parts[1].begin(), parts[1].end(), IsZoneChar))) {
      return HostKind::kInvalid;
    }
    in6_addr addr6;
    return inet_pton(AF_INET6, std::string(parts[0]).c_str(), &addr6) == 1
               ? HostKind::kIpv6
               : HostKind::kInvalid;
  }
  if (!host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return absl::ascii_isdigit(c) || c == '.';
      })) {
    in_addr addr4;
    return inet_pton(AF_INET, std::string(host).c_str(), &addr4) == 1
               ? HostKind::kIpv4
               : HostKind::kInvalid;
  }
  return IsHostName(host) ? HostKind::kName : HostKind::kInvalid;
}

std::string InvalidHostMessage(absl::string_view host) {
  std::string message =
      absl::StrCat("\"", host, "\" is not a valid host name or IP address");
  if (absl::StartsWith(host, "[")) {
    absl::StrAppend(&message, " (write IPv6 addresses without brackets)");
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    absl::StrAppend(&message, " (put the port in grpc_port)");
  }
  return message;
}

// A target name is a Prometheus label value and a URL path segment of the
// HTTP gateway (/v1/targets/NAME), and it is typed in CLI commands and
// PromQL selectors: so no '/', '?', '#', '%', quotes or spaces, nothing that
// needs escaping anywhere. ':' is allowed so that IPv6 hosts can serve as
// default names. The length bound keeps tables and labels readable.
bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxTargetNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != ':' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

std::string InvalidNameMessage(absl::string_view name, bool from_host) {
  return absl::StrCat(
      "\"", name, "\"", from_host ? " (defaulted from host)" : "",
      " must be 1 to ", kMaxTargetNameLength,
      " characters from [A-Za-z0-9_.:-]", from_host ? "; set a name" : "");
}

// Checks the fields `settings` sets, naming them under `prefix`.
void ValidateProbeSettings(const v1::ProbeSettings& settings,
                           absl::string_view prefix, Errors* errors) {
  if (settings.has_interval_ms()) {
    CheckRange(FieldPath(prefix, "interval_ms"), settings.interval_ms(),
               kMinIntervalMs, kMaxIntervalMs, "", errors);
  }
  if (settings.has_timeout_ms()) {
    CheckRange(FieldPath(prefix, "timeout_ms"), settings.timeout_ms(),
               kMinTimeoutMs, kMaxTimeoutMs, "", errors);
  }
  if (settings.has_icmp_payload_bytes()) {
    CheckRange(FieldPath(prefix, "icmp_payload_bytes"),
               settings.icmp_payload_bytes(), kMinIcmpPayloadBytes,
               kMaxIcmpPayloadBytes,
               absl::StrCat(" (the ICMP prober needs ", kMinIcmpPayloadBytes,
                            " bytes for its nonce and send time)"),
               errors);
  }
  if (settings.has_grpc_payload_bytes()) {
    CheckRange(FieldPath(prefix, "grpc_payload_bytes"),
               settings.grpc_payload_bytes(), 0, kMaxGrpcPayloadBytes, "",
               errors);
  }
  if (!v1::GrpcMode_IsValid(settings.grpc_mode())) {
    errors->Add(FieldPath(prefix, "grpc_mode"),
                absl::StrCat("unknown value ", settings.grpc_mode()));
  }
  if (!v1::AddressFamily_IsValid(settings.address_family())) {
    errors->Add(FieldPath(prefix, "address_family"),
                absl::StrCat("unknown value ", settings.address_family()));
  }
}

v1::ProbeSettings BuiltInProbeDefaults() {
  v1::ProbeSettings settings;
  settings.set_interval_ms(1000);
  settings.set_timeout_ms(1000);
  settings.set_icmp_payload_bytes(56);
  settings.set_grpc_payload_bytes(0);
  settings.set_grpc_mode(v1::GRPC_MODE_UNARY);
  settings.set_icmp_enabled(true);
  settings.set_grpc_enabled(true);
  settings.set_address_family(v1::ADDRESS_FAMILY_UNSPECIFIED);
  return settings;
}

v1::StatusThresholds ResolveThresholds(const v1::StatusThresholds& given,
                                       Errors* errors) {
  v1::StatusThresholds resolved;
  resolved.set_degraded_loss_percent(5);
  resolved.set_down_after_failures(3);
  resolved.set_stale_after_intervals(3);
  resolved.MergeFrom(given);  // copies exactly the fields `given` sets
  double loss = resolved.degraded_loss_percent();
  if (!(loss >= 0 && loss <= 100)) {  // also rejects NaN
    errors->Add("thresholds.degraded_loss_percent",
                absl::StrCat("must be between 0 and 100, got ", loss));
  }
  CheckRange("thresholds.down_after_failures", resolved.down_after_failures(),
             1, kMaxThresholdCount, "", errors);
  CheckRange("thresholds.stale_after_intervals",
             resolved.stale_after_intervals(), 1, kMaxThresholdCount, "",
             errors);
  return resolved;
}

// Checks that need the resolved settings of one target, named `label`.
void ValidateResolved(absl::string_view label, const v1::TargetConfig& target,
                      const v1::ProbeSettings& resolved, Errors* errors) {
  if (!resolved.icmp_enabled() && !resolved.grpc_enabled()) {
    errors->Add(label, "icmp_enabled and grpc_enabled are both false");
  }
  HostKind kind = ClassifyHost(target.host());
  v1::AddressFamily family = resolved.address_family();
  if ((kind == HostKind::kIpv6 && family == v1::ADDRESS_FAMILY_IPV4) ||
      (kind == HostKind::kIpv4 && family == v1::ADDRESS_FAMILY_IPV6)) {
    errors->Add(label, absl::StrCat("host \"", target.host(), "\" is an ",
                                    kind == HostKind::kIpv6 ? "IPv6" : "IPv4",
                                    " address but address_family is ",
                                    v1::AddressFamily_Name(family)));
  }
}

// Labels the server sets itself, and those Prometheus attaches on scrape.
constexpr absl::string_view kReservedLabels[] = {
    "target", "kind", "source", "le", "result", "status", "job", "instance"};

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

bool HasControlCharacter(absl::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

void ValidateLabels(const std::string& label, const v1::TargetConfig& target,
                    std::map<std::string, std::string>* first_use,
                    Errors* errors) {
  if (target.labels_size() > kMaxLabelsPerTarget) {
    errors->Add(FieldPath(label, "labels"),
                absl::StrCat("at most ", kMaxLabelsPerTarget,
                             " labels per target, got ", target.labels_size()));
  }
  // Sorted, so the messages come out in a stable order.
  std::map<std::string, std::string> sorted(target.labels().begin(),
                                            target.labels().end());
  for (const auto& [name, value] : sorted) {
    const std::string field =
        FieldPath(label, absl::StrCat("labels[\"", name, "\"]"));
    if (!IsValidLabelName(name)) {
      errors->Add(field, "label names match [a-zA-Z_][a-zA-Z0-9_]*");
    } else if (absl::StartsWith(name, "__")) {
      errors->Add(field, "names starting with \"__\" are Prometheus' own");
    } else if (std::find(std::begin(kReservedLabels), std::end(kReservedLabels),
                         name) != std::end(kReservedLabels)) {
      errors->Add(field, absl::StrCat("\"", name,
                                      "\" is set by the server or Prometheus; "
                                      "pick another name"));
    }
    if (value.size() > static_cast<size_t>(kMaxLabelValueBytes)) {
      errors->Add(field, absl::StrCat("value longer than ", kMaxLabelValueBytes,
                                      " bytes (", value.size(), ")"));
    } else if (!IsValidUtf8(value) || HasControlCharacter(value)) {
      errors->Add(field, "value must be UTF-8 without control characters");
    }
    first_use->emplace(name, label);
  }
}

TargetSpec ToSpec(const v1::TargetConfig& target,
                  const v1::ProbeSettings& resolved) {
  TargetSpec spec;
  spec.name = target.name().empty() ? target.host() : target.name();
  spec.host = target.host();
  spec.grpc_port = target.has_grpc_port()
                       ? static_cast<uint16_t>(target.grpc_port())
                       : kDefaultGrpcPort;
  spec.interval = absl::Milliseconds(resolved.interval_ms());
  spec.timeout = absl::Milliseconds(resolved.timeout_ms());
  spec.icmp_payload_bytes = static_cast<int>(resolved.icmp_payload_bytes());
  spec.grpc_payload_bytes = static_cast<int>(resolved.grpc_payload_bytes());
  spec.grpc_mode = resolved.grpc_mode() == v1::GRPC_MODE_STREAM
                       ? GrpcProbeMode::kStream
                       : GrpcProbeMode::kUnary;
  spec.icmp_enabled = resolved.icmp_enabled();
  spec.grpc_enabled = resolved.grpc_enabled();
  switch (resolved.address_family()) {
    case v1::ADDRESS_FAMILY_IPV4:
      spec.family = AddressFamily::kIpv4;
      break;
    case v1::ADDRESS_FAMILY_IPV6:
      spec.family = AddressFamily::kIpv6;
      break;
    default:
      spec.family = AddressFamily::kAny;
      break;
  }
  spec.labels.insert(target.labels().begin(), target.labels().end());
  return spec;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, path + ": cannot open");
  std::string contents;
  char buffer[1 << 14];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = absl::ErrnoToStatus(errno, path + ": cannot read");
      close(fd);
      return status;
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
    if (contents.size() > kMaxConfigFileBytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxConfigFileBytes, " bytes"));
    }
  }
  close(fd);
  return contents;
}

namespace {

// Keeps the text parser's errors as "LINE:COLUMN: message", 1-based.
class TextErrorCollector final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(line + 1, ":", column + 1, ": ", message));
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

// Protobuf's JSON parser reports a syntax error as "DESCRIPTION\nSNIPPET\n
// <spaces>^" (the snippet is the input around the error, which may span
// lines, and the caret's indent is the error's offset into it). This turns
// it into "LINE:COLUMN: DESCRIPTION" like the text parser's errors. Other
// errors are one line that already names the field, e.g.
// "(targets[0]) bogus: Cannot find field.".
std::string JsonErrorMessage(const std::string& message,
                             absl::string_view json) {
  size_t first_newline = message.find('\n');
  size_t last_newline = message.rfind('\n');
  if (first_newline == std::string::npos || first_newline == last_newline ||
      !absl::EndsWith(message, "^")) {
    return absl::StrCat(" ", message);
  }
  absl::string_view description(message.data(), first_newline);
  absl::string_view snippet(message.data() + first_newline + 1,
                            last_newline - first_newline - 1);
  size_t caret = message.size() - last_newline - 2;
  size_t begin = json.find(snippet);
  if (begin == absl::string_view::npos || caret > snippet.size() ||
      json.find(snippet, begin + 1) != absl::string_view::npos) {
    return absl::StrCat(" ", description);
  }
  absl::string_view before = json.substr(0, begin + caret);
  size_t line_start = before.rfind('\n');
  size_t column = line_start == absl::string_view::npos
                      ? before.size() + 1
                      : before.size() - line_start;
  return absl::StrCat(std::count(before.begin(), before.end(), '\n') + 1, ":",
                      column, ": ", description);
}

absl::StatusOr<v1::TargetConfig> ParseTargetFlag(absl::string_view flag) {
  return ParseTargetAddress(flag, absl::StrCat("--target \"", flag, "\""));
}

absl::StatusOr<v1::TargetConfig> ParseTargetAddress(absl::string_view flag,
                                                    absl::string_view what) {
  auto error = [what](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", message));
  };
  absl::string_view name;
  absl::string_view rest = flag;
  if (size_t eq = flag.find('='); eq != absl::string_view::npos) {
    name = flag.substr(0, eq);
    rest = flag.substr(eq + 1);
    if (name.empty()) return error("empty name before '='");
  }
  absl::string_view host = rest;
  absl::string_view port;
  bool has_port = false;
  if (absl::ConsumePrefix(&rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return error("missing ']' after the IPv6 address");
    }
    host = rest.substr(0, close);
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (!absl::ConsumePrefix(&rest, ":")) {
        return error("want [IPV6]:PORT after ']'");
      }
      port = rest;
      has_port = true;
    }
    if (!host.empty() && ClassifyHost(host) != HostKind::kIpv6) {
      return error(
          absl::StrCat("\"", host, "\" in brackets is not an IPv6 address"));
    }
  } else if (std::count(rest.begin(), rest.end(), ':') == 1) {
    size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    has_port = true;
  }
  if (host.empty()) return error("empty host");
  if (ClassifyHost(host) == HostKind::kInvalid) {
    std::string message = InvalidHostMessage(host);
    if (absl::StrContains(host, ':')) {
      absl::StrAppend(&message, " (an IPv6 address with a port: [ADDR]:PORT)");
    }
    return error(message);
  }
  v1::TargetConfig target;
  if (has_port) {
    if (port.empty()) return error("empty grpc port after ':'");
    if (!std::all_of(port.begin(), port.end(), absl::ascii_isdigit)) {
      return error(absl::StrCat("grpc port \"", port, "\" is not a number"));
    }
    uint32_t value = 0;
    if (!absl::SimpleAtoi(port, &value) || value < 1 || value > kMaxPort) {
      return error(absl::StrCat("grpc port must be between 1 and ", kMaxPort,
                                ", got ", port));
    }
    target.set_grpc_port(value);
  }
  bool name_from_host = name.empty();
  if (name_from_host) name = host;
  if (!IsValidName(name)) {
    return error(InvalidNameMessage(name, name_from_host));
  }
  target.set_name(std::string(name));
  target.set_host(std::string(host));
  return target;
}

absl::StatusOr<v1::ServerConfig> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) return contents.status();
  v1::ServerConfig config;
  if (absl::EndsWithIgnoreCase(path, ".json")) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    google::protobuf::util::Status status =
        google::protobuf::util::JsonStringToMessage(*contents, &config,
                                                    options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", JsonErrorMessage(status.message().ToString(), *contents)));
    }
    return config;
  }
  TextErrorCollector collector;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(*contents, &config)) {
    std::vector<std::string> errors = collector.errors();
    if (errors.empty()) errors.push_back("cannot parse as text proto");
    for (std::string& error : errors) error = absl::StrCat(path, ":", error);
    return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  }
  return config;
}

absl::Status ValidateSource(absl::string_view what, absl::string_view source) {
  if (source.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty"));
  }
  if (source.size() > static_cast<size_t>(kMaxSourceBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": longer than ",
                                                   kMaxSourceBytes, " bytes (",
                                                   source.size(), ")"));
  }
  if (!IsValidUtf8(source) || HasControlCharacter(source)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": must be UTF-8 without control characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerSettings> BuildSettings(
    const v1::ServerConfig& config,
    const std::vector<std::string>& target_flags,
    const v1::ProbeSettings& flag_defaults,
    const std::vector<DiscoveredTarget>& discovered) {
  Errors errors;
  ValidateProbeSettings(config.defaults(), "defaults", &errors);
  ValidateProbeSettings(flag_defaults, "", &errors);
  v1::ProbeSettings base = BuiltInProbeDefaults();
  // MergeFrom copies exactly the fields the source sets (proto3 `optional`
  // presence; non-zero enums), which is how settings inherit.
  base.MergeFrom(config.defaults());
  base.MergeFrom(flag_defaults);

  ServerSettings settings;
  settings.thresholds = ResolveThresholds(config.thresholds(), &errors);
  if (!config.source().empty()) {
    absl::Status source = ValidateSource("source", config.source());
    if (!source.ok()) errors.AddRaw(source.message());
    settings.source = config.source();
  }
  std::map<std::string, std::string> label_first_use;

  if (config.targets().empty() && target_flags.empty() &&
      config.file_sd().empty() && config.dns_sd().empty()) {
    errors.Add("targets",
               "no targets configured; add targets to the config file, pass "
               "--target or discover them with --file_sd or --dns_sd");
  }
  for (int i = 0; i < config.dns_sd_size(); ++i) {
    absl::Status lookup =
        ValidateDnsSd(absl::StrCat("dns_sd[", i, "]"), config.dns_sd(i));
    if (!lookup.ok()) errors.AddRaw(lookup.message());
  }
  std::map<std::string, std::string> label_by_name;
  auto add_target = [&](const std::string& label,
                        const v1::TargetConfig& target,
                        const v1::ProbeSettings& resolved) {
    std::string name = target.name().empty() ? target.host() : target.name();
    auto [it, inserted] = label_by_name.emplace(name, label);
    if (!inserted) {
      errors.AddRaw(absl::StrCat("duplicate target name \"", name, "\" (",
                                 it->second, " and ", label, ")"));
    }
    settings.targets.push_back(ToSpec(target, resolved));
  };

  for (int i = 0; i < config.targets_size(); ++i) {
    const v1::TargetConfig& target = config.targets(i);
    std::string label = absl::StrCat("targets[", i, "]");
    if (target.host().empty()) {
      errors.Add(FieldPath(label, "host"), "empty host (required)");
      continue;
    }
    HostKind kind = ClassifyHost(target.host());
    if (kind == HostKind::kInvalid) {
      errors.Add(FieldPath(label, "host"), InvalidHostMessage(target.host()));
    }
    absl::string_view name =
        target.name().empty() ? target.host() : target.name();
    if (!IsValidName(name)) {
      errors.Add(FieldPath(label, "name"),
                 InvalidNameMessage(name, target.name().empty()));
    }
    if (target.has_grpc_port()) {
      CheckRange(FieldPath(label, "grpc_port"), target.grpc_port(), 1, kMaxPort,
                 "", &errors);
    }
    ValidateProbeSettings(target.probe(), FieldPath(label, "probe"), &errors);
    ValidateLabels(label, target, &label_first_use, &errors);
    v1::ProbeSettings resolved = base;
    resolved.MergeFrom(target.probe());
    ValidateResolved(FieldPath(label, "probe"), target, resolved, &errors);
    add_target(label, target, resolved);
  }
  for (size_t i = 0; i < target_flags.size(); ++i) {
    absl::StatusOr<v1::TargetConfig> target = ParseTargetFlag(target_flags[i]);
    if (!target.ok()) {
      errors.AddRaw(target.status().message());
      continue;
    }
    std::string label = absl::StrCat("--target #", i + 1);
    ValidateResolved(absl::StrCat(label, " \"", target_flags[i], "\""), *target,
                     base, &errors);
    add_target(label, *target, base);
  }
  if (label_first_use.size() > static_cast<size_t>(kMaxDistinctLabelNames)) {
    errors.Add("labels", absl::StrCat("at most ", kMaxDistinctLabelNames,
                                      " distinct label names over all "
                                      "targets, got ",
                                      label_first_use.size()));
  }
  if (!errors.empty()) return errors.ToStatus();

  // Discovered targets come last and never fail the configuration: one
  // that is invalid, takes a name already in use or brings a label name
  // beyond the bound is skipped, and `skipped` says why.
  for (const DiscoveredTarget& found : discovered) {
    Errors problems;
    const std::string name =
        found.target.name().empty() ? found.target.host() : found.target.name();
    // file_sd checked these as it parsed; DNS answers are checked here.
    if (ClassifyHost(found.target.host()) == HostKind::kInvalid) {
      problems.Add(found.origin, InvalidHostMessage(found.target.host()));
    } else if (!IsValidName(name)) {
      problems.Add(found.origin,
                   InvalidNameMessage(name, found.target.name().empty()));
    }
    std::map<std::string, std::string> label_use = label_first_use;
    ValidateLabels(found.origin, found.target, &label_use, &problems);
    ValidateResolved(found.origin, found.target, base, &problems);
    if (auto it = label_by_name.find(name); it != label_by_name.end()) {
      problems.AddRaw(absl::StrCat(found.origin, ": target name \"", name,
                                   "\" is taken by ", it->second));
    }
    if (label_use.size() > static_cast<size_t>(kMaxDistinctLabelNames)) {
      problems.AddRaw(absl::StrCat(
          found.origin, ": its labels would make ", label_use.size(),
          " distinct label names (at most ", kMaxDistinctLabelNames, ")"));
    }
    if (!problems.empty()) {
      settings.skipped.emplace_back(problems.ToStatus().message());
      continue;
    }
    label_first_use = std::move(label_use);
    label_by_name.emplace(name, found.origin);
    settings.targets.push_back(ToSpec(found.target, base));
  }
  return settings;
}

}  // namespace latency
