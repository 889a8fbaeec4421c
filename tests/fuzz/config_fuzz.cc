// Fuzzes latency-server's configuration: LoadConfigFile (text proto and
// JSON, from a real file), ParseTargetFlag and ParseDnsSdFlag (each flag
// line is both), ParseFileSd (the text and JSON inputs are also read as
// YAML and JSON file_sd files), ParseSrvAnswer (mode 3's bytes are also a
// DNS answer) and BuildSettings.
// Checks:
//  - every error is INVALID_ARGUMENT with a non-empty message that names
//    its source (the file path, `--target "..."`);
//  - a file that loads reloads to the same message after printing it back
//    (text -> TextFormat -> text, JSON -> MessageToJsonString -> JSON);
//  - a flag that parses re-parses to the same TargetConfig when written
//    back as [NAME=]HOST[:PORT] (IPv6 in brackets);
//  - accepted settings are within every documented limit, with unique
//    names, one TargetSpec per file target and flag, thresholds all set;
//  - a discovered target is either in the settings or explained (once) in
//    `skipped`, never a failure of the configuration; every discovered
//    target names its file and element.
//
// Input: byte 0 picks the mode (0 text file, 1 JSON file, 2 flags, 3
// binary ServerConfig); the rest is the file, or flags one per line; modes
// 0, 1 and 3 also take --target flags after a line "--".
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/config.h"
#include "server/config/dns_sd.h"
#include "tests/fuzz/fuzz_proto.h"
#include "tests/fuzz/fuzz_util.h"

namespace latency {
namespace {

using ::latency::fuzz::Equal;

std::string* g_dir = nullptr;

std::string WriteFile(const std::string& name, absl::string_view contents) {
  std::string path = absl::StrCat(*g_dir, "/", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  return path;
}

void CheckError(const absl::Status& status, absl::string_view prefix) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument,
             status.ToString());
  FUZZ_CHECK(!status.message().empty(), "empty error message");
  FUZZ_CHECK(
      absl::StartsWith(status.message(), prefix),
      absl::StrCat("'", status.message(), "' lacks prefix '", prefix, "'"));
}

// Loads `contents` from a file of that kind and checks the round trip.
std::optional<v1::ServerConfig> Load(absl::string_view contents, bool json) {
  std::string name = json ? "config.JSON" : "config.textproto";
  std::string path = WriteFile(name, contents);
  absl::StatusOr<v1::ServerConfig> config = LoadConfigFile(path);
  if (!config.ok()) {
    CheckError(config.status(), path + ":");
    return std::nullopt;
  }
  std::string printed;
  if (json) {
    FUZZ_CHECK(
        google::protobuf::util::MessageToJsonString(*config, &printed).ok(),
        "cannot print JSON");
  } else {
    FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*config, &printed),
               "cannot print text");
  }
  std::string again_path =
      WriteFile(json ? "again.json" : "again.txtpb", printed);
  absl::StatusOr<v1::ServerConfig> again = LoadConfigFile(again_path);
  FUZZ_CHECK(again.ok(),
             absl::StrCat(again.status().ToString(), "\n---\n", printed));
  FUZZ_CHECK(Equal(*config, *again), printed);
  return *config;
}

std::string FormatFlag(const v1::TargetConfig& target) {
  std::string host = target.host();
  bool v6 = absl::StrContains(host, ':');
  std::string out = absl::StrCat(target.name(), "=");
  if (v6 && target.has_grpc_port()) {
    absl::StrAppend(&out, "[", host, "]:", target.grpc_port());
  } else {
    absl::StrAppend(&out, host);
    if (target.has_grpc_port()) absl::StrAppend(&out, ":", target.grpc_port());
  }
  return out;
}

