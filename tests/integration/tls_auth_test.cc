// Transport security and auth of the real binaries, checked with clients
// nobody here wrote (buf curl, curl, openssl s_client) plus latencyctl:
// TLS and mTLS on the agent, TLS + bearer token on the query API and the
// HTTPS gateway, the prober as an mTLS client, certificate and token
// rotation on SIGHUP, and start-up errors that name the flag. Certificates
// are made at test time with the openssl CLI (tests/testing/test_pki.h).
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/test_pki.h"
#include "tests/testing/wait.h"

namespace latency {
namespace {

using ::latency::testing::AgentProcess;
using ::latency::testing::CommandResult;
using ::latency::testing::RunCommand;
using ::latency::testing::ServerProcess;
using ::latency::testing::TestPki;
using ::latency::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "integration-token-4f1c";

std::string HttpsUrl(int port, const std::string& path) {
  return absl::StrCat("https://127.0.0.1:", port, path);
}

// The certificate a fresh TLS connection to `port` gets, as openssl prints
// it: "subject=CN = server-1\nserial=1001".
std::string PeerCertificate(int port) {
  CommandResult r = RunCommand(
      {"sh", "-c",
       absl::StrCat("openssl s_client -connect 127.0.0.1:", port,
                    " -showcerts </dev/null 2>/dev/null | openssl x509 "
                    "-noout -subject -serial")},
      absl::Seconds(30));
  return r.output;
}

class TlsAuthBinaryTest : public ::testing::Test {
 protected:
  // One PKI, one mTLS agent and one server (TLS + token on both query
  // surfaces, probing the agent with a client certificate) for the suite.
  static void StartSuite() {
    std::string error;
    pki_ = new std::optional<TestPki>(TestPki::Create(&error));
    ASSERT_TRUE(pki_->has_value()) << error;
    ASSERT_TRUE(
        testing::WriteFile(Pki().Path("token"), absl::StrCat(kToken, "\n")));
    agent_ = new std::optional<AgentProcess>(
        testing::StartAgent({"--tls_cert=" + Pki().Cert("server"),
                             "--tls_key=" + Pki().Key("server"),
                             "--tls_client_ca=" + Pki().Cert("ca")},
                            &error));
    ASSERT_TRUE(agent_->has_value()) << error;
    server_ = new std::optional<ServerProcess>(testing::StartServer(
        {absl::StrCat("--target=lo=127.0.0.1:", (*agent_)->port),
         "--interval=200ms", "--report_interval=0",
         "--grpc_tls_cert=" + Pki().Cert("server"),
         "--grpc_tls_key=" + Pki().Key("server"),
         "--http_tls_cert=" + Pki().Cert("server"),
         "--http_tls_key=" + Pki().Key("server"),
         "--probe_tls_ca=" + Pki().Cert("ca"),
         "--probe_tls_cert=" + Pki().Cert("client"),
         "--probe_tls_key=" + Pki().Key("client"),
         "--auth_token_file=" + Pki().Path("token")},
        &error));
    ASSERT_TRUE(server_->has_value()) << error;
    // Healthy once both probes (gRPC over mTLS) have answered.
    bool ok = WaitUntil(
        [] {
          return absl::StrContains(
              Https({"-H", AuthHeader(),
                     HttpsUrl(Server().http_port, "/metrics")})
                  .second,
              "\"status\":\"ok\",\"target\":");  // overall, not a probe's
        },
        absl::Seconds(30));
    ASSERT_TRUE(ok) << Server().process.Output();
    setup_ok_ = true;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete agent_;
    delete pki_;
  }
  // The suite's processes start in the first test's SetUp, not in
  // SetUpTestSuite: gtest 1.12 marks every test of a suite whose
  // SetUpTestSuite failed SKIPPED, and ctest counts those as passed. Here a
  // failed start fails the first test with its reason, and every other test.
  void SetUp() override {
    if (!setup_attempted_) {
      setup_attempted_ = true;
      StartSuite();
    }
    ASSERT_TRUE(setup_ok_) << "suite setup failed (see the first test)";
  }

  static const TestPki& Pki() { return **pki_; }
  static ServerProcess& Server() { return **server_; }
  static AgentProcess& Agent() { return **agent_; }
  static std::string AuthHeader(const std::string& token = kToken) {
    return "Authorization: Bearer " + token;
  }

