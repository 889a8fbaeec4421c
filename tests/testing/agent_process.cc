#include "tests/testing/agent_process.h"

#include <regex>

namespace latency::testing {

std::string AgentBinaryPath() { return LATENCY_AGENT_BINARY; }

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