void CheckFlag(const std::string& flag) {
  absl::StatusOr<v1::TargetConfig> target = ParseTargetFlag(flag);
  if (!target.ok()) {
    CheckError(target.status(), absl::StrCat("--target \"", flag, "\": "));
    return;
  }
  FUZZ_CHECK(!target->name().empty() && !target->host().empty(), flag);
  FUZZ_CHECK(!target->has_grpc_port() ||
                 (target->grpc_port() >= 1 && target->grpc_port() <= 65535),
             flag);
  std::string again_flag = FormatFlag(*target);
  absl::StatusOr<v1::TargetConfig> again = ParseTargetFlag(again_flag);
  FUZZ_CHECK(again.ok(), absl::StrCat(flag, " -> ", again_flag, ": ",
                                      again.status().ToString()));
  FUZZ_CHECK(Equal(*target, *again), flag + " -> " + again_flag);
}

// The same text as a --dns_sd value: parses and prints back to itself
// (type lower-cased), or is refused naming the flag.
void CheckDnsSdFlag(const std::string& flag) {
  absl::StatusOr<v1::DnsSdConfig> lookup = ParseDnsSdFlag(flag);
  if (!lookup.ok()) {
    CheckError(lookup.status(), absl::StrCat("--dns_sd \"", flag, "\": "));
    return;
  }
  FUZZ_CHECK(ValidateDnsSd("dns_sd", *lookup).ok(), flag);
  absl::StatusOr<v1::DnsSdConfig> again = ParseDnsSdFlag(DnsSdName(*lookup));
  FUZZ_CHECK(again.ok() && Equal(*lookup, *again),
             absl::StrCat(flag, " -> ", DnsSdName(*lookup)));
}

