#include "server/config/dns_sd.h"

#include <sys/socket.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// DNS in memory: answers by name (and family, for addresses); a name
// missing is NOT_FOUND, one in `failing` is UNAVAILABLE.
class FakeDns final : public DnsResolver {
 public:
  absl::StatusOr<std::vector<std::string>> LookupAddresses(
      const std::string& name, int family) override {
    ++lookups;
    if (failing.contains(name)) return absl::UnavailableError("timed out");
    auto it = addresses.find({name, family});
    if (it == addresses.end()) return absl::NotFoundError("no such name");
    return it->second;
  }
  absl::StatusOr<std::vector<SrvRecord>> LookupSrv(
      const std::string& name) override {
    ++lookups;
    if (failing.contains(name)) return absl::UnavailableError("SERVFAIL");
    auto it = srv.find(name);
    if (it == srv.end()) return absl::NotFoundError("no such name");
    return it->second;
  }
  std::map<std::pair<std::string, int>, std::vector<std::string>> addresses;
  std::map<std::string, std::vector<SrvRecord>> srv;
  std::set<std::string> failing;
  int lookups = 0;
};

v1::DnsSdConfig Lookup(absl::string_view flag) {
  absl::StatusOr<v1::DnsSdConfig> lookup = ParseDnsSdFlag(flag);
  EXPECT_THAT(lookup.status(), IsOk());
  return lookup.value_or(v1::DnsSdConfig());
}

// "name host:port" of each target.
std::vector<std::string> Targets(const std::vector<DiscoveredTarget>& found) {
  std::vector<std::string> out;
  for (const DiscoveredTarget& t : found) {
    out.push_back(absl::StrCat(
        t.target.name(), " ", t.target.host(), ":",
        t.target.has_grpc_port() ? t.target.grpc_port() : kDefaultGrpcPort));
  }
  return out;
}

TEST(ParseDnsSdFlagTest, TypeNameAndPort) {
  v1::DnsSdConfig srv = Lookup("srv:_latency._tcp.agents.example.com");
  EXPECT_EQ(srv.type(), v1::DNS_RECORD_TYPE_SRV);
  EXPECT_EQ(srv.name(), "_latency._tcp.agents.example.com");
  EXPECT_FALSE(srv.has_port());

  v1::DnsSdConfig a = Lookup("a:agents.monitoring.svc.cluster.local:50061");
  EXPECT_EQ(a.type(), v1::DNS_RECORD_TYPE_A);
  EXPECT_EQ(a.name(), "agents.monitoring.svc.cluster.local");
  EXPECT_EQ(a.port(), 50061u);

  v1::DnsSdConfig aaaa = Lookup("AAAA:agents.example.com.");
  EXPECT_EQ(aaaa.type(), v1::DNS_RECORD_TYPE_AAAA);
  EXPECT_EQ(aaaa.name(), "agents.example.com.");
  EXPECT_FALSE(aaaa.has_port());
  EXPECT_EQ(DnsSdName(a), "a:agents.monitoring.svc.cluster.local:50061");
  EXPECT_EQ(DnsSdName(srv), "srv:_latency._tcp.agents.example.com");
}

TEST(ParseDnsSdFlagTest, BadValuesSayWhatIsExpected) {
  EXPECT_THAT(ParseDnsSdFlag("agents.example.com"),
              StatusIs(kInvalid,
                       "--dns_sd \"agents.example.com\": "
                       "want srv:NAME, a:NAME[:PORT] or "
                       "aaaa:NAME[:PORT]"));
  EXPECT_THAT(ParseDnsSdFlag("mx:example.com"),
              StatusIs(kInvalid, "want srv:NAME"));
  EXPECT_THAT(ParseDnsSdFlag("srv:_x._tcp.example.com:50051"),
              StatusIs(kInvalid, "SRV records carry their port"));
  EXPECT_THAT(ParseDnsSdFlag("a:agents:0"),
              StatusIs(kInvalid, "port 0: want 1-65535"));
  EXPECT_THAT(ParseDnsSdFlag("a:agents:http"),
              StatusIs(kInvalid, "port \"http\": want 1-65535"));
  EXPECT_THAT(ParseDnsSdFlag("a:"), StatusIs(kInvalid, "empty name"));
  EXPECT_THAT(ParseDnsSdFlag("a:bad..name"),
              StatusIs(kInvalid, "not a DNS name"));
  EXPECT_THAT(ParseDnsSdFlag("a:bad name"),
              StatusIs(kInvalid, "not a DNS name"));
  EXPECT_THAT(ParseDnsSdFlag("a:" + std::string(64, 'x') + ".com"),
              StatusIs(kInvalid, "not a DNS name"));
}