  // buf curl over gRPC; `args` hold the TLS flags, headers and URL.
  static CommandResult Buf(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {LATENCY_BUF_BINARY, "curl", "--protocol",
                                     "grpc"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }
  static std::string QueryUrl(const std::string& method) {
    return HttpsUrl(Server().grpc_port, "/latency.v1.LatencyService/" + method);
  }
  // curl --cacert ca.crt: status code and body.
  static std::pair<int, std::string> Https(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "-s", "--cacert", Pki().Cert("ca"), "-w",
                               "\n%{http_code}"});
    CommandResult r = RunCommand(args, absl::Seconds(30));
    size_t split = r.output.rfind('\n');
    if (split == std::string::npos) return {0, r.output};
    return {std::atoi(r.output.c_str() + split + 1), r.output.substr(0, split)};
  }
  static CommandResult Latencyctl(std::vector<std::string> args) {
    args.insert(args.begin(), testing::CliBinaryPath());
    return RunCommand(args, absl::Seconds(60));
  }

  static std::optional<TestPki>* pki_;
  static std::optional<AgentProcess>* agent_;
  static std::optional<ServerProcess>* server_;
  static bool setup_attempted_;
  static bool setup_ok_;  // StartSuite ran to its end
};

std::optional<TestPki>* TlsAuthBinaryTest::pki_ = nullptr;
std::optional<AgentProcess>* TlsAuthBinaryTest::agent_ = nullptr;
std::optional<ServerProcess>* TlsAuthBinaryTest::server_ = nullptr;
bool TlsAuthBinaryTest::setup_attempted_ = false;
bool TlsAuthBinaryTest::setup_ok_ = false;

// --- agent: TLS and mTLS
// -------------------------------------------------------

TEST_F(TlsAuthBinaryTest, MtlsAgentAnswersOnlyClientsWithACertificate) {
  std::string url = HttpsUrl(Agent().port, "/latency.v1.EchoService/Echo");
  CommandResult ok =
      Buf({"--cacert", Pki().Cert("ca"), "--cert", Pki().Cert("client"),
           "--key", Pki().Key("client"), "-d", R"({"sequence":"7"})", url});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("agentReceiveTimeNs"));

  CommandResult no_cert = Buf({"--cacert", Pki().Cert("ca"), url});
  EXPECT_NE(no_cert.exit_code, 0) << no_cert.output;
  CommandResult rogue =
      Buf({"--cacert", Pki().Cert("ca"), "--cert", Pki().Cert("rogue"), "--key",
           Pki().Key("rogue"), url});
  EXPECT_NE(rogue.exit_code, 0) << rogue.output;
  CommandResult plaintext = Buf({"--http2-prior-knowledge",
                                 absl::StrCat("http://127.0.0.1:", Agent().port,
                                              "/latency.v1.EchoService/Echo")});
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.output;

  CommandResult echo = Latencyctl(
      {"echo", Agent().address(), "--c=2", "--interval=50ms",
       "--tls_ca=" + Pki().Cert("ca"), "--tls_cert=" + Pki().Cert("client"),
       "--tls_key=" + Pki().Key("client")});
  EXPECT_EQ(echo.exit_code, 0) << echo.output;
  CommandResult echo_no_cert = Latencyctl(
      {"echo", Agent().address(), "--c=1", "--tls_ca=" + Pki().Cert("ca")});
  EXPECT_NE(echo_no_cert.exit_code, 0) << echo_no_cert.output;
}

