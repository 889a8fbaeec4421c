// --source_from=ec2: latency-server asks the EC2 instance metadata service
// (IMDSv2) for its Availability Zone and reports it as its source. A fake
// metadata service here behaves as EC2's does for IMDSv2: a GET without a
// session token from PUT /latest/api/token is refused with 401.
#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/subprocess.h"

namespace latency {
namespace {

using ::testing::HasSubstr;

class FakeMetadataService {
 public:
  FakeMetadataService() {
    server_.Put("/latest/api/token",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!req.has_header("X-aws-ec2-metadata-token-ttl-seconds")) {
                    res.status = 400;
                    return;
                  }
                  ++tokens_;
                  res.set_content("session-token", "text/plain");
                });
    server_.Get("/latest/meta-data/placement/availability-zone",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (req.get_header_value("X-aws-ec2-metadata-token") !=
                      "session-token") {
                    res.status = 401;  // IMDSv1 is off, as it should be
                    return;
                  }
                  res.set_content("eu-west-1b", "text/plain");
                });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound already: connections wait in the backlog until it listens.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeMetadataService() {
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const {
    return absl::StrCat("http://127.0.0.1:", port_);
  }
  int tokens() const { return tokens_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::atomic<int> tokens_{0};
  std::thread thread_;
};

TEST(VantageTest, SourceFromEc2IsTheAvailabilityZone) {
  FakeMetadataService metadata;
  std::string error;
  std::optional<testing::ServerProcess> server = testing::StartServer(
      {"--target=127.0.0.1", "--source_from=ec2",
       absl::StrCat("--ec2_metadata_endpoint=", metadata.endpoint())},
      &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_EQ(metadata.tokens(), 1);
  testing::CommandResult metrics =
      testing::RunCommand({"curl", "-s", server->http_url("/metrics")});
  EXPECT_THAT(metrics.output, HasSubstr("\"source\":\"eu-west-1b\""));
  EXPECT_THAT(server->process.Output(),
              HasSubstr("source eu-west-1b (EC2 instance metadata)"));
}

TEST(VantageTest, NoMetadataServiceIsAClearErrorAtStart) {
  // A port nothing listens on: connection refused at once.
  testing::CommandResult run = testing::RunCommand(
      {testing::ServerBinaryPath(), "--target=127.0.0.1", "--source_from=ec2",
       "--ec2_metadata_endpoint=http://127.0.0.1:1",
       "--http_listen=", "--grpc_listen="});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--source_from=ec2: instance metadata at "
                                    "http://127.0.0.1:1: no answer"));
  EXPECT_THAT(run.output, HasSubstr("hop limit"));
}

TEST(VantageTest, SourceAndSourceFromConflict) {
  testing::CommandResult run = testing::RunCommand(
      {testing::ServerBinaryPath(), "--target=127.0.0.1", "--source_from=ec2",
       "--source=rack12", "--http_listen=", "--grpc_listen="});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--source and --source_from: set one"));
  testing::CommandResult bad = testing::RunCommand(
      {testing::ServerBinaryPath(), "--target=127.0.0.1", "--source_from=gce",
       "--http_listen=", "--grpc_listen="});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("--source_from: \"gce\": want ec2"));
}

}  // namespace
}  // namespace latency
