#ifndef LATENCY_SERVER_TARGET_SOURCES_H_
#define LATENCY_SERVER_TARGET_SOURCES_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "latency/v1/config.pb.h"
#include "server/config/dns_sd.h"
#include "server/config/file_sd.h"
#include "server/server_app.h"
#include "spdlog/logger.h"

namespace latency {

// Where latency-server's targets come from: the configuration (file and
// flags), the file_sd files and the dns_sd lookups it names. SIGHUP
// (Reload) reads all three again; each discovery's timer re-reads its own
// and, when its targets changed, applies them with the configuration last
// loaded. Either way only new, changed and removed targets start or stop
// (ServerApp::ReloadTargets). A bad configuration or a failing discovery
// never takes running targets away: the last good ones stay.
//
// Thread-safe. One lock serialises everything, DNS lookups included: a
// lookup that times out delays the other refreshes and a SIGHUP, never a
// probe.
class TargetSources {
 public:
  // Reads the configuration (the --config file and the flags that add to it).
  using ConfigLoader = std::function<absl::StatusOr<v1::ServerConfig>()>;
  // Builds the server's options from a configuration and what was discovered.
  using OptionsBuilder = std::function<absl::StatusOr<ServerOptions>(
      const v1::ServerConfig&, const std::vector<DiscoveredTarget>&)>;
  // Applies new options in place (ServerApp::ReloadTargets).
  using Applier = std::function<absl::Status(const ServerOptions&)>;

  TargetSources(ConfigLoader load, OptionsBuilder build, FileSdSource* files,
                DnsResolver* dns);

  // At start: the configuration and every target it discovers.
  absl::StatusOr<ServerOptions> Load();
  // SIGHUP: a bad configuration changes nothing and says why.
  void Reload(const Applier& apply);
  // The timers: look again; apply only if the targets changed.
  void RefreshFiles(const Applier& apply);
  void RefreshDns(const Applier& apply);

 private:
  // The configuration, then every discovery it names (Load and Reload).
  absl::Status ReadAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Each is true when its discovered targets changed. Errors are logged
  // when they change, not at every refresh.
  bool RefreshFilesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RefreshDnsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ServerOptions> BuildLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyLocked(const Applier& apply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DNS errors name their lookup; file errors get `prefix` "file_sd: ".
  void LogErrorsLocked(absl::string_view prefix,
                       const std::vector<std::string>& errors,
                       std::vector<std::string>* last)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConfigLoader load_;
  const OptionsBuilder build_;
  FileSdSource* const files_;
  DnsResolver* const dns_;
  std::shared_ptr<spdlog::logger> log_;
  absl::Mutex mu_;
  v1::ServerConfig config_ ABSL_GUARDED_BY(mu_);
  std::optional<FileDiscovery> file_discovery_ ABSL_GUARDED_BY(mu_);
  std::optional<DnsDiscovery> dns_discovery_ ABSL_GUARDED_BY(mu_);
  std::vector<DiscoveredTarget> from_files_ ABSL_GUARDED_BY(mu_);
  std::vector<DiscoveredTarget> from_dns_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> file_errors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> dns_errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace latency

#endif  // LATENCY_SERVER_TARGET_SOURCES_H_