TEST(ValidateDnsSdTest, ConfigEntriesAreCheckedLikeFlags) {
  v1::DnsSdConfig lookup;
  EXPECT_THAT(ValidateDnsSd("dns_sd[0]", lookup),
              StatusIs(kInvalid, "dns_sd[0].name: empty name (required)"));
  lookup.set_name("_x._tcp.example.com");
  lookup.set_port(50051);
  EXPECT_THAT(ValidateDnsSd("dns_sd[0]", lookup),
              StatusIs(kInvalid, "dns_sd[0].port: SRV records"));
  lookup.set_type(v1::DNS_RECORD_TYPE_A);
  EXPECT_THAT(ValidateDnsSd("dns_sd[0]", lookup), IsOk());
  lookup.set_port(70000);
  EXPECT_THAT(ValidateDnsSd("dns_sd[0]", lookup),
              StatusIs(kInvalid, "dns_sd[0].port: port 70000"));
}

TEST(DnsDiscoveryTest, AddressesBecomeTargetsNamedByAddress) {
  FakeDns dns;
  dns.addresses[{"agents.svc", AF_INET}] = {"10.0.0.9", "10.0.0.7"};
  dns.addresses[{"agents.svc", AF_INET6}] = {"fd00::7"};
  v1::DnsSdConfig v4 = Lookup("a:agents.svc:50061");
  (*v4.mutable_labels())["az"] = "b";
  DnsDiscovery discovery({v4, Lookup("aaaa:agents.svc")}, &dns);

  DnsDiscovery::Result result = discovery.Refresh();
  EXPECT_TRUE(result.changed);
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_THAT(Targets(result.targets),
              ElementsAre("10.0.0.7 10.0.0.7:50061", "10.0.0.9 10.0.0.9:50061",
                          "fd00::7 fd00::7:50051"));
  EXPECT_THAT(result.targets[0].target.labels(),
              UnorderedElementsAre(Pair("az", "b")));
  EXPECT_THAT(result.targets[2].target.labels(), IsEmpty());
  EXPECT_EQ(result.targets[0].origin,
            "dns_sd a:agents.svc:50061: \"10.0.0.7\"");
}

TEST(DnsDiscoveryTest, SrvRecordsBecomeTargetsNamedByHost) {
  FakeDns dns;
  dns.srv["_latency._tcp.fleet"] = {{"b.fleet", 50051, 10, 5},
                                    {"a.fleet", 50061, 0, 0},
                                    {"c.fleet", 50051, 0, 0},
                                    {"c.fleet", 50052, 0, 0}};
  DnsDiscovery discovery({Lookup("srv:_latency._tcp.fleet")}, &dns);
  // Every record is probed, whatever its priority; a host with two ports
  // (two agents) gets both, told apart by the port.
  EXPECT_THAT(Targets(discovery.Refresh().targets),
              ElementsAre("a.fleet a.fleet:50061", "b.fleet b.fleet:50051",
                          "c.fleet:50051 c.fleet:50051",
                          "c.fleet:50052 c.fleet:50052"));
}

TEST(DnsDiscoveryTest, RotatedAnswersAreNoChange) {
  FakeDns dns;
  dns.addresses[{"agents", AF_INET}] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
  DnsDiscovery discovery({Lookup("a:agents")}, &dns);
  EXPECT_TRUE(discovery.Refresh().changed);
  dns.addresses[{"agents", AF_INET}] = {"10.0.0.3", "10.0.0.1", "10.0.0.2",
                                        "10.0.0.1"};
  DnsDiscovery::Result again = discovery.Refresh();
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.targets.size(), 3u);

  dns.addresses[{"agents", AF_INET}] = {"10.0.0.3", "10.0.0.4"};
  DnsDiscovery::Result moved = discovery.Refresh();
  EXPECT_TRUE(moved.changed);
  EXPECT_THAT(Targets(moved.targets), ElementsAre("10.0.0.3 10.0.0.3:50051",
                                                  "10.0.0.4 10.0.0.4:50051"));
}