TEST_F(TlsAuthBinaryTest, TlsAgentVerifiedByTheRightCaOnly) {
  std::string error;
  std::optional<AgentProcess> agent =
      testing::StartAgent({"--tls_cert=" + Pki().Cert("server"),
                           "--tls_key=" + Pki().Key("server")},
                          &error);
  ASSERT_TRUE(agent.has_value()) << error;
  CommandResult ok = Latencyctl(
      {"echo", agent->address(), "--c=1", "--tls_ca=" + Pki().Cert("ca")});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // The certificate's DNS name works as well as its IP address.
  CommandResult by_name =
      Latencyctl({"echo", absl::StrCat("localhost:", agent->port), "--c=1",
                  "--tls_ca=" + Pki().Cert("ca")});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.output;

  CommandResult wrong_ca = Latencyctl(
      {"echo", agent->address(), "--c=1", "--tls_ca=" + Pki().Cert("wrongca")});
  EXPECT_NE(wrong_ca.exit_code, 0);
  EXPECT_THAT(wrong_ca.output, HasSubstr("certificate verify failed"));
  CommandResult plaintext =
      Latencyctl({"echo", agent->address(), "--c=1", "--timeout=2s"});
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.output;
  CommandResult buf =
      Buf({"--cacert", Pki().Cert("ca"),
           HttpsUrl(agent->port, "/latency.v1.EchoService/Echo")});
  EXPECT_EQ(buf.exit_code, 0) << buf.output;
}

// --- query API: TLS + bearer token
// -----------------------------------------------

TEST_F(TlsAuthBinaryTest, QueryApiNeedsTheToken) {
  std::string ca = Pki().Cert("ca");
  CommandResult ok =
      Buf({"--cacert", ca, "-H", AuthHeader(), QueryUrl("GetLatency")});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("\"status\": \"ok\""));
  // The prober reached the mTLS agent.
  EXPECT_THAT(ok.output, HasSubstr("\"grpcStatus\": \"ok\""));

  CommandResult missing = Buf({"--cacert", ca, QueryUrl("GetLatency")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("unauthenticated"));
  CommandResult wrong =
      Buf({"--cacert", ca, "-H", AuthHeader("nope"), QueryUrl("ListTargets")});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.output, HasSubstr("unauthenticated"));
  EXPECT_THAT(wrong.output, Not(HasSubstr("\"targets\"")));

  CommandResult plaintext =
      Buf({"--http2-prior-knowledge", "-H", AuthHeader(),
           absl::StrCat("http://", Server().grpc_address(),
                        "/latency.v1.LatencyService/GetLatency")});
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.output;
  CommandResult wrong_ca = Buf({"--cacert", Pki().Cert("wrongca"), "-H",
                                AuthHeader(), QueryUrl("GetLatency")});
  EXPECT_NE(wrong_ca.exit_code, 0) << wrong_ca.output;
}

TEST_F(TlsAuthBinaryTest, HealthAndReflectionNeedNoToken) {
  std::string ca = Pki().Cert("ca");
  CommandResult health =
      Buf({"--cacert", ca,
           HttpsUrl(Server().grpc_port, "/grpc.health.v1.Health/Check")});
  ASSERT_EQ(health.exit_code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr("\"SERVING\""));
  CommandResult services = Buf(
      {"--cacert", ca, "--list-services", HttpsUrl(Server().grpc_port, "")});
  ASSERT_EQ(services.exit_code, 0) << services.output;
  EXPECT_THAT(services.output, HasSubstr("latency.v1.LatencyService"));
}

TEST_F(TlsAuthBinaryTest, LatencyctlSendsTheToken) {
  std::string ca = "--tls_ca=" + Pki().Cert("ca");
  std::string server = "--server=" + Server().grpc_address();
  CommandResult ok =
      Latencyctl({"status", server, ca, "--token_file=" + Pki().Path("token")});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("lo"));

  CommandResult no_token = Latencyctl({"targets", server, ca});
  EXPECT_EQ(no_token.exit_code, 2) << no_token.output;
  EXPECT_THAT(no_token.output, HasSubstr("UNAUTHENTICATED"));
  CommandResult no_tls =
      Latencyctl({"targets", server, "--token_file=" + Pki().Path("token")});
  EXPECT_EQ(no_tls.exit_code, 2) << no_tls.output;
  EXPECT_THAT(no_tls.output, HasSubstr("refusing to send the token in clear"));
}

// --- HTTPS gateway + bearer token
// --------------------------------------------------

