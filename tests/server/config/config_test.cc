#include "server/config/config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::Not;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// Writes `contents` to a fresh file in the test's temp dir named `name`.
std::string WriteTempFile(const std::string& name,
                          const std::string& contents) {
  std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path) << contents;
  return path;
}

v1::ServerConfig ParseText(const std::string& text) {
  v1::ServerConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config))
      << text;
  return config;
}

// --- ParseTargetFlag -------------------------------------------------------

// A flag value that parses, and what it parses to (port 0: none given).
struct ValidFlag {
  const char* flag;
  const char* name;
  const char* host;
  uint32_t port;
};

class ParseValidTargetFlagTest : public ::testing::TestWithParam<ValidFlag> {};

TEST_P(ParseValidTargetFlagTest, Parses) {
  const ValidFlag& want = GetParam();
  absl::StatusOr<v1::TargetConfig> target = ParseTargetFlag(want.flag);
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->name(), want.name);
  EXPECT_EQ(target->host(), want.host);
  EXPECT_EQ(target->has_grpc_port(), want.port != 0);
  EXPECT_EQ(target->grpc_port(), want.port);
}

INSTANTIATE_TEST_SUITE_P(
    Flags, ParseValidTargetFlagTest,
    ::testing::Values(
        ValidFlag{"db=db.example.com:1234", "db", "db.example.com", 1234},
        // NAME defaults to HOST.
        ValidFlag{"agent_1", "agent_1", "agent_1", 0},
        ValidFlag{"agent.example.", "agent.example.", "agent.example.", 0},
        ValidFlag{"10.0.0.1:50052", "10.0.0.1", "10.0.0.1", 50052},
        ValidFlag{"[::1]:50051", "::1", "::1", 50051},
        ValidFlag{"[fe80::1]", "fe80::1", "fe80::1", 0},
        ValidFlag{"v6=[2001:db8::7]:9", "v6", "2001:db8::7", 9},
        ValidFlag{"x:65535", "x", "x", 65535},
        // A bare IPv6 address: with two or more colons the last group is
        // part of the address, never a port.
        ValidFlag{"::1", "::1", "::1", 0},
        ValidFlag{"2001:db8::1:8080", "2001:db8::1:8080", "2001:db8::1:8080",
                  0},
        ValidFlag{"link=[fe80::1%eth0]:7", "link", "fe80::1%eth0", 7}));

TEST(ParseTargetFlagTest, NameLengthLimit) {
  EXPECT_THAT(ParseTargetFlag(std::string(64, 'n') + "=host"), IsOk());
  EXPECT_THAT(ParseTargetFlag(std::string(65, 'n') + "=host"),
              StatusIs(kInvalid, "must be 1 to 64 characters"));
}

// A flag value that does not parse, and a substring of its error.
struct InvalidFlag {
  const char* flag;
  const char* message;
};

class ParseInvalidTargetFlagTest
    : public ::testing::TestWithParam<InvalidFlag> {};