TEST(DnsDiscoveryTest, AFailedLookupKeepsItsLastTargets) {
  FakeDns dns;
  dns.addresses[{"agents", AF_INET}] = {"10.0.0.1"};
  dns.srv["_l._tcp.other"] = {{"x.other", 50051, 0, 0}};
  DnsDiscovery discovery({Lookup("a:agents"), Lookup("srv:_l._tcp.other")},
                         &dns);
  discovery.Refresh();
  dns.failing = {"agents"};
  dns.srv["_l._tcp.other"].push_back({"y.other", 50051, 0, 0});
  DnsDiscovery::Result result = discovery.Refresh();
  EXPECT_TRUE(result.changed);  // the SRV lookup moved on
  EXPECT_THAT(Targets(result.targets),
              ElementsAre("10.0.0.1 10.0.0.1:50051", "x.other x.other:50051",
                          "y.other y.other:50051"));
  EXPECT_THAT(result.errors,
              ElementsAre("dns_sd a:agents: lookup failed: timed out "
                          "(keeping its last 1 targets)"));
}

TEST(DnsDiscoveryTest, AFailedFirstLookupHasNoTargetsAndSaysSo) {
  FakeDns dns;
  dns.failing = {"agents"};
  DnsDiscovery discovery({Lookup("a:agents")}, &dns);
  DnsDiscovery::Result result = discovery.Refresh();
  EXPECT_THAT(result.targets, IsEmpty());
  EXPECT_THAT(result.errors,
              ElementsAre("dns_sd a:agents: lookup failed: timed out"));
}

TEST(DnsDiscoveryTest, ANameThatIsGoneHasNoTargets) {
  FakeDns dns;
  dns.addresses[{"agents", AF_INET}] = {"10.0.0.1"};
  DnsDiscovery discovery({Lookup("a:agents")}, &dns);
  EXPECT_EQ(discovery.Refresh().targets.size(), 1u);
  dns.addresses.clear();
  DnsDiscovery::Result result = discovery.Refresh();
  EXPECT_TRUE(result.changed);
  EXPECT_THAT(result.targets, IsEmpty());
  EXPECT_THAT(result.errors,
              ElementsAre("dns_sd a:agents: no records (no such name)"));
  EXPECT_FALSE(discovery.Refresh().changed);
}

TEST(DnsDiscoveryTest, DiscoveredTargetsGoThroughBuildSettings) {
  FakeDns dns;
  dns.srv["_l._tcp.fleet"] = {
      {"web-1.fleet", 50051, 0, 0},
      {std::string(40, 'w') + "." + std::string(30, 'w') + ".fleet", 50051, 0,
       0}};
  DnsDiscovery discovery({Lookup("srv:_l._tcp.fleet")}, &dns);
  v1::ServerConfig config;
  *config.add_dns_sd() = Lookup("srv:_l._tcp.fleet");
  absl::StatusOr<ServerSettings> settings =
      BuildSettings(config, {"web-1.fleet"}, {}, discovery.Refresh().targets);
  ASSERT_THAT(settings.status(), IsOk());
  ASSERT_EQ(settings->targets.size(), 1u);  // the flag's
  ASSERT_EQ(settings->skipped.size(), 2u);
  EXPECT_THAT(settings->skipped[0],
              HasSubstr("target name \"web-1.fleet\" is taken by --target #1"));
  EXPECT_THAT(settings->skipped[1], HasSubstr("must be 1 to 64 characters"));
}

TEST(BuildSettingsDnsSdTest, ALookupAloneIsAConfigurationAndBadOnesFail) {
  v1::ServerConfig config;
  *config.add_dns_sd() = Lookup("srv:_l._tcp.fleet");
  EXPECT_THAT(BuildSettings(config, {}, {}, {}).status(), IsOk());
  config.add_dns_sd()->set_name("bad name");
  EXPECT_THAT(BuildSettings(config, {}, {}, {}).status(),
              StatusIs(kInvalid, "dns_sd[1].name: \"bad name\""));
}