TEST_F(TlsAuthBinaryTest, HttpsGatewayNeedsTheTokenExceptForHealth) {
  int port = Server().http_port;
  auto [code, body] = Https({"-D", "-", HttpsUrl(port, "/metrics")});
  EXPECT_EQ(code, 401);
  EXPECT_THAT(body, HasSubstr("WWW-Authenticate: Bearer"));
  // UNAUTHENTICATED (16) in the google.rpc.Status shape.
  EXPECT_THAT(body, HasSubstr(R"({"code":16,"message":"missing bearer token)"));
  EXPECT_EQ(
      Https({"-H", AuthHeader("nope"), HttpsUrl(port, "/v1/targets")}).first,
      401);
  EXPECT_EQ(Https({HttpsUrl(port, "/no/such/route")}).first, 401);

  auto [ok_code, ok_body] =
      Https({"-H", AuthHeader(), HttpsUrl(port, "/metrics")});
  EXPECT_EQ(ok_code, 200);
  EXPECT_THAT(ok_body, ::testing::StartsWith("{\"latency_ms\":"));
  auto [prom_code, prom_body] =
      Https({"-H", AuthHeader(), "-H", "Accept: text/plain",
             HttpsUrl(port, "/metrics")});
  EXPECT_EQ(prom_code, 200);
  EXPECT_THAT(prom_body, HasSubstr("latency_rtt_seconds"));

  EXPECT_EQ(Https({HttpsUrl(port, "/healthz")}).first, 200);
  EXPECT_EQ(Https({HttpsUrl(port, "/readyz")}).first, 200);
  // HTTPS only; and the certificate must verify.
  CommandResult plain =
      RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                  absl::StrCat("http://127.0.0.1:", port, "/healthz")});
  EXPECT_THAT(plain.output, Not(HasSubstr("200")));
  CommandResult untrusted =
      RunCommand({"curl", "-s", "--cacert", Pki().Cert("wrongca"),
                  HttpsUrl(port, "/healthz")});
  EXPECT_NE(untrusted.exit_code, 0);
}

// --- rotation
// ------------------------------------------------------------------------

TEST_F(TlsAuthBinaryTest, AgentRotatesItsCertificateOnSighup) {
  std::string cert = Pki().Path("agent-live.crt");
  std::string key = Pki().Path("agent-live.key");
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), cert));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server"), key));
  std::string error;
  std::optional<AgentProcess> agent =
      testing::StartAgent({"--tls_cert=" + cert, "--tls_key=" + key}, &error);
  ASSERT_TRUE(agent.has_value()) << error;
  EXPECT_THAT(PeerCertificate(agent->port), HasSubstr("serial=1001"));

  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server2"), cert));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server2"), key));
  agent->process.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::string peer = PeerCertificate(agent->port);
        return absl::StrContains(peer, "CN = server-2") &&
               absl::StrContains(peer, "serial=1002");
      },
      absl::Seconds(20)))
      << PeerCertificate(agent->port) << agent->process.Output();

  // A bad rotation (certificate and key do not match) keeps the current one.
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), cert));
  agent->process.Signal(SIGHUP);
  EXPECT_TRUE(
      agent->process
          .WaitForOutput("keeping the current certificate", absl::Seconds(20))
          .has_value())
      << agent->process.Output();
  EXPECT_THAT(agent->process.Output(), HasSubstr("does not match"));
  EXPECT_THAT(PeerCertificate(agent->port), HasSubstr("serial=1002"));
  CommandResult echo = Latencyctl(
      {"echo", agent->address(), "--c=1", "--tls_ca=" + Pki().Cert("ca")});
  EXPECT_EQ(echo.exit_code, 0) << echo.output;
}