TEST_P(ParseInvalidTargetFlagTest, Fails) {
  EXPECT_THAT(ParseTargetFlag(GetParam().flag),
              StatusIs(kInvalid, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Flags, ParseInvalidTargetFlagTest,
    ::testing::Values(
        // Ports.
        InvalidFlag{"x:0",
                    "--target \"x:0\": grpc port must be between 1 and 65535, "
                    "got 0"},
        InvalidFlag{"x:70000", "between 1 and 65535, got 70000"},
        InvalidFlag{"x:99999999999999", "got 99999999999999"},
        InvalidFlag{"x:abc", "grpc port \"abc\" is not a number"},
        InvalidFlag{"x:-1", "not a number"},
        InvalidFlag{"x:", "empty grpc port"}, InvalidFlag{"[::1]:0", "got 0"},
        InvalidFlag{"[::1]:", "empty grpc port"},
        // Empty parts.
        InvalidFlag{"", "--target \"\": empty host"},
        InvalidFlag{"a=", "--target \"a=\": empty host"},
        InvalidFlag{":50051", "empty host"}, InvalidFlag{"[]:1", "empty host"},
        InvalidFlag{"=host", "--target \"=host\": empty name"},
        // Hosts.
        InvalidFlag{"[::1", "missing ']'"},
        InvalidFlag{"[::1]x", "want [IPV6]:PORT after ']'"},
        InvalidFlag{"[10.0.0.1]:5", "\"10.0.0.1\" in brackets is not an IPv6"},
        InvalidFlag{"a b", "\"a b\" is not a valid host name"},
        InvalidFlag{"1.2.3.256", "not a valid"},
        InvalidFlag{"-bad.example", "not a valid"},
        InvalidFlag{"a:b:c", "an IPv6 address with a port: [ADDR]:PORT"},
        // Names.
        InvalidFlag{"a/b=host",
                    "\"a/b\" must be 1 to 64 characters from [A-Za-z0-9_.:-]"},
        InvalidFlag{"fe80::1%eth0", "(defaulted from host)"}));

// --- LoadConfigFile --------------------------------------------------------

constexpr char kTextConfig[] = R"pb(
  # comment
  defaults { interval_ms: 500 }
  targets { name: "a" host: "10.0.0.1" grpc_port: 7000 }
  targets {
    host: "b.example"
    probe { grpc_mode: GRPC_MODE_STREAM }
  }
  thresholds { down_after_failures: 5 }
)pb";

void ExpectTextConfigContents(const v1::ServerConfig& config) {
  EXPECT_EQ(config.defaults().interval_ms(), 500u);
  ASSERT_EQ(config.targets_size(), 2);
  EXPECT_EQ(config.targets(0).name(), "a");
  EXPECT_EQ(config.targets(0).grpc_port(), 7000u);
  EXPECT_EQ(config.targets(1).host(), "b.example");
  EXPECT_EQ(config.targets(1).probe().grpc_mode(), v1::GRPC_MODE_STREAM);
  EXPECT_EQ(config.thresholds().down_after_failures(), 5u);
}

TEST(LoadConfigFileTest, TextProto) {
  for (const char* name : {"text.textproto", "text.txtpb", "text.pbtxt",
                           "text.cfg", "text-without-extension"}) {
    absl::StatusOr<v1::ServerConfig> config =
        LoadConfigFile(WriteTempFile(name, kTextConfig));
    ASSERT_THAT(config, IsOk()) << name;
    ExpectTextConfigContents(*config);
  }
}

TEST(LoadConfigFileTest, Json) {
  constexpr char kJson[] = R"json({
    "defaults": {"intervalMs": 500},
    "targets": [
      {"name": "a", "host": "10.0.0.1", "grpc_port": 7000},
      {"host": "b.example", "probe": {"grpcMode": "GRPC_MODE_STREAM"}}
    ],
    "thresholds": {"downAfterFailures": 5}
  })json";
  for (const char* name : {"config.json", "CONFIG.JSON"}) {
    absl::StatusOr<v1::ServerConfig> config =
        LoadConfigFile(WriteTempFile(name, kJson));
    ASSERT_THAT(config, IsOk()) << name;
    ExpectTextConfigContents(*config);
  }
}

TEST(LoadConfigFileTest, TextUnknownFieldNamesFileLineAndField) {
  std::string path = WriteTempFile("unknown.textproto",
                                   "targets { host: \"a\" }\n"
                                   "defaults {\n"
                                   "  intervall_ms: 5\n"
                                   "}\n");
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, path + ":3:"));
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, "\"intervall_ms\""));
}

TEST(LoadConfigFileTest, TextSyntaxErrorNamesLine) {
  std::string path =
      WriteTempFile("syntax.textproto", "targets {\n  host: \"a\"\n");
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, path + ":"));
  EXPECT_THAT(LoadConfigFile(WriteTempFile("dup.textproto",
                                           "defaults { interval_ms: 1 "
                                           "interval_ms: 2 }")),
              StatusIs(kInvalid, "interval_ms"));
}

TEST(LoadConfigFileTest, JsonUnknownFieldNamesFileAndField) {
  std::string path = WriteTempFile(
      "unknown.json", R"json({"targets": [{"host": "a", "bogus": 1}]})json");
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, path + ": "));
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, "bogus"));
}

