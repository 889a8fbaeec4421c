#ifndef LATENCY_SERVER_CONFIG_FILE_SD_H_
#define LATENCY_SERVER_CONFIG_FILE_SD_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "latency/v1/config.pb.h"

// Target discovery from files in Prometheus' file_sd format, so whatever
// already writes target files for Prometheus (Consul-template, Ansible, a
// Kubernetes ConfigMap, Terraform) can feed latency-server too:
//
//   [{"targets": ["web-1:50051", "db=10.0.0.7"], "labels": {"az": "b"}}]
//
// or the same in YAML (.yml, .yaml), as Prometheus reads them.
// A file is applied whole or not at all, as Prometheus does: one that cannot
// be read or parsed keeps its last good targets. What a target may be (its
// name, labels, uniqueness) is checked with the rest of the configuration
// by BuildSettings, which skips a bad discovered target and says why.

namespace latency {

// One target read from a file, and where it came from, for messages:
// `/etc/t.json: [0].targets[2] "web-1:50051"`.
struct DiscoveredTarget {
  v1::TargetConfig target;
  std::string origin;
};

// Parses one file_sd file: YAML when `path` ends in .yml or .yaml, else
// JSON; a list of groups, each with "targets" (a list of
// "[NAME=]HOST[:PORT]" strings, as --target takes them) and optional
// "labels" (string values). Labels named "__..." are Prometheus' meta
// labels and dropped. Any other key, a wrong type or a target that is not
// HOST[:PORT] fails the whole file with a message naming `path` and the
// element; an empty YAML file is an empty list.
absl::StatusOr<std::vector<DiscoveredTarget>> ParseFileSd(
    absl::string_view path, absl::string_view text);

// The file system as discovery sees it (an interface, so tests need no
// files and no clock).
class FileSdSource {
 public:
  virtual ~FileSdSource() = default;
  // Paths matching `pattern` (glob(3)), sorted; none is not an error.
  virtual absl::StatusOr<std::vector<std::string>> Glob(
      const std::string& pattern) = 0;
  virtual absl::StatusOr<std::string> Read(const std::string& path) = 0;
};

// The real file system; files above 16 MiB are refused.
FileSdSource& RealFileSdSource();

// Reads every file the patterns match and keeps the last good content of
// each. Not thread-safe: one caller refreshes.
class FileDiscovery {
 public:
  FileDiscovery(std::vector<std::string> patterns, FileSdSource* files);

  struct Result {
    // The targets differ from the previous Refresh's (always true first).
    bool changed = false;
    // Every file's targets, files in path order, each file's in its order.
    std::vector<DiscoveredTarget> targets;
    // Files matched that could not be read or parsed (their last good
    // targets are kept in `targets`), and patterns that failed.
    std::vector<std::string> errors;
    int files = 0;  // files contributing targets
  };
  Result Refresh();

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct GoodFile {
    std::string text;
    std::vector<DiscoveredTarget> targets;
  };
  std::vector<std::string> patterns_;
  FileSdSource* files_;
  std::map<std::string, GoodFile> good_;
  bool refreshed_ = false;
};

}  // namespace latency

#endif  // LATENCY_SERVER_CONFIG_FILE_SD_H_