TEST_F(TlsAuthBinaryTest, ServerRotatesCertificatesAndTokenOnSighup) {
  std::string cert = Pki().Path("server-live.crt");
  std::string key = Pki().Path("server-live.key");
  std::string token = Pki().Path("server-live.token");
  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server"), cert));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server"), key));
  ASSERT_TRUE(testing::WriteFile(token, "first-token"));
  std::string error;
  std::optional<ServerProcess> server = testing::StartServer(
      {absl::StrCat("--target=lo=127.0.0.1:", Agent().port),
       "--report_interval=0", "--grpc_tls_cert=" + cert,
       "--grpc_tls_key=" + key, "--http_tls_cert=" + cert,
       "--http_tls_key=" + key, "--auth_token_file=" + token},
      &error);
  ASSERT_TRUE(server.has_value()) << error;
  EXPECT_THAT(PeerCertificate(server->grpc_port), HasSubstr("serial=1001"));
  EXPECT_THAT(PeerCertificate(server->http_port), HasSubstr("serial=1001"));
  std::string targets = HttpsUrl(server->http_port, "/v1/targets");
  EXPECT_EQ(Https({"-H", AuthHeader("first-token"), targets}).first, 200);

  ASSERT_TRUE(testing::CopyFile(Pki().Cert("server2"), cert));
  ASSERT_TRUE(testing::CopyFile(Pki().Key("server2"), key));
  ASSERT_TRUE(testing::WriteFile(token, "second-token\n"));
  server->process.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(PeerCertificate(server->grpc_port),
                                 "serial=1002") &&
               absl::StrContains(PeerCertificate(server->http_port),
                                 "serial=1002");
      },
      absl::Seconds(20)))
      << server->process.Output();
  EXPECT_EQ(Https({"-H", AuthHeader("second-token"), targets}).first, 200);
  EXPECT_EQ(Https({"-H", AuthHeader("first-token"), targets}).first, 401);
  CommandResult buf = Buf(
      {"--cacert", Pki().Cert("ca"), "-H", AuthHeader("second-token"),
       HttpsUrl(server->grpc_port, "/latency.v1.LatencyService/ListTargets")});
  EXPECT_EQ(buf.exit_code, 0) << buf.output;
}

// --- bad configuration
// ------------------------------------------------------------

TEST_F(TlsAuthBinaryTest, UnusableFilesFailAtStartNamingTheFlag) {
  ASSERT_TRUE(testing::WriteFile(Pki().Path("empty.token"), "\n"));
  std::string missing = Pki().Path("missing.pem");
  std::string agent = testing::AgentBinaryPath();
  std::string server = testing::ServerBinaryPath();
  std::vector<std::string> server_base = {server, "--target=127.0.0.1",
                                          "--grpc_listen=127.0.0.1:0",
                                          "--http_listen=127.0.0.1:0"};
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  };
  std::vector<Case> cases = {
      {{agent, "--listen=127.0.0.1:0", "--tls_cert=" + missing,
        "--tls_key=" + Pki().Key("server")},
       "--tls_cert: cannot read " + missing},
      {{agent, "--listen=127.0.0.1:0", "--tls_cert=" + Pki().Cert("server"),
        "--tls_key=" + Pki().Key("server2")},
       "--tls_key: " + Pki().Key("server2") + " does not match"},
      {{agent, "--listen=127.0.0.1:0", "--tls_client_ca=" + Pki().Cert("ca")},
       "--tls_client_ca: needs --tls_cert and --tls_key"},
      {{"--grpc_tls_cert=" + Pki().Cert("server")},
       "--grpc_tls_key: required with --grpc_tls_cert"},
      {{"--http_tls_cert=" + Pki().Cert("server"),
        "--http_tls_key=" + Pki().Key("client")},
       "--http_tls_key: " + Pki().Key("client") + " does not match"},
      {{"--grpc_tls_cert=" + Pki().Cert("server"),
        "--grpc_tls_key=" + Pki().Key("server"),
        "--grpc_tls_client_ca=" + missing},
       "--grpc_tls_client_ca: cannot read"},
      {{"--auth_token_file=" + missing}, "--auth_token_file: cannot read"},
      {{"--auth_token_file=" + Pki().Path("empty.token")}, "holds no token"},
      {{"--probe_tls_ca=" + missing}, "--probe_tls_ca: cannot read"},
      {{"--probe_tls_cert=" + Pki().Cert("client")},
       "--probe_tls_key: required with --probe_tls_cert"},
  };
  for (Case& c : cases) {
    if (c.argv[0] != agent) {
      c.argv.insert(c.argv.begin(), server_base.begin(), server_base.end());
    }
    CommandResult r = RunCommand(c.argv, absl::Seconds(30));
    EXPECT_EQ(r.exit_code, 2) << c.argv.back() << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.argv.back();
  }
  CommandResult cli = Latencyctl({"status", "--tls_ca=" + missing});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_THAT(cli.output, HasSubstr("--tls_ca: cannot read"));
  CommandResult cli_token =
      Latencyctl({"status", "--auth_token_file=" + missing});
  EXPECT_EQ(cli_token.exit_code, 2);
  EXPECT_THAT(cli_token.output, HasSubstr("--auth_token_file: cannot read"));
}

}  // namespace
}  // namespace latency