TEST(LoadConfigFileTest, JsonSyntaxErrorNamesLineAndColumn) {
  std::string path = WriteTempFile("broken.json",
                                   "{\n"
                                   "  \"targets\": [\n"
                                   "    {\"host\": \"a\",, \"name\": \"b\"}\n"
                                   "  ]\n"
                                   "}\n");
  EXPECT_THAT(LoadConfigFile(path),
              StatusIs(kInvalid, path + ":3:18: Expected an object key"));
  path = WriteTempFile("truncated.json", "{\"targets\": [");
  EXPECT_THAT(LoadConfigFile(path), StatusIs(kInvalid, path + ": "));
}

TEST(LoadConfigFileTest, JsonBadValueNamesField) {
  std::string path =
      WriteTempFile("negative.json",
                    R"json({"targets": [{"host": "a", "grpcPort": -1}]})json");
  EXPECT_THAT(LoadConfigFile(path),
              StatusIs(kInvalid, "(targets[0].grpc_port): invalid value -1"));
}

TEST(LoadConfigFileTest, UnknownEnumNumberIsCaughtByValidation) {
  // Text format accepts unknown numbers for proto3 (open) enums.
  absl::StatusOr<v1::ServerConfig> config = LoadConfigFile(WriteTempFile(
      "enum.textproto", "targets { host: \"a\" probe { grpc_mode: 7 } }"));
  ASSERT_THAT(config, IsOk());
  EXPECT_THAT(
      BuildSettings(*config, {}),
      StatusIs(kInvalid, "targets[0].probe.grpc_mode: unknown value 7"));
}

TEST(LoadConfigFileTest, MissingFileNamesPath) {
  std::string path = ::testing::TempDir() + "/does-not-exist.textproto";
  EXPECT_THAT(LoadConfigFile(path),
              StatusIs(absl::StatusCode::kNotFound, path + ": cannot open"));
}

TEST(LoadConfigFileTest, DirectoryIsAnError) {
  EXPECT_THAT(LoadConfigFile(::testing::TempDir()), Not(IsOk()));
}

TEST(LoadConfigFileTest, ExampleConfigIsValid) {
  absl::StatusOr<v1::ServerConfig> config =
      LoadConfigFile(LATENCY_EXAMPLE_CONFIG);
  ASSERT_THAT(config, IsOk());
  absl::StatusOr<ServerSettings> settings = BuildSettings(*config, {});
  ASSERT_THAT(settings, IsOk());
  ASSERT_EQ(settings->targets.size(), 2u);
  EXPECT_EQ(settings->targets[0].name, "agent-1");
  EXPECT_EQ(settings->targets[1].name, "agent-2-v6");
  EXPECT_EQ(settings->targets[1].grpc_mode, GrpcProbeMode::kStream);
  EXPECT_EQ(settings->targets[1].family, AddressFamily::kIpv6);
}

// --- BuildSettings: resolution ---------------------------------------------

// Every field of a TargetSpec in one line, so tests compare whole specs and
// a failure shows all differences.
std::string Describe(const TargetSpec& spec) {
  return absl::StrCat("name=", spec.name, " host=", spec.host,
                      " port=", spec.grpc_port,
                      " interval=", absl::FormatDuration(spec.interval),
                      " timeout=", absl::FormatDuration(spec.timeout),
                      " icmp_payload=", spec.icmp_payload_bytes,
                      " grpc_payload=", spec.grpc_payload_bytes,
                      " stream=", spec.grpc_mode == GrpcProbeMode::kStream,
                      " icmp=", spec.icmp_enabled, " grpc=", spec.grpc_enabled,
                      " family=", static_cast<int>(spec.family));
}

// The built-in defaults, spelled out rather than taken from TargetSpec's
// member initializers.
TargetSpec DefaultSpec(const std::string& name, const std::string& host) {
  TargetSpec spec;
  spec.name = name;
  spec.host = host;
  spec.grpc_port = 50051;
  spec.interval = absl::Milliseconds(1000);
  spec.timeout = absl::Milliseconds(1000);
  spec.icmp_payload_bytes = 56;
  spec.grpc_payload_bytes = 0;
  spec.grpc_mode = GrpcProbeMode::kUnary;
  spec.icmp_enabled = true;
  spec.grpc_enabled = true;
  spec.family = AddressFamily::kAny;
  return spec;
}

