#include "server/target_sources.h"

#include <utility>

#include "common/logging.h"
#include "google/protobuf/util/message_differencer.h"

namespace latency {
namespace {

bool SameLookups(const std::vector<v1::DnsSdConfig>& a,
                 const google::protobuf::RepeatedPtrField<v1::DnsSdConfig>& b) {
  if (a.size() != static_cast<size_t>(b.size())) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!google::protobuf::util::MessageDifferencer::Equals(a[i], b[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

TargetSources::TargetSources(ConfigLoader load, OptionsBuilder build,
                             FileSdSource* files, DnsResolver* dns)
    : load_(std::move(load)),
      build_(std::move(build)),
      files_(files),
      dns_(dns),
      log_(Logger("server")) {}

absl::Status TargetSources::ReadAllLocked() {
  absl::StatusOr<v1::ServerConfig> config = load_();
  if (!config.ok()) return config.status();
  config_ = *std::move(config);
  RefreshFilesLocked();
  RefreshDnsLocked();
  return absl::OkStatus();
}

absl::StatusOr<ServerOptions> TargetSources::Load() {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = ReadAllLocked(); !status.ok()) return status;
  return BuildLocked();
}

void TargetSources::Reload(const Applier& apply) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = ReadAllLocked(); !status.ok()) {
    log_->error("configuration reload failed, keeping the running one: {}",
                status.message());
    return;
  }
  ApplyLocked(apply);
}

void TargetSources::RefreshFiles(const Applier& apply) {
  absl::MutexLock lock(&mu_);
  if (RefreshFilesLocked()) ApplyLocked(apply);
}

void TargetSources::RefreshDns(const Applier& apply) {
  absl::MutexLock lock(&mu_);
  if (RefreshDnsLocked()) ApplyLocked(apply);
}

bool TargetSources::RefreshFilesLocked() {
  std::vector<std::string> patterns(config_.file_sd().begin(),
                                    config_.file_sd().end());
  if (!file_discovery_.has_value() || file_discovery_->patterns() != patterns) {
    file_discovery_.emplace(patterns, files_);
  }
  if (patterns.empty()) {
    bool changed = !from_files_.empty();
    from_files_.clear();
    return changed;
  }
  FileDiscovery::Result result = file_discovery_->Refresh();
  LogErrorsLocked("file_sd: ", result.errors, &file_errors_);
  if (!result.changed) return false;
  log_->info("file_sd: {} targets from {} files", result.targets.size(),
             result.files);
  from_files_ = std::move(result.targets);
  return true;
}

bool TargetSources::RefreshDnsLocked() {
  if (!dns_discovery_.has_value() ||
      !SameLookups(dns_discovery_->lookups(), config_.dns_sd())) {
    dns_discovery_.emplace(
        std::vector<v1::DnsSdConfig>(config_.dns_sd().begin(),
                                     config_.dns_sd().end()),
        dns_);
  }
  if (config_.dns_sd().empty()) {
    bool changed = !from_dns_.empty();
    from_dns_.clear();
    return changed;
  }
  DnsDiscovery::Result result = dns_discovery_->Refresh();
  LogErrorsLocked("", result.errors, &dns_errors_);
  if (!result.changed) return false;
  log_->info("dns_sd: {} targets from {} lookups", result.targets.size(),
             config_.dns_sd_size());
  from_dns_ = std::move(result.targets);
  return true;
}

void TargetSources::LogErrorsLocked(absl::string_view prefix,
                                    const std::vector<std::string>& errors,
                                    std::vector<std::string>* last) {
  if (errors == *last) return;
  for (const std::string& error : errors) log_->error("{}{}", prefix, error);
  *last = errors;
}

absl::StatusOr<ServerOptions> TargetSources::BuildLocked() {
  std::vector<DiscoveredTarget> discovered = from_files_;
  discovered.insert(discovered.end(), from_dns_.begin(), from_dns_.end());
  return build_(config_, discovered);
}

void TargetSources::ApplyLocked(const Applier& apply) {
  absl::StatusOr<ServerOptions> options = BuildLocked();
  absl::Status status = options.status();
  if (options.ok()) status = apply(*options);
  if (!status.ok()) {
    log_->error("configuration reload failed, keeping the running one: {}",
                status.message());
  }
}

}  // namespace latency
