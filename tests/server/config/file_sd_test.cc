#include "server/config/file_sd.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"
#include "tests/testing/status_matchers.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// Files in memory: `files` maps a path to its text, or to nullopt for one
// that cannot be read. A pattern matches the paths that start with it.
class FakeFiles final : public FileSdSource {
 public:
  absl::StatusOr<std::vector<std::string>> Glob(
      const std::string& pattern) override {
    std::vector<std::string> paths;
    for (const auto& [path, text] : files) {
      if (path.rfind(pattern, 0) == 0) paths.push_back(path);
    }
    return paths;
  }
  absl::StatusOr<std::string> Read(const std::string& path) override {
    auto it = files.find(path);
    if (it == files.end() || !it->second.has_value()) {
      return absl::PermissionDeniedError(path + ": cannot open");
    }
    return *it->second;
  }
  std::map<std::string, std::optional<std::string>> files;
};

std::vector<std::string> Names(const std::vector<DiscoveredTarget>& targets) {
  std::vector<std::string> names;
  for (const auto& t : targets) names.push_back(t.target.name());
  return names;
}

TEST(ParseFileSdTest, PrometheusFormatWithNamesPortsAndLabels) {
  auto targets = ParseFileSd("/etc/t.json", R"([
    {"targets": ["web-1:50061", "db=10.0.0.7", "[::1]:7"],
     "labels": {"az": "eu-west-1b", "__meta_consul_dc": "x"}},
    {"targets": ["cache"]}
  ])");
  ASSERT_THAT(targets.status(), IsOk());
  ASSERT_EQ(targets->size(), 4u);
  EXPECT_THAT(Names(*targets), ElementsAre("web-1", "db", "::1", "cache"));
  const v1::TargetConfig& web = (*targets)[0].target;
  EXPECT_EQ(web.host(), "web-1");
  EXPECT_EQ(web.grpc_port(), 50061u);
  // Prometheus' __meta labels describe the discovery, not the target.
  EXPECT_THAT(web.labels(), UnorderedElementsAre(Pair("az", "eu-west-1b")));
  EXPECT_FALSE((*targets)[1].target.has_grpc_port());
  EXPECT_EQ((*targets)[1].target.host(), "10.0.0.7");
  EXPECT_TRUE((*targets)[3].target.labels().empty());
  EXPECT_EQ((*targets)[1].origin,
            "/etc/t.json: [0].targets[1] \"db=10.0.0.7\"");
  EXPECT_THAT(ParseFileSd("/e.json", "[]"), IsOk());
}

TEST(ParseFileSdTest, ABadFileIsRefusedWholeNamingTheElement) {
  EXPECT_THAT(ParseFileSd("/t.json", "[{\"targets\": [\"a\"]"),
              StatusIs(kInvalid, "/t.json:"));
  EXPECT_THAT(ParseFileSd("/t.json", "{\"targets\": [\"a\"]}"),
              StatusIs(kInvalid, "want a list of"));
  EXPECT_THAT(ParseFileSd("/t.json", "[\"a\"]"),
              StatusIs(kInvalid, "/t.json: [0]: want an object"));
  EXPECT_THAT(ParseFileSd("/t.json", R"([{"targets": ["a"], "lables": {}}])"),
              StatusIs(kInvalid, "unknown key \"lables\""));
  EXPECT_THAT(ParseFileSd("/t.json", R"([{"labels": {}}])"),
              StatusIs(kInvalid, "[0].targets: want a list"));
  EXPECT_THAT(ParseFileSd("/t.json", R"([{"targets": ["a", 7]}])"),
              StatusIs(kInvalid, "[0].targets[1]: want a"));
  EXPECT_THAT(
      ParseFileSd("/t.json", R"([{"targets": ["a"], "labels": {"x": 1}}])"),
      StatusIs(kInvalid, "[0].labels[\"x\"]: want a string"));
  EXPECT_THAT(
      ParseFileSd("/t.json", R"([{"targets": []}, {"targets": ["a:99999"]}])"),
      StatusIs(kInvalid, "[1].targets[0] \"a:99999\": grpc port"));
}

TEST(ParseFileSdTest, YamlAsPrometheusWritesIt) {
  auto targets = ParseFileSd("/etc/t.yml", R"(
- targets: ['web-1:50061', db=10.0.0.7]
  labels:
    az: eu-west-1b
    __meta_consul_dc: x
    rack: 12
- targets:
  - cache
)");
  ASSERT_THAT(targets.status(), IsOk());
  EXPECT_THAT(Names(*targets), ElementsAre("web-1", "db", "cache"));
  EXPECT_EQ((*targets)[0].target.grpc_port(), 50061u);
  EXPECT_THAT(
      (*targets)[1].target.labels(),
      UnorderedElementsAre(Pair("az", "eu-west-1b"), Pair("rack", "12")));
  EXPECT_EQ((*targets)[2].origin, "/etc/t.yml: [1].targets[0] \"cache\"");
  EXPECT_THAT(ParseFileSd("/e.yaml", ""), IsOk());  // empty file, no targets

  EXPECT_THAT(ParseFileSd("/t.yaml", "- targets: [a\n"),
              StatusIs(kInvalid, "/t.yaml:"));
  EXPECT_THAT(ParseFileSd("/t.yaml", "targets: [a]"),
              StatusIs(kInvalid, "want a list"));
  EXPECT_THAT(ParseFileSd("/t.yaml", "- labels: {a: b}"),
              StatusIs(kInvalid, "[0].targets: want a list"));
  EXPECT_THAT(ParseFileSd("/t.yaml", "- targets: [a, [b]]"),
              StatusIs(kInvalid, "[0].targets[1]: want a"));
  EXPECT_THAT(ParseFileSd("/t.yaml", "- targets: [a]\n  labels: {x: [1]}"),
              StatusIs(kInvalid, "[0].labels[\"x\"]: want a string"));
  EXPECT_THAT(ParseFileSd("/t.yaml", "- targets: [a]\n  lables: {}"),
              StatusIs(kInvalid, "unknown key \"lables\""));
  // Deep nesting is an error, not a crash.
  EXPECT_THAT(ParseFileSd("/t.yaml", std::string(100000, '[')),
              StatusIs(kInvalid, "/t.yaml:"));
}