TEST(BuildSettingsTest, BuiltInDefaults) {
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(v1::ServerConfig(), {"agent"});
  ASSERT_THAT(settings, IsOk());
  ASSERT_EQ(settings->targets.size(), 1u);
  EXPECT_EQ(Describe(settings->targets[0]),
            Describe(DefaultSpec("agent", "agent")));

  const v1::StatusThresholds& thresholds = settings->thresholds;
  ASSERT_TRUE(thresholds.has_degraded_loss_percent());
  ASSERT_TRUE(thresholds.has_down_after_failures());
  ASSERT_TRUE(thresholds.has_stale_after_intervals());
  EXPECT_EQ(thresholds.degraded_loss_percent(), 5);
  EXPECT_EQ(thresholds.down_after_failures(), 3u);
  EXPECT_EQ(thresholds.stale_after_intervals(), 3u);
}

TEST(BuildSettingsTest, ThresholdsKeepGivenFieldsAndFillTheRest) {
  absl::StatusOr<ServerSettings> settings = BuildSettings(
      ParseText("thresholds { degraded_loss_percent: 0 stale_after_intervals: "
                "10 }"),
      {"a"});
  ASSERT_THAT(settings, IsOk());
  EXPECT_EQ(settings->thresholds.degraded_loss_percent(), 0);
  EXPECT_EQ(settings->thresholds.down_after_failures(), 3u);
  EXPECT_EQ(settings->thresholds.stale_after_intervals(), 10u);
}

TEST(BuildSettingsTest, PrecedenceTargetThenFlagDefaultsThenFileDefaults) {
  v1::ServerConfig config = ParseText(R"pb(
    defaults {
      interval_ms: 2000
      timeout_ms: 300
      icmp_payload_bytes: 100
      grpc_enabled: false
      address_family: ADDRESS_FAMILY_IPV4
    }
    targets { name: "inherits" host: "10.0.0.1" }
    targets {
      name: "overrides"
      host: "2001:db8::1"
      grpc_port: 6000
      probe {
        interval_ms: 50
        grpc_payload_bytes: 4194304
        grpc_mode: GRPC_MODE_STREAM
        icmp_enabled: false
        grpc_enabled: true
        address_family: ADDRESS_FAMILY_IPV6
      }
    }
  )pb");
  v1::ProbeSettings flag_defaults;
  flag_defaults.set_timeout_ms(700);

  absl::StatusOr<ServerSettings> settings =
      BuildSettings(config, {"flag=10.0.0.2"}, flag_defaults);
  ASSERT_THAT(settings, IsOk());
  ASSERT_EQ(settings->targets.size(), 3u);

  TargetSpec inherits = DefaultSpec("inherits", "10.0.0.1");
  inherits.interval = absl::Milliseconds(2000);  // file defaults
  inherits.timeout = absl::Milliseconds(700);    // flag defaults win
  inherits.icmp_payload_bytes = 100;
  inherits.grpc_enabled = false;
  inherits.family = AddressFamily::kIpv4;
  EXPECT_EQ(Describe(settings->targets[0]), Describe(inherits));

  TargetSpec overrides = inherits;  // the target's own probe wins
  overrides.name = "overrides";
  overrides.host = "2001:db8::1";
  overrides.grpc_port = 6000;
  overrides.interval = absl::Milliseconds(50);
  overrides.grpc_payload_bytes = 4194304;
  overrides.grpc_mode = GrpcProbeMode::kStream;
  overrides.icmp_enabled = false;
  overrides.grpc_enabled = true;
  overrides.family = AddressFamily::kIpv6;
  EXPECT_EQ(Describe(settings->targets[1]), Describe(overrides));

  TargetSpec flag = inherits;
  flag.name = "flag";
  flag.host = "10.0.0.2";
  EXPECT_EQ(Describe(settings->targets[2]), Describe(flag));
}

