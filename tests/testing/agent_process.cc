#include "tests/testing/agent_process.h"

#include <regex>

namespace latency::testing {

std::string AgentBinaryPath() { return LATENCY_AGENT_BINARY; }
std::string ServerBinaryPath() { return LATENCY_SERVER_BINARY; }
std::string CliBinaryPath() { return LATENCY_CLI_BINARY; }

namespace {

// Reads "<needle> N" from the process's log.
std::optional<int> PortFromLog(const Subprocess& process,
                               const std::string& needle) {
  std::optional<std::string> line =
      process.WaitForOutput(needle, absl::Seconds(30));
  if (!line) return std::nullopt;
  std::smatch match;
  std::regex pattern(needle + " ([0-9]+)");
  if (!std::regex_search(*line, match, pattern)) return std::nullopt;
  return std::stoi(match[1].str());
}

}  // namespace

std::optional<ServerProcess> StartServer(
    const std::vector<std::string>& extra_flags, std::string* error,
    const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  for (const std::string& arg :
       {ServerBinaryPath(), std::string("--grpc_listen=127.0.0.1:0"),
        std::string("--http_listen=127.0.0.1:0")}) {
    argv.push_back(arg);
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  std::optional<Subprocess> process = Subprocess::Start(argv);
  if (!process) {
    *error = "cannot start " + ServerBinaryPath();
    return std::nullopt;
  }
  std::optional<int> grpc = PortFromLog(*process, "gRPC query service on port");
  std::optional<int> http = PortFromLog(*process, "HTTP gateway on port");
  if (!grpc || !http) {
    *error = "server did not report its ports; output:\n" + process->Output();
    return std::nullopt;
  }
  return ServerProcess{std::move(*process), *grpc, *http};
}

std::optional<AgentProcess> StartAgent(
    const std::vector<std::string>& extra_flags, std::string* error) {
  std::vector<std::string> argv = {AgentBinaryPath(), "--listen=127.0.0.1:0"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  std::optional<Subprocess> process = Subprocess::Start(argv);
  if (!process) {
    *error = "cannot start " + AgentBinaryPath();
    return std::nullopt;
  }
  std::optional<std::string> line =
      process->WaitForOutput("serving on port", absl::Seconds(30));
  std::smatch match;
  static const std::regex kPort("serving on port ([0-9]+)");
  if (!line || !std::regex_search(*line, match, kPort)) {
    *error = "agent did not report its port; output:\n" + process->Output();
    return std::nullopt;
  }
  return AgentProcess{std::move(*process), std::stoi(match[1].str())};
}

}  // namespace latency::testing
