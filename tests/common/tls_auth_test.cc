// In-process tests of common/tls and common/auth: certificate checks, the
// reloading certificate store, bearer tokens, and the gRPC credentials they
// build (TLS, mTLS and token auth over real loopback sockets). Certificates
// come from the openssl CLI at test time (tests/testing/test_pki.h).
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "agent/agent_server.h"
#include "agent/echo_service.h"
#include "common/auth.h"
#include "common/health_service.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "latency/v1/echo.grpc.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::IsOk;
using ::latency::testing::StatusIs;
using ::latency::testing::TestPki;
using ::latency::testing::WaitUntil;
using ::latency::testing::WriteFile;
using ::testing::HasSubstr;

class TlsAuthTest : public ::testing::Test {
 protected:
  // Records why the PKI could not be made instead of failing here: gtest
  // 1.12 marks every test of a suite whose SetUpTestSuite failed SKIPPED,
  // and ctest counts those as passed. SetUp fails each test instead.
  static void SetUpTestSuite() {
    setup_error_ = new std::string;
    pki_ = new std::optional<TestPki>(TestPki::Create(setup_error_));
    if (pki_->has_value()) setup_error_->clear();
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete setup_error_;
  }
  void SetUp() override {
    // No PKI (openssl missing or failing) is a failure, never a skip.
    ASSERT_TRUE(pki_->has_value()) << "no test PKI: " << *setup_error_;
  }
  static const TestPki& Pki() { return **pki_; }

  static TlsFiles ServerFiles(const std::string& name,
                              const std::string& client_ca = "") {
    return ServerTlsFiles("--tls_", Pki().Cert(name), Pki().Key(name),
                          client_ca);
  }

  static std::optional<TestPki>* pki_;
  static std::string* setup_error_;
};

std::optional<TestPki>* TlsAuthTest::pki_ = nullptr;
std::string* TlsAuthTest::setup_error_ = nullptr;

// --- certificate checks ------------------------------------------------------

TEST_F(TlsAuthTest, LoadsAMatchingPair) {
  auto set = LoadCertificates(ServerFiles("server"), /*server=*/true);
  ASSERT_THAT(set, IsOk());
  EXPECT_THAT((*set)->Describe(), HasSubstr("CN=server-1"));
  EXPECT_THAT((*set)->Describe(), HasSubstr("serial 1001"));
  EXPECT_FALSE((*set)->Expired());
}