TEST(BuildSettingsTest, OrderIsFileTargetsThenFlags) {
  v1::ServerConfig config = ParseText(R"pb(
    targets { host: "z.example" }
    targets { name: "m" host: "m.example" }
    targets { host: "a.example" }
  )pb");
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(config, {"y.example", "b=[::1]:9", "c.example"});
  ASSERT_THAT(settings, IsOk());
  EXPECT_THAT(settings->targets,
              ElementsAre(Field(&TargetSpec::name, "z.example"),
                          Field(&TargetSpec::name, "m"),
                          Field(&TargetSpec::name, "a.example"),
                          Field(&TargetSpec::name, "y.example"),
                          Field(&TargetSpec::name, "b"),
                          Field(&TargetSpec::name, "c.example")));
  EXPECT_EQ(settings->targets[4].host, "::1");
  EXPECT_EQ(settings->targets[4].grpc_port, 9);
}

TEST(BuildSettingsTest, LabelsAndSourceCarryThrough) {
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(ParseText(R"pb(
                      source: "eu-west-1a"
                      targets {
                        host: "a"
                        labels { key: "az" value: "eu-west-1b" }
                        labels { key: "role" value: "db" }
                      }
                      targets { host: "b" }
                    )pb"),
                    {});
  ASSERT_THAT(settings, IsOk());
  EXPECT_EQ(settings->source, "eu-west-1a");
  EXPECT_EQ(settings->targets[0].labels,
            (std::map<std::string, std::string>{{"az", "eu-west-1b"},
                                                {"role", "db"}}));
  EXPECT_TRUE(settings->targets[1].labels.empty());
}

TEST(BuildSettingsTest, LabelsOutsideTheBoundsAreRefusedByName) {
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(ParseText(R"pb(
                      targets {
                        host: "a"
                        labels { key: "9lives" value: "x" }
                        labels { key: "__meta" value: "x" }
                        labels { key: "instance" value: "x" }
                        labels { key: "ok_name" value: "line\nbreak" }
                      }
                    )pb"),
                    {});
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels[\"9lives\"]: "
                                 "label names match"));
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels[\"__meta\"]: "
                                 "names starting with \"__\""));
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels[\"instance\"]: "
                                 "\"instance\" is set by the server"));
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels[\"ok_name\"]: "
                                 "value must be UTF-8 without "
                                 "control characters"));
}

TEST(BuildSettingsTest, LabelCountsAreBounded) {
  v1::ServerConfig config;
  v1::TargetConfig* crowded = config.add_targets();
  crowded->set_host("a");
  for (int i = 0; i <= kMaxLabelsPerTarget; ++i) {
    (*crowded->mutable_labels())[absl::StrCat("l", i)] = "v";
  }
  (*crowded->mutable_labels())["long"] =
      std::string(kMaxLabelValueBytes + 1, 'x');
  absl::StatusOr<ServerSettings> settings = BuildSettings(config, {});
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels: at most 8 "
                                 "labels per target, got 10"));
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].labels[\"long\"]: value "
                                 "longer than 128 bytes (129)"));

  // Seven names per target is fine; 35 names over all targets is not.
  v1::ServerConfig many;
  for (int t = 0; t < 5; ++t) {
    v1::TargetConfig* target = many.add_targets();
    target->set_host(absl::StrCat("h", t));
    for (int i = 0; i < 7; ++i) {
      (*target->mutable_labels())[absl::StrCat("t", t, "_", i)] = "v";
    }
  }
  EXPECT_THAT(BuildSettings(many, {}),
              StatusIs(kInvalid,
                       "labels: at most 32 distinct label names "
                       "over all targets, got 35"));
  many.mutable_targets()->RemoveLast();
  EXPECT_THAT(BuildSettings(many, {}), IsOk());
}

TEST(ValidateSourceTest, BoundsAndCharacters) {
  EXPECT_THAT(ValidateSource("--source", "us-east-1a"), IsOk());
  EXPECT_THAT(ValidateSource("--source", ""),
              StatusIs(kInvalid, "--source: empty"));
  EXPECT_THAT(ValidateSource("--source", std::string(129, 'a')),
              StatusIs(kInvalid, "--source: longer than 128 bytes (129)"));
  EXPECT_THAT(
      ValidateSource("source", "a\tb"),
      StatusIs(kInvalid, "source: must be UTF-8 without control characters"));
  EXPECT_THAT(BuildSettings(ParseText(R"pb(source: "\377"
                                           targets { host: "a" })pb"),
                            {}),
              StatusIs(kInvalid, "source: must be UTF-8"));
}