// The bytes as a DNS answer off the network: parsed or refused as
// DATA_LOSS, never read past; every record has a host without the root dot.
void CheckSrvAnswer(absl::string_view bytes) {
  absl::StatusOr<std::vector<SrvRecord>> records = ParseSrvAnswer(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  if (!records.ok()) {
    FUZZ_CHECK(records.status().code() == absl::StatusCode::kDataLoss,
               records.status().ToString());
    return;
  }
  for (const SrvRecord& record : *records) {
    FUZZ_CHECK(!record.host.empty() && record.host.back() != '.' &&
                   record.host.size() < 1025,
               record.host);
  }
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > static_cast<size_t>(kMaxTargetNameLength))
    return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != ':' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

void CheckSettings(const v1::ServerConfig& config,
                   const std::vector<std::string>& flags,
                   const v1::ProbeSettings& flag_defaults,
                   const std::vector<DiscoveredTarget>& discovered = {}) {
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(config, flags, flag_defaults, discovered);
  if (!settings.ok()) {
    CheckError(settings.status(), "");
    return;
  }
  FUZZ_CHECK(settings->skipped.size() <= discovered.size(), "skipped");
  FUZZ_CHECK(settings->targets.size() ==
                 static_cast<size_t>(config.targets_size()) + flags.size() +
                     discovered.size() - settings->skipped.size(),
             "one TargetSpec per target, discovered ones kept or skipped");
  for (const std::string& why : settings->skipped) {
    FUZZ_CHECK(absl::StartsWith(why, "fuzz.json: [") ||
                   absl::StartsWith(why, "fuzz.yaml: ["),
               why);
  }
  std::set<std::string> names;
  for (const TargetSpec& spec : settings->targets) {
    std::string what = absl::StrCat("target '", spec.name, "'");
    FUZZ_CHECK(names.insert(spec.name).second, "duplicate " + what);
    FUZZ_CHECK(ValidName(spec.name), what);
    FUZZ_CHECK(!spec.host.empty(), what);
    FUZZ_CHECK(spec.grpc_port >= 1, what);
    FUZZ_CHECK(spec.interval >= absl::Milliseconds(kMinIntervalMs) &&
                   spec.interval <= absl::Milliseconds(kMaxIntervalMs),
               what);
    FUZZ_CHECK(spec.timeout >= absl::Milliseconds(kMinTimeoutMs) &&
                   spec.timeout <= absl::Milliseconds(kMaxTimeoutMs),
               what);
    FUZZ_CHECK(spec.icmp_payload_bytes >= kMinIcmpPayloadBytes &&
                   spec.icmp_payload_bytes <= kMaxIcmpPayloadBytes,
               what);
    FUZZ_CHECK(spec.grpc_payload_bytes >= 0 &&
                   spec.grpc_payload_bytes <= kMaxGrpcPayloadBytes,
               what);
    FUZZ_CHECK(spec.icmp_enabled || spec.grpc_enabled, what);
  }
  const v1::StatusThresholds& t = settings->thresholds;
  FUZZ_CHECK(t.has_degraded_loss_percent() && t.has_down_after_failures() &&
                 t.has_stale_after_intervals(),
             t.ShortDebugString());
  FUZZ_CHECK(t.degraded_loss_percent() >= 0 && t.degraded_loss_percent() <= 100,
             t.ShortDebugString());
  FUZZ_CHECK(t.down_after_failures() >= 1 &&
                 t.down_after_failures() <= kMaxThresholdCount,
             t.ShortDebugString());
  FUZZ_CHECK(t.stale_after_intervals() >= 1 &&
                 t.stale_after_intervals() <= kMaxThresholdCount,
             t.ShortDebugString());
}

// The same input as a file_sd file `path`: parsed whole or refused naming
// the file, then added to a config that has only the --target flags.
void CheckFileSd(const std::string& path, absl::string_view text,
                 const std::vector<std::string>& flags) {
  absl::StatusOr<std::vector<DiscoveredTarget>> discovered =
      ParseFileSd(path, text);
  if (!discovered.ok()) {
    CheckError(discovered.status(), path + ":");
    return;
  }
  for (const DiscoveredTarget& found : *discovered) {
    FUZZ_CHECK(absl::StartsWith(found.origin, path + ": ["), found.origin);
    FUZZ_CHECK(!found.target.host().empty() && ValidName(found.target.name()),
               found.origin);
    for (const auto& [name, value] : found.target.labels()) {
      FUZZ_CHECK(!absl::StartsWith(name, "__"), found.origin);
    }
  }
  v1::ServerConfig config;
  config.add_file_sd(path);
  CheckSettings(config, flags, v1::ProbeSettings(), *discovered);
}

std::vector<std::string> SplitFlags(absl::string_view text) {
  std::vector<std::string> flags;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (flags.size() == 8) break;
    flags.emplace_back(line);
  }
  return flags;
}

}  // namespace
}  // namespace latency

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/config_fuzz.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  latency::g_dir = new std::string(dir);
  std::atexit([] {
    for (const char* name :
         {"config.JSON", "config.textproto", "again.json", "again.txtpb"}) {
      unlink(absl::StrCat(*latency::g_dir, "/", name).c_str());
    }
    rmdir(latency::g_dir->c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0] % 4;
  absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Modes with a file: "FILE\n--\nFLAG\nFLAG...".
  absl::string_view file = rest;
  std::vector<std::string> flags;
  if (mode != 2) {
    size_t split = rest.find("\n--\n");
    if (split != absl::string_view::npos) {
      file = rest.substr(0, split);
      flags = latency::SplitFlags(rest.substr(split + 4));
    }
  } else {
    flags = latency::SplitFlags(rest);
  }
  for (const std::string& flag : flags) {
    latency::CheckFlag(flag);
    latency::CheckDnsSdFlag(flag);
  }
  if (mode == 0) latency::CheckFileSd("fuzz.yaml", file, flags);
  if (mode == 1) latency::CheckFileSd("fuzz.json", file, flags);

  latency::v1::ServerConfig config;
  if (mode == 0 || mode == 1) {
    std::optional<latency::v1::ServerConfig> loaded =
        latency::Load(file, mode == 1);
    if (!loaded) return 0;
    config = *loaded;
  } else if (mode == 3) {
    latency::CheckSrvAnswer(file);
    if (!config.ParseFromArray(file.data(), static_cast<int>(file.size())))
      return 0;
  }
  // The first target's probe settings double as command-line defaults.
  latency::v1::ProbeSettings flag_defaults;
  if (config.targets_size() > 0 && (data[0] & 0x80) != 0) {
    flag_defaults = config.targets(0).probe();
  }
  latency::CheckSettings(config, flags, flag_defaults);
  return 0;
}