TEST(FileDiscoveryTest, ChangesAppearAndAStaleOrBrokenFileKeepsItsTargets) {
  FakeFiles files;
  files.files["/sd/a.json"] = R"([{"targets": ["a1", "a2"]}])";
  files.files["/sd/b.json"] = R"([{"targets": ["b1"]}])";
  files.files["/other/c.json"] = R"([{"targets": ["c1"]}])";
  FileDiscovery discovery({"/sd/"}, &files);

  FileDiscovery::Result first = discovery.Refresh();
  EXPECT_TRUE(first.changed);
  EXPECT_THAT(Names(first.targets), ElementsAre("a1", "a2", "b1"));
  EXPECT_EQ(first.files, 2);
  EXPECT_TRUE(first.errors.empty());

  FileDiscovery::Result same = discovery.Refresh();
  EXPECT_FALSE(same.changed);
  EXPECT_THAT(Names(same.targets), ElementsAre("a1", "a2", "b1"));

  // A half-written file is an error and keeps the last good targets.
  files.files["/sd/b.json"] = R"([{"targets": ["b1", )";
  FileDiscovery::Result broken = discovery.Refresh();
  EXPECT_FALSE(broken.changed);
  EXPECT_THAT(Names(broken.targets), ElementsAre("a1", "a2", "b1"));
  ASSERT_EQ(broken.errors.size(), 1u);
  EXPECT_THAT(broken.errors[0], HasSubstr("/sd/b.json:"));
  EXPECT_THAT(broken.errors[0], HasSubstr("keeping its last 1 targets"));

  files.files["/sd/b.json"] = R"([{"targets": ["b1", "b2"]}])";
  files.files["/sd/a.json"] = std::nullopt;  // unreadable: keeps a1, a2
  FileDiscovery::Result grown = discovery.Refresh();
  EXPECT_TRUE(grown.changed);
  EXPECT_THAT(Names(grown.targets), ElementsAre("a1", "a2", "b1", "b2"));
  EXPECT_EQ(grown.errors.size(), 1u);

  files.files.erase("/sd/a.json");  // removed: its targets go
  FileDiscovery::Result shrunk = discovery.Refresh();
  EXPECT_TRUE(shrunk.changed);
  EXPECT_THAT(Names(shrunk.targets), ElementsAre("b1", "b2"));
  EXPECT_TRUE(shrunk.errors.empty());
}

TEST(FileDiscoveryTest, AFileMatchedTwiceCountsOnce) {
  FakeFiles files;
  files.files["/sd/a.json"] = R"([{"targets": ["a1"]}])";
  FileDiscovery discovery({"/sd/", "/sd/a"}, &files);
  EXPECT_THAT(Names(discovery.Refresh().targets), ElementsAre("a1"));
}

// What BuildSettings makes of discovered targets: they follow the static
// ones with the resolved defaults, and a bad one is left out with a reason
// instead of failing the configuration.
TEST(FileDiscoveryTest, BuildSettingsSkipsBadDiscoveredTargetsOnly) {
  auto discovered = ParseFileSd("/t.json", R"([
    {"targets": ["static-name=10.0.0.1", "ok-1", "ok-2:7"]},
    {"targets": ["reserved"], "labels": {"job": "x"}},
    {"targets": ["ok-1"]}
  ])");
  ASSERT_THAT(discovered.status(), IsOk());
  v1::ServerConfig config;
  config.add_file_sd("/t.json");
  config.mutable_defaults()->set_interval_ms(250);
  auto settings =
      BuildSettings(config, {"static-name=127.0.0.1"}, {}, *discovered);
  ASSERT_THAT(settings.status(), IsOk());
  std::vector<std::string> names;
  for (const TargetSpec& t : settings->targets) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("static-name", "ok-1", "ok-2"));
  EXPECT_EQ(settings->targets[2].grpc_port, 7);
  EXPECT_EQ(settings->targets[1].interval, absl::Milliseconds(250));
  ASSERT_EQ(settings->skipped.size(), 3u);
  EXPECT_THAT(settings->skipped[0],
              HasSubstr("target name \"static-name\" is taken by --target #1"));
  EXPECT_THAT(settings->skipped[1], HasSubstr("\"job\" is set by the server"));
  EXPECT_THAT(settings->skipped[2],
              HasSubstr("[2].targets[0] \"ok-1\": target name \"ok-1\" is "
                        "taken by /t.json: [0].targets[1] \"ok-1\""));

  // file_sd alone is a configuration: the files may be empty at start.
  v1::ServerConfig only_files;
  only_files.add_file_sd("/sd/*.json");
  EXPECT_THAT(BuildSettings(only_files, {}).status(), IsOk());
  EXPECT_THAT(BuildSettings(v1::ServerConfig(), {}).status(),
              StatusIs(kInvalid, "--file_sd"));
}

}  // namespace
}  // namespace latency