TEST(BuildSettingsTest, TimeoutMayExceedInterval) {
  EXPECT_THAT(BuildSettings(ParseText(R"pb(
                              targets {
                                host: "a"
                                probe { interval_ms: 10 timeout_ms: 60000 }
                              }
                            )pb"),
                            {}),
              IsOk());
}

TEST(BuildSettingsTest, LimitsAreInclusive) {
  EXPECT_THAT(
      BuildSettings(ParseText(R"pb(
                      defaults {
                        interval_ms: 3600000
                        timeout_ms: 1
                        icmp_payload_bytes: 16
                        grpc_payload_bytes: 0
                      }
                      targets { host: "a" grpc_port: 65535 }
                      targets {
                        host: "b"
                        grpc_port: 1
                        probe { interval_ms: 10 icmp_payload_bytes: 65000 }
                      }
                      thresholds {
                        degraded_loss_percent: 100
                        down_after_failures: 1000000
                        stale_after_intervals: 1
                      }
                    )pb"),
                    {}),
      IsOk());
}

TEST(BuildSettingsTest, MatchingFamiliesAreFine) {
  EXPECT_THAT(BuildSettings(ParseText(R"pb(
                              defaults { address_family: ADDRESS_FAMILY_IPV6 }
                              targets { host: "::1" }
                              targets { host: "name.example" }
                              targets {
                                host: "127.0.0.1"
                                probe { address_family: ADDRESS_FAMILY_IPV4 }
                              }
                            )pb"),
                            {"[::2]"}),
              IsOk());
}

// --- BuildSettings: errors -------------------------------------------------

TEST(BuildSettingsTest, NoTargets) {
  EXPECT_THAT(BuildSettings(v1::ServerConfig(), {}),
              StatusIs(kInvalid, "targets: no targets configured"));
}

TEST(BuildSettingsTest, DuplicateNameBetweenFileAndFlag) {
  v1::ServerConfig config = ParseText(R"pb(targets { name: "x" host: "a" })pb");
  EXPECT_THAT(BuildSettings(config, {"other", "x=b"}),
              StatusIs(kInvalid,
                       "duplicate target name \"x\" (targets[0] and --target "
                       "#2)"));
}

TEST(BuildSettingsTest, DuplicateNameDefaultedFromHost) {
  v1::ServerConfig config = ParseText(R"pb(
    targets { host: "a" }
    targets { name: "a" host: "b" }
  )pb");
  EXPECT_THAT(BuildSettings(config, {}),
              StatusIs(kInvalid,
                       "duplicate target name \"a\" (targets[0] and "
                       "targets[1])"));
  EXPECT_THAT(BuildSettings(v1::ServerConfig(), {"a", "a:9"}),
              StatusIs(kInvalid, "(--target #1 and --target #2)"));
}

TEST(BuildSettingsTest, FlagParseErrorsAreReported) {
  EXPECT_THAT(BuildSettings(v1::ServerConfig(), {"a="}),
              StatusIs(kInvalid, "--target \"a=\": empty host"));
}

TEST(BuildSettingsTest, FlagDefaultsAreNamedAsFlags) {
  v1::ProbeSettings flag_defaults;
  flag_defaults.set_interval_ms(5);
  flag_defaults.set_timeout_ms(0);
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(v1::ServerConfig(), {"a"}, flag_defaults);
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "--interval (in ms): must be between 10 "
                                 "and 3600000, got 5"));
  EXPECT_THAT(settings,
              StatusIs(kInvalid, "--timeout (in ms): must be between 1 and"));
}

TEST(BuildSettingsTest, ReportsEveryProblemAtOnce) {
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(ParseText(R"pb(
                      defaults { interval_ms: 0 }
                      targets { host: "" }
                      thresholds { down_after_failures: 0 }
                    )pb"),
                    {"x:0"});
  EXPECT_THAT(settings, StatusIs(kInvalid, "defaults.interval_ms"));
  EXPECT_THAT(settings, StatusIs(kInvalid, "targets[0].host"));
  EXPECT_THAT(settings, StatusIs(kInvalid, "thresholds.down_after_failures"));
  EXPECT_THAT(settings, StatusIs(kInvalid, "--target \"x:0\""));
}

