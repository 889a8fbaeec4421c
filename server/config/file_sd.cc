#include "server/config/file_sd.h"

#include <glob.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/config/config.h"
#include "yaml-cpp/yaml.h"

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

// One group of a file, whatever its syntax.
struct Group {
  std::vector<std::string> targets;
  std::vector<std::pair<std::string, std::string>> labels;
};

constexpr absl::string_view kWantList =
    "want a list of {\"targets\": [...], \"labels\": {...}}";
constexpr absl::string_view kWantTargets =
    "want a list of \"[NAME=]HOST[:PORT]\" strings";

absl::StatusOr<std::vector<Group>> GroupsFromJson(absl::string_view path,
                                                  absl::string_view text) {
  ListValue list;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto status = google::protobuf::util::JsonStringToMessage(
          std::string(text), &list, options);
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", JsonErrorMessage(status.message().ToString(), text), " (",
        kWantList, ")"));
  }
  std::vector<Group> groups;
  for (int i = 0; i < list.values_size(); ++i) {
    const std::string where = absl::StrCat("[", i, "]");
    const Value& value = list.values(i);
    if (!value.has_struct_value()) {
      return Invalid(path, where, "want an object with \"targets\"");
    }
    Group& group = groups.emplace_back();
    for (const auto& [key, field] : value.struct_value().fields()) {
      if (key == "labels") {
        if (field.has_null_value()) continue;
        if (!field.has_struct_value()) {
          return Invalid(path, absl::StrCat(where, ".labels"),
                         "want an object of strings");
        }
        for (const auto& [name, label] : field.struct_value().fields()) {
          if (!label.has_string_value()) {
            return Invalid(path, absl::StrCat(where, ".labels[\"", name, "\"]"),
                           "want a string");
          }
          group.labels.emplace_back(name, label.string_value());
        }
      } else if (key == "targets") {
        if (!field.has_list_value()) {
          return Invalid(path, absl::StrCat(where, ".targets"), kWantTargets);
        }
        const ListValue& targets = field.list_value();
        for (int j = 0; j < targets.values_size(); ++j) {
          if (!targets.values(j).has_string_value()) {
            return Invalid(path, absl::StrCat(where, ".targets[", j, "]"),
                           "want a \"[NAME=]HOST[:PORT]\" string");
          }
          group.targets.push_back(targets.values(j).string_value());
        }
      } else {
        return Invalid(path, where,
                       absl::StrCat("unknown key \"", key,
                                    "\" (want \"targets\" and \"labels\")"));
      }
    }
    if (!value.struct_value().fields().contains("targets")) {
      return Invalid(path, absl::StrCat(where, ".targets"), kWantTargets);
    }
  }
  return groups;
}

absl::StatusOr<std::vector<Group>> GroupsFromYaml(absl::string_view path,
                                                  absl::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ",
                     e.msg, " (", kWantList, ")"));
  }
  std::vector<Group> groups;
  if (root.IsNull()) return groups;  // an empty file
  if (!root.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", kWantList));
  }
  for (size_t i = 0; i < root.size(); ++i) {
    const std::string where = absl::StrCat("[", i, "]");
    const YAML::Node& value = root[i];
    if (!value.IsMap()) {
      return Invalid(path, where, "want a map with \"targets\"");
    }
    Group& group = groups.emplace_back();
    bool has_targets = false;
    for (const auto& entry : value) {
      const std::string key =
          entry.first.IsScalar() ? entry.first.Scalar() : std::string("?");
      const YAML::Node& field = entry.second;
      if (key == "labels") {
        if (field.IsNull()) continue;
        if (!field.IsMap()) {
          return Invalid(path, absl::StrCat(where, ".labels"),
                         "want a map of strings");
        }
        for (const auto& label : field) {
          const std::string name =
              label.first.IsScalar() ? label.first.Scalar() : "?";
          if (!label.first.IsScalar() || !label.second.IsScalar()) {
            return Invalid(path, absl::StrCat(where, ".labels[\"", name, "\"]"),
                           "want a string");
          }
          group.labels.emplace_back(name, label.second.Scalar());
        }
      } else if (key == "targets") {
        has_targets = true;
        if (!field.IsSequence()) {
          return Invalid(path, absl::StrCat(where, ".targets"), kWantTargets);
        }
        for (size_t j = 0; j < field.size(); ++j) {
          if (!field[j].IsScalar()) {
            return Invalid(path, absl::StrCat(where, ".targets[", j, "]"),
                           "want a \"[NAME=]HOST[:PORT]\" string");
          }
          group.targets.push_back(field[j].Scalar());
        }
      } else {
        return Invalid(path, where,
                       absl::StrCat("unknown key \"", key,
                                    "\" (want \"targets\" and \"labels\")"));
      }
    }
    if (!has_targets) {
      return Invalid(path, absl::StrCat(where, ".targets"), kWantTargets);
    }
  }
  return groups;
}

}  // namespace

absl::StatusOr<std::vector<DiscoveredTarget>> ParseFileSd(
    absl::string_view path, absl::string_view text) {
  absl::StatusOr<std::vector<Group>> groups =
      absl::EndsWithIgnoreCase(path, ".yml") ||
              absl::EndsWithIgnoreCase(path, ".yaml")
          ? GroupsFromYaml(path, text)
          : GroupsFromJson(path, text);
  if (!groups.ok()) return groups.status();
  std::vector<DiscoveredTarget> targets;
  for (size_t i = 0; i < groups->size(); ++i) {
    const Group& group = (*groups)[i];
    for (size_t j = 0; j < group.targets.size(); ++j) {
      const std::string& address = group.targets[j];
      std::string origin =
          absl::StrCat(path, ": [", i, "].targets[", j, "] \"", address, "\"");
      absl::StatusOr<v1::TargetConfig> target =
          ParseTargetAddress(address, origin);
      if (!target.ok()) return target.status();
      for (const auto& [name, label] : group.labels) {
        // Prometheus' meta labels (__meta_*, __address__, ...) describe
        // how a target was found, not the target.
        if (absl::StartsWith(name, "__")) continue;
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
      auto previous = good_.find(path);
      // Unchanged since the last good read: its targets stand, unparsed.
      if (text.ok() && previous != good_.end() &&
          previous->second.text == *text) {
        good.emplace(path, previous->second);
        continue;
      }
      absl::StatusOr<std::vector<DiscoveredTarget>> targets =
          text.ok()
              ? ParseFileSd(path, *text)
              : absl::StatusOr<std::vector<DiscoveredTarget>>(text.status());
      if (targets.ok()) {
        good.emplace(path, GoodFile{*std::move(text), *std::move(targets)});
        continue;
      }
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