TEST_F(TlsAuthTest, RejectsBadFilesNamingTheFlag) {
  TlsFiles missing = ServerFiles("server");
  missing.cert = Pki().Path("nope.crt");
  EXPECT_THAT(
      LoadCertificates(missing, true),
      StatusIs(absl::StatusCode::kInvalidArgument, "--tls_cert: cannot read"));

  TlsFiles mismatched = ServerFiles("server");
  mismatched.key = Pki().Key("server2");
  EXPECT_THAT(LoadCertificates(mismatched, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "does not match the certificate in --tls_cert"));

  ASSERT_TRUE(WriteFile(Pki().Path("garbage.pem"), "not a certificate\n"));
  TlsFiles garbage = ServerFiles("server");
  garbage.cert = Pki().Path("garbage.pem");
  EXPECT_THAT(
      LoadCertificates(garbage, true),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "--tls_cert: " + garbage.cert + " holds no PEM certificate"));
  TlsFiles garbage_key = ServerFiles("server");
  garbage_key.key = Pki().Path("garbage.pem");
  EXPECT_THAT(LoadCertificates(garbage_key, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--tls_key: " + garbage_key.key + " holds no"));

  TlsFiles no_key = ServerFiles("server");
  no_key.key.clear();
  EXPECT_THAT(LoadCertificates(no_key, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--tls_key: required with --tls_cert"));

  TlsFiles ca_only = ServerTlsFiles("--grpc_tls_", "", "", Pki().Cert("ca"));
  EXPECT_THAT(LoadCertificates(ca_only, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--grpc_tls_client_ca: needs --grpc_tls_cert"));

  TlsFiles client =
      ClientTlsFiles("--probe_tls_", false, Pki().Path("x"), "", "");
  EXPECT_THAT(LoadCertificates(client, false),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--probe_tls_ca: cannot read"));
  EXPECT_THAT(MakeChannelCredentials(client),
              StatusIs(absl::StatusCode::kInvalidArgument, "--probe_tls_ca"));
}

// --- reloading
// ------------------------------------------------------------------

TEST_F(TlsAuthTest, ReloadSwapsAGoodSetAndKeepsTheOldOnABadOne) {
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), Pki().Path("r.crt")));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server"), Pki().Path("r.key")));
  TlsFiles files =
      ServerTlsFiles("--tls_", Pki().Path("r.crt"), Pki().Path("r.key"), "");
  auto certs = ServerCertificates::Create(files, "test", absl::ZeroDuration());
  ASSERT_THAT(certs, IsOk());
  uint64_t generation = 99;
  EXPECT_THAT((*certs)->Current(&generation)->Describe(),
              HasSubstr("serial 1001"));
  EXPECT_EQ(generation, 0u);

  EXPECT_THAT((*certs)->Reload(), IsOk());  // unchanged
  (*certs)->Current(&generation);
  EXPECT_EQ(generation, 0u);

  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server2"), Pki().Path("r.crt")));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server2"), Pki().Path("r.key")));
  EXPECT_THAT((*certs)->Reload(), IsOk());
  EXPECT_THAT((*certs)->Current(&generation)->Describe(),
              HasSubstr("serial 1002"));
  EXPECT_EQ(generation, 1u);

  // Half a rotation: the new certificate with the old key.
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), Pki().Path("r.crt")));
  EXPECT_THAT((*certs)->Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument, "does not match"));
  EXPECT_THAT((*certs)->Current(&generation)->Describe(),
              HasSubstr("serial 1002"));
  EXPECT_EQ(generation, 1u);
}

TEST_F(TlsAuthTest, PollingPicksUpChangedFiles) {
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), Pki().Path("p.crt")));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server"), Pki().Path("p.key")));
  TlsFiles files =
      ServerTlsFiles("--tls_", Pki().Path("p.crt"), Pki().Path("p.key"), "");
  auto certs =
      ServerCertificates::Create(files, "test", absl::Milliseconds(20));
  ASSERT_THAT(certs, IsOk());
  // The key first, then the certificate: the poller may see the mismatched
  // half-way state, which must not stick.
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server2"), Pki().Path("p.key")));
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server2"), Pki().Path("p.crt")));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains((*certs)->Current()->Describe(),
                                 "serial 1002");
      },
      absl::Seconds(20)));
}

// --- bearer tokens
// --------------------------------------------------------------