TEST(BuildSettingsTest, UnknownEnumValues) {
  v1::ServerConfig config = ParseText(R"pb(targets { host: "a" })pb");
  config.mutable_targets(0)->mutable_probe()->set_grpc_mode(
      static_cast<v1::GrpcMode>(7));
  config.mutable_defaults()->set_address_family(
      static_cast<v1::AddressFamily>(9));
  absl::StatusOr<ServerSettings> settings = BuildSettings(config, {});
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "targets[0].probe.grpc_mode: "
                                 "unknown value 7"));
  EXPECT_THAT(settings, StatusIs(kInvalid,
                                 "defaults.address_family: unknown "
                                 "value 9"));
}

TEST(BuildSettingsTest, NanLossThreshold) {
  v1::ServerConfig config = ParseText(R"pb(targets { host: "a" })pb");
  config.mutable_thresholds()->set_degraded_loss_percent(std::nan(""));
  EXPECT_THAT(BuildSettings(config, {}),
              StatusIs(kInvalid,
                       "thresholds.degraded_loss_percent: must be "
                       "between 0 and 100, got nan"));
}

// One invalid config (text proto, plus flags) and a substring of its error.
struct InvalidCase {
  const char* config;
  std::vector<std::string> flags;
  const char* message;
};

class InvalidConfigTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfigTest, NamesTheField) {
  const InvalidCase& c = GetParam();
  EXPECT_THAT(BuildSettings(ParseText(c.config), c.flags),
              StatusIs(kInvalid, c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Validation, InvalidConfigTest,
    ::testing::Values(
        // Hosts.
        InvalidCase{R"pb(targets { name: "n" })pb",
                    {},
                    "targets[0].host: empty host (required)"},
        InvalidCase{R"pb(targets { host: "a b" })pb",
                    {},
                    "targets[0].host: \"a b\" is not a valid host name or IP "
                    "address"},
        InvalidCase{R"pb(targets { host: "300.1.1.1" })pb",
                    {},
                    "targets[0].host: \"300.1.1.1\" is not a valid"},
        InvalidCase{R"pb(targets { host: "[::1]" })pb",
                    {},
                    "(write IPv6 addresses without brackets)"},
        InvalidCase{R"pb(targets { host: "agent:50051" })pb",
                    {},
                    "(put the port in grpc_port)"},
        InvalidCase{R"pb(targets { host: "fe80::1%" name: "n" })pb",
                    {},
                    "targets[0].host: \"fe80::1%\" is not a valid"},
        InvalidCase{R"pb(targets { host: "a..b" })pb", {}, "targets[0].host"},
        // Names.
        InvalidCase{R"pb(targets { name: "a/b" host: "a" })pb",
                    {},
                    "targets[0].name: \"a/b\" must be 1 to 64 characters from "
                    "[A-Za-z0-9_.:-]"},
        InvalidCase{
            R"pb(targets { name: "a b" host: "a" })pb", {}, "targets[0].name"},
        InvalidCase{
            R"pb(targets {
                   name: "12345678901234567890123456789012345678901234567890123456789012345"
                   host: "a"
                 })pb",
            {},
            "targets[0].name"},
        InvalidCase{R"pb(targets { host: "fe80::1%eth0" })pb",
                    {},
                    "targets[0].name: \"fe80::1%eth0\" (defaulted from host) "
                    "must be 1 to 64 characters from [A-Za-z0-9_.:-]; set a "
                    "name"},
        // Ports.
        InvalidCase{R"pb(targets { host: "a" grpc_port: 0 })pb",
                    {},
                    "targets[0].grpc_port: must be between 1 and 65535, got 0"},
        InvalidCase{R"pb(targets { host: "a" grpc_port: 65536 })pb",
                    {},
                    "targets[0].grpc_port: must be between 1 and 65535, got "
                    "65536"},
        // Intervals and timeouts.
        InvalidCase{R"pb(targets { host: "a" }
                         targets { host: "b" }
                         targets {
                           host: "c"
                           probe { interval_ms: 0 }
                         })pb",
                    {},
                    "targets[2].probe.interval_ms: must be between 10 and "
                    "3600000, got 0"},
        InvalidCase{R"pb(targets {
                           host: "a"
                           probe { interval_ms: 9 }
                         })pb",
                    {},
                    "targets[0].probe.interval_ms"},
        InvalidCase{R"pb(defaults { interval_ms: 3600001 }
                         targets { host: "a" })pb",
                    {},
                    "defaults.interval_ms: must be between 10 and 3600000, got "
                    "3600001"},
        InvalidCase{R"pb(targets {
                           host: "a"
                           probe { timeout_ms: 0 }
                         })pb",
                    {},
                    "targets[0].probe.timeout_ms: must be between 1 and 60000, "
                    "got 0"},
        InvalidCase{R"pb(defaults { timeout_ms: 60001 })pb",
                    {"a"},
                    "defaults.timeout_ms: must be between 1 and 60000, got "
                    "60001"},
        // Payloads.
        InvalidCase{R"pb(targets {
                           host: "a"
                           probe { icmp_payload_bytes: 15 }
                         })pb",
                    {},
                    "targets[0].probe.icmp_payload_bytes: must be between 16 "
                    "and 65000 (the ICMP prober needs 16 bytes for its nonce "
                    "and send time), got 15"},
        InvalidCase{R"pb(defaults { icmp_payload_bytes: 65001 })pb",
                    {"a"},
                    "defaults.icmp_payload_bytes: must be between 16 and "
                    "65000"},
        InvalidCase{R"pb(targets {
                           host: "a"
                           probe { grpc_payload_bytes: 4194305 }
                         })pb",
                    {},
                    "targets[0].probe.grpc_payload_bytes: must be between 0 "
                    "and 4194304, got 4194305"},
        // Probe kinds and families.
        InvalidCase{R"pb(targets {
                           host: "a"
                           probe { icmp_enabled: false grpc_enabled: false }
                         })pb",
                    {},
                    "targets[0].probe: icmp_enabled and grpc_enabled are both "
                    "false"},
        InvalidCase{
            R"pb(defaults { icmp_enabled: false grpc_enabled: false })pb",
            {"a"},
            "--target #1 \"a\": icmp_enabled and grpc_enabled are both "
            "false"},
        InvalidCase{R"pb(targets {
                           host: "::1"
                           probe { address_family: ADDRESS_FAMILY_IPV4 }
                         })pb",
                    {},
                    "targets[0].probe: host \"::1\" is an IPv6 address but "
                    "address_family is ADDRESS_FAMILY_IPV4"},
        InvalidCase{R"pb(defaults { address_family: ADDRESS_FAMILY_IPV6 }
                         targets { host: "127.0.0.1" })pb",
                    {},
                    "targets[0].probe: host \"127.0.0.1\" is an IPv4 address "
                    "but address_family is ADDRESS_FAMILY_IPV6"},
        InvalidCase{R"pb(defaults { address_family: ADDRESS_FAMILY_IPV4 })pb",
                    {"v6=[::1]:9"},
                    "--target #1 \"v6=[::1]:9\": host \"::1\" is an IPv6 "
                    "address but address_family is ADDRESS_FAMILY_IPV4"},
        // Thresholds.
        InvalidCase{R"pb(thresholds { degraded_loss_percent: 100.5 })pb",
                    {"a"},
                    "thresholds.degraded_loss_percent: must be between 0 and "
                    "100, got 100.5"},
        InvalidCase{R"pb(thresholds { degraded_loss_percent: -1 })pb",
                    {"a"},
                    "thresholds.degraded_loss_percent: must be between 0 and "
                    "100, got -1"},
        InvalidCase{R"pb(thresholds { down_after_failures: 0 })pb",
                    {"a"},
                    "thresholds.down_after_failures: must be between 1 and "
                    "1000000, got 0"},
        InvalidCase{R"pb(thresholds { stale_after_intervals: 0 })pb",
                    {"a"},
                    "thresholds.stale_after_intervals: must be between 1 and "
                    "1000000, got 0"},
        InvalidCase{R"pb(thresholds { stale_after_intervals: 1000001 })pb",
                    {"a"},
                    "thresholds.stale_after_intervals"}));

}  // namespace
}  // namespace latency
