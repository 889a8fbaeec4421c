#ifndef LATENCY_TESTS_TESTING_AGENT_PROCESS_H_
#define LATENCY_TESTS_TESTING_AGENT_PROCESS_H_

#include <optional>
#include <string>
#include <vector>

#include "tests/testing/subprocess.h"

namespace latency::testing {

// Path of the built latency-agent binary (set by CMake).
std::string AgentBinaryPath();

// A real latency-agent started on 127.0.0.1 port 0; port() is read back from
// its startup log line.
struct AgentProcess {
  Subprocess process;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// Starts the agent with `extra_flags`; nullopt (with the log in `error`) when
// it does not come up within a generous bound.
std::optional<AgentProcess> StartAgent(
    const std::vector<std::string>& extra_flags, std::string* error);

// Path of the built latency-server / latencyctl binaries (set by CMake).
std::string ServerBinaryPath();
std::string CliBinaryPath();

// A real latency-server with its query surfaces on 127.0.0.1 port 0; the
// ports are read back from its startup log.
struct ServerProcess {
  Subprocess process;
  int grpc_port = 0;
  int http_port = 0;
  std::string grpc_address() const {
    return "127.0.0.1:" + std::to_string(grpc_port);
  }
  std::string http_url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(http_port) + path;
  }
};

// Starts latency-server on loopback ports with `extra_flags`; `wrapper`, if
// any, is the command that runs it (its argv then follows), e.g. unshare.
std::optional<ServerProcess> StartServer(
    const std::vector<std::string>& extra_flags, std::string* error,
    const std::vector<std::string>& wrapper = {});

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_AGENT_PROCESS_H_