TEST_F(TlsAuthTest, TokenFileIsTrimmedAndChecked) {
  std::string path = Pki().Path("token");
  ASSERT_TRUE(WriteFile(path, "  s3cret-token\n"));
  EXPECT_EQ(ReadTokenFile(path, "--token_file").value_or(""), "s3cret-token");

  ASSERT_TRUE(WriteFile(path, "\n \n"));
  EXPECT_THAT(ReadTokenFile(path, "--token_file"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--token_file: " + path + " holds no token"));
  ASSERT_TRUE(WriteFile(path, "two words"));
  EXPECT_THAT(ReadTokenFile(path, "--token_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "spaces"));
  EXPECT_THAT(ReadTokenFile(Pki().Path("none"), "--auth_token_file"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--auth_token_file: cannot read"));
}

TEST_F(TlsAuthTest, BearerCheckAcceptsOnlyTheExactToken) {
  std::string path = Pki().Path("auth_token");
  ASSERT_TRUE(WriteFile(path, "abc123\n"));
  auto auth = BearerTokenAuth::FromFile(path);
  ASSERT_THAT(auth, IsOk());
  EXPECT_TRUE((*auth)->Check("Bearer abc123"));
  EXPECT_TRUE((*auth)->Check("bearer abc123"));
  EXPECT_TRUE((*auth)->Check("BEARER abc123 "));
  EXPECT_FALSE((*auth)->Check(""));
  EXPECT_FALSE((*auth)->Check("abc123"));
  EXPECT_FALSE((*auth)->Check("Bearer "));
  EXPECT_FALSE((*auth)->Check("Bearer abc12"));
  EXPECT_FALSE((*auth)->Check("Bearer abc1234"));
  EXPECT_FALSE((*auth)->Check("Basic abc123"));
  EXPECT_FALSE((*auth)->Check("Bearerabc123"));

  ASSERT_TRUE(WriteFile(path, "next-token"));
  EXPECT_THAT((*auth)->Reload(), IsOk());
  EXPECT_TRUE((*auth)->Check("Bearer next-token"));
  EXPECT_FALSE((*auth)->Check("Bearer abc123"));

  ASSERT_TRUE(WriteFile(path, ""));
  EXPECT_THAT((*auth)->Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds no token"));
  EXPECT_TRUE((*auth)->Check("Bearer next-token"));  // kept
}

// Rotation without an outage: the file holds the current token and the next
// one, a line each; the server accepts both until the old line goes.
TEST_F(TlsAuthTest, BearerCheckAcceptsTheCurrentAndTheNextToken) {
  std::string path = Pki().Path("rotating_token");
  ASSERT_TRUE(WriteFile(path, "old-token\n"));
  auto auth = BearerTokenAuth::FromFile(path);
  ASSERT_THAT(auth, IsOk());
  ASSERT_TRUE(WriteFile(path, "old-token\nnew-token\n"));
  EXPECT_THAT((*auth)->Reload(), IsOk());
  EXPECT_TRUE((*auth)->Check("Bearer old-token"));
  EXPECT_TRUE((*auth)->Check("Bearer new-token"));
  EXPECT_FALSE((*auth)->Check("Bearer other"));
  EXPECT_FALSE((*auth)->Check("Bearer old-token\nnew-token"));
  ASSERT_TRUE(WriteFile(path, "new-token\n"));
  EXPECT_THAT((*auth)->Reload(), IsOk());
  EXPECT_FALSE((*auth)->Check("Bearer old-token"));
  EXPECT_TRUE((*auth)->Check("Bearer new-token"));
  // A client reading the file sends the first (current) token.
  ASSERT_TRUE(WriteFile(path, "cur\nnext\n"));
  absl::StatusOr<std::string> current =
      ReadTokenFile(path, "--auth_token_file");
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(*current, "cur");
  ASSERT_TRUE(WriteFile(path, "a\nb\nc\n"));
  EXPECT_THAT(
      ReadTokenFile(path, "--auth_token_file"),
      StatusIs(absl::StatusCode::kInvalidArgument, "more than two tokens"));
}

TEST(AuthExemptTest, HealthAndReflectionOnly) {
  EXPECT_TRUE(IsAuthExemptMethod("/grpc.health.v1.Health/Check"));
  EXPECT_TRUE(IsAuthExemptMethod("/grpc.health.v1.Health/Watch"));
  EXPECT_TRUE(IsAuthExemptMethod(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(IsAuthExemptMethod("/latency.v1.LatencyService/GetLatency"));
  EXPECT_FALSE(IsAuthExemptMethod("/latency.v1.EchoService/Echo"));
  EXPECT_FALSE(IsAuthExemptMethod("/grpc.health.v1.HealthX/Check"));
  EXPECT_FALSE(IsAuthExemptMethod(""));
}

// --- gRPC over loopback ------------------------------------------------------

grpc::Status Echo(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& authorization = "") {
  auto stub = v1::EchoService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!authorization.empty()) {
    context.AddMetadata("authorization", authorization);
  }
  v1::EchoResponse response;
  return stub->Echo(&context, v1::EchoRequest(), &response);
}

std::shared_ptr<grpc::Channel> Channel(int port, const TlsFiles& files) {
  auto credentials = MakeChannelCredentials(files);
  EXPECT_THAT(credentials, IsOk());
  return grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port),
      credentials.ok() ? *credentials : grpc::InsecureChannelCredentials());
}

TEST_F(TlsAuthTest, AgentServesTlsAndMtls) {
  testing::FakeClock clock;
  AgentOptions options;
  options.listen = "127.0.0.1:0";
  options.tls = ServerFiles("server", Pki().Cert("ca"));
  options.tls_poll_interval = absl::ZeroDuration();
  auto agent = AgentServer::Start(options, clock);
  ASSERT_THAT(agent, IsOk());
  int port = (*agent)->port();
  auto client = [&](const std::string& ca, const std::string& name) {
    return ClientTlsFiles("--tls_", false, Pki().Cert(ca),
                          name.empty() ? "" : Pki().Cert(name),
                          name.empty() ? "" : Pki().Key(name));
  };
  EXPECT_TRUE(Echo(Channel(port, client("ca", "client"))).ok());
  EXPECT_EQ(Echo(Channel(port, client("ca", ""))).error_code(),
            grpc::StatusCode::UNAVAILABLE);  // no client certificate
  EXPECT_EQ(Echo(Channel(port, client("ca", "rogue"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);  // client cert from another CA
  EXPECT_EQ(Echo(Channel(port, client("wrongca", "client"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);  // server cert not trusted
  EXPECT_EQ(Echo(Channel(port, TlsFiles())).error_code(),
            grpc::StatusCode::UNAVAILABLE);  // plaintext
}

// One CA signs agents and clients (README's example): with a SAN allow-list
// only the listed client identities get in, not an agent's certificate.
TEST_F(TlsAuthTest, ClientSanAllowListRefusesOtherCertificatesOfTheSameCa) {
  testing::FakeClock clock;
  EchoServiceImpl echo(clock, AgentIdentity{"h", "v", 1 << 20, ""});
  HealthService health;
  health.SetStatus("", grpc::health::v1::HealthCheckResponse::SERVING);
  auto certs = ServerCertificates::Create(
      ServerFiles("server", Pki().Cert("ca")), "test", absl::ZeroDuration());
  ASSERT_THAT(certs, IsOk());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      "127.0.0.1:0",
      MakeServerCredentials(*certs, nullptr, {"client", "other.example"}),
      &port);
  builder.RegisterService(&echo);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto client = [&](const std::string& name) {
    return Channel(port, ClientTlsFiles("--tls_", false, Pki().Cert("ca"),
                                        Pki().Cert(name), Pki().Key(name)));
  };
  EXPECT_TRUE(Echo(client("client")).ok());     // SAN DNS:client is listed
  grpc::Status agent = Echo(client("server"));  // same CA, SAN not listed
  EXPECT_EQ(agent.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(agent.error_message(), HasSubstr("--grpc_tls_client_san"));
  server->Shutdown();
}

// Token auth also works without TLS (e.g. on loopback): the processor sits
// on plaintext credentials too.
TEST_F(TlsAuthTest, TokenAuthOnPlaintextExemptsHealth) {
  std::string path = Pki().Path("plain_token");
  ASSERT_TRUE(WriteFile(path, "tok"));
  auto auth = BearerTokenAuth::FromFile(path);
  ASSERT_THAT(auth, IsOk());
  testing::FakeClock clock;
  EchoServiceImpl echo(clock, AgentIdentity{"h", "v", 1 << 20, ""});
  HealthService health;
  health.SetStatus("", grpc::health::v1::HealthCheckResponse::SERVING);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(nullptr, *auth),
                           &port);
  builder.RegisterService(&echo);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto channel = Channel(port, TlsFiles());

  grpc::Status missing = Echo(channel);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("missing bearer token"));
  EXPECT_EQ(Echo(channel, "Bearer nope").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Echo(channel, "Bearer tok").ok());

  auto health_stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(
      health_stub
          ->Check(&context, grpc::health::v1::HealthCheckRequest(), &response)
          .ok());
  health.Shutdown();
  server->Shutdown();
}

}  // namespace
}  // namespace latency
