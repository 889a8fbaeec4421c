#include "server/config/file_sd.h"

#include <glob.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/config.h"

namespace latency {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Value;

class RealFiles final : public FileSdSource {
 public:
  absl::StatusOr<std::vector<std::string>> Glob(
      const std::string& pattern) override {
    glob_t matches{};
    int rc = glob(pattern.c_str(), GLOB_ERR, nullptr, &matches);
    std::vector<std::string> paths;
    if (rc == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) {
        paths.emplace_back(matches.gl_pathv[i]);
      }
    }
    globfree(&matches);
    if (rc == 0 || rc == GLOB_NOMATCH) return paths;
    return absl::UnavailableError(absl::StrCat(
        pattern, ": ",
        rc == GLOB_ABORTED ? "a directory cannot be read" : "glob failed"));
  }
  absl::StatusOr<std::string> Read(const std::string& path) override {
    return ReadFile(path);
  }
};

absl::Status Invalid(absl::string_view path, absl::string_view where,
                     absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", where, where.empty() ? "" : ": ", message));
}

}  // namespace

absl::StatusOr<std::vector<DiscoveredTarget>> ParseFileSd(
    absl::string_view path, absl::string_view text) {
  ListValue groups;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto status = google::protobuf::util::JsonStringToMessage(
          std::string(text), &groups, options);
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", JsonErrorMessage(status.message().ToString(), text),
        " (want a JSON list of {\"targets\": [...], \"labels\": {...}})"));
  }
  std::vector<DiscoveredTarget> targets;
  for (int i = 0; i < groups.values_size(); ++i) {
    const std::string group = absl::StrCat("[", i, "]");
    const Value& value = groups.values(i);
    if (!value.has_struct_value()) {
      return Invalid(path, group, "want an object with \"targets\"");
    }
    const auto& fields = value.struct_value().fields();
    for (const auto& [key, unused] : fields) {
      if (key != "targets" && key != "labels") {
        return Invalid(path, group,
                       absl::StrCat("unknown key \"", key,
                                    "\" (want \"targets\" and \"labels\")"));
      }
    }
    auto labels_it = fields.find("labels");
    std::vector<std::pair<std::string, std::string>> labels;
    if (labels_it != fields.end() && !labels_it->second.has_null_value()) {
      if (!labels_it->second.has_struct_value()) {
        return Invalid(path, absl::StrCat(group, ".labels"),
                       "want an object of strings");
      }
      for (const auto& [name, label] :
           labels_it->second.struct_value().fields()) {
        if (!label.has_string_value()) {
          return Invalid(path, absl::StrCat(group, ".labels[\"", name, "\"]"),
                         "want a string");
        }
        // Prometheus' meta labels (__meta_*, __address__, ...) describe
        // how a target was found, not the target.
        if (absl::StartsWith(name, "__")) continue;
        labels.emplace_back(name, label.string_value());
      }
    }
    auto targets_it = fields.find("targets");
    if (targets_it == fields.end() || !targets_it->second.has_list_value()) {
      return Invalid(path, absl::StrCat(group, ".targets"),
                     "want a list of \"[NAME=]HOST[:PORT]\" strings");
    }
    const ListValue& list = targets_it->second.list_value();
    for (int j = 0; j < list.values_size(); ++j) {
      std::string where = absl::StrCat(group, ".targets[", j, "]");
      if (!list.values(j).has_string_value()) {
        return Invalid(path, where, "want a \"[NAME=]HOST[:PORT]\" string");
      }
      const std::string& address = list.values(j).string_value();
      std::string origin =
          absl::StrCat(path, ": ", where, " \"", address, "\"");
      absl::StatusOr<v1::TargetConfig> target =
          ParseTargetAddress(address, origin);
      if (!target.ok()) return target.status();
      for (const auto& [name, label] : labels) {
        (*target->mutable_labels())[name] = label;
      }
      targets.push_back({*std::move(target), std::move(origin)});
    }
  }
  return targets;
}

FileSdSource& RealFileSdSource() {
  static RealFiles files;
  return files;
}

FileDiscovery::FileDiscovery(std::vector<std::string> patterns,
                             FileSdSource* files)
    : patterns_(std::move(patterns)), files_(files) {}

FileDiscovery::Result FileDiscovery::Refresh() {
  Result result;
  std::map<std::string, GoodFile> good;
  for (const std::string& pattern : patterns_) {
    absl::StatusOr<std::vector<std::string>> paths = files_->Glob(pattern);
    if (!paths.ok()) {
      // Keep what the pattern gave before: a directory briefly unreadable
      // must not drop its targets.
      result.errors.emplace_back(paths.status().message());
      for (const auto& [path, file] : good_) {
        if (!good.contains(path)) good.emplace(path, file);
      }
      continue;
    }
    for (const std::string& path : *paths) {
      if (good.contains(path)) continue;  // matched by an earlier pattern
      absl::StatusOr<std::string> text = files_->Read(path);
      absl::StatusOr<std::vector<DiscoveredTarget>> targets =
          text.ok()
              ? ParseFileSd(path, *text)
              : absl::StatusOr<std::vector<DiscoveredTarget>>(text.status());
      if (targets.ok()) {
        good.emplace(path, GoodFile{*std::move(text), *std::move(targets)});
        continue;
      }
      auto previous = good_.find(path);
      result.errors.push_back(absl::StrCat(
          targets.status().message(),
          previous == good_.end()
              ? ""
              : absl::StrCat(" (keeping its last ",
                             previous->second.targets.size(), " targets)")));
      if (previous != good_.end()) good.emplace(path, previous->second);
    }
  }
  bool same = refreshed_ && good.size() == good_.size();
  for (auto a = good.begin(), b = good_.begin(); same && a != good.end();
       ++a, ++b) {
    same = a->first == b->first && a->second.text == b->second.text;
  }
  result.changed = !same;
  refreshed_ = true;
  good_ = std::move(good);
  for (const auto& [path, file] : good_) {
    result.targets.insert(result.targets.end(), file.targets.begin(),
                          file.targets.end());
    if (!file.targets.empty()) ++result.files;
  }
  return result;
}

}  // namespace latency