// A DNS answer in wire format, built by hand: header, the question, then
// SRV (or other) records whose names point back at the question's.
class AnswerBuilder {
 public:
  explicit AnswerBuilder(const std::string& question) {
    Put16(0x1234);  // id
    Put16(0x8180);  // response, recursion desired and available, NOERROR
    Put16(1);       // one question
    answer_count_at_ = bytes_.size();
    Put16(0);  // answers, set by Add
    Put16(0);
    Put16(0);
    PutName(question);
    Put16(33);  // SRV
    Put16(1);   // IN
  }
  // An SRV record for the question (a compression pointer to offset 12).
  AnswerBuilder& AddSrv(uint16_t priority, uint16_t weight, uint16_t port,
                        const std::string& target) {
    AnswerBuilder scratch;
    scratch.Put16(priority);
    scratch.Put16(weight);
    scratch.Put16(port);
    scratch.PutName(target);
    return AddRecord(33, scratch.bytes_);
  }
  AnswerBuilder& AddRecord(uint16_t type, const std::string& rdata) {
    bytes_ += "\xc0\x0c";  // the question's name
    Put16(type);
    Put16(1);
    Put16(0);
    Put16(300);  // TTL
    Put16(static_cast<uint16_t>(rdata.size()));
    bytes_ += rdata;
    ++answers_;
    bytes_[answer_count_at_] = static_cast<char>(answers_ >> 8);
    bytes_[answer_count_at_ + 1] = static_cast<char>(answers_ & 0xff);
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  AnswerBuilder() = default;
  void Put16(uint16_t v) {
    bytes_ += static_cast<char>(v >> 8);
    bytes_ += static_cast<char>(v & 0xff);
  }
  void PutName(const std::string& name) {
    for (absl::string_view label :
         absl::StrSplit(name, '.', absl::SkipEmpty())) {
      bytes_ += static_cast<char>(label.size());
      bytes_.append(label.data(), label.size());
    }
    bytes_ += '\0';
  }
  std::string bytes_;
  size_t answer_count_at_ = 0;
  int answers_ = 0;
};

absl::StatusOr<std::vector<SrvRecord>> Parse(const std::string& bytes) {
  return ParseSrvAnswer(reinterpret_cast<const unsigned char*>(bytes.data()),
                        bytes.size());
}

TEST(ParseSrvAnswerTest, RecordsWithTheirPortsPrioritiesAndWeights) {
  AnswerBuilder answer("_latency._tcp.fleet.test");
  answer
      .AddRecord(5, std::string("\x03"
                                "srv\xc0\x0c",
                                6))  // a CNAME: skipped
      .AddSrv(10, 60, 50051, "agent-1.fleet.test")
      .AddSrv(20, 0, 50061, "agent-2.fleet.test")
      .AddSrv(0, 0, 0, "");  // "." : no such service
  absl::StatusOr<std::vector<SrvRecord>> records = Parse(answer.bytes());
  ASSERT_THAT(records.status(), IsOk());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].host, "agent-1.fleet.test");
  EXPECT_EQ((*records)[0].port, 50051);
  EXPECT_EQ((*records)[0].priority, 10);
  EXPECT_EQ((*records)[0].weight, 60);
  EXPECT_EQ((*records)[1].host, "agent-2.fleet.test");
  EXPECT_EQ((*records)[1].port, 50061);
}

TEST(ParseSrvAnswerTest, TruncatedAndMalformedMessagesAreErrors) {
  AnswerBuilder answer("_l._tcp.fleet");
  answer.AddSrv(0, 0, 50051, "agent-1.fleet");
  const std::string& whole = answer.bytes();
  ASSERT_THAT(Parse(whole).status(), IsOk());
  // Every prefix of the message is refused or parsed, never read past.
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(Parse(whole.substr(0, n)).ok()) << "prefix of " << n;
  }
  // An SRV record too short for its fixed fields.
  AnswerBuilder shorty("_l._tcp.fleet");
  shorty.AddRecord(33, std::string("\0\0\0", 3));
  EXPECT_THAT(Parse(shorty.bytes()),
              StatusIs(absl::StatusCode::kDataLoss, "SRV record"));
  // A target name that points forward into nothing.
  AnswerBuilder pointer("_l._tcp.fleet");
  pointer.AddRecord(33, std::string("\0\0\0\0\xc3\x50\xc3\xff", 8));
  EXPECT_THAT(Parse(pointer.bytes()),
              StatusIs(absl::StatusCode::kDataLoss, "SRV record"));
}

}  // namespace
}  // namespace latency
