#ifndef LATENCY_TESTS_TESTING_SUBPROCESS_H_
#define LATENCY_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace latency::testing {

// Subprocess runs a real program with stdout and stderr captured to a temp
// file, so integration tests can start the project's binaries and clients
// nobody here wrote (buf, curl, ping) exactly as a user would.
class Subprocess {
 public:
  // Starts argv[0] (searched in PATH). Returns nullopt when it cannot start.
  static std::optional<Subprocess> Start(const std::vector<std::string>& argv);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  ~Subprocess();  // SIGKILLs the process if it still runs.

  // Everything the process has written so far.
  std::string Output() const;

  // Polls the output until `needle` appears or `timeout` passes; returns the
  // line holding it, or nullopt.
  std::optional<std::string> WaitForOutput(const std::string& needle,
                                           absl::Duration timeout) const;

  void Signal(int sig) const;

  // Waits up to `timeout` for exit. Returns the exit code, 128+signal for a
  // signal, or nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);

  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, std::string output_path)
      : pid_(pid), output_path_(std::move(output_path)) {}

  pid_t pid_ = -1;
  std::string output_path_;
  bool reaped_ = false;
};

// Runs argv to completion (killed after `timeout`), returns exit code and
// output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(30));

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_SUBPROCESS_H_
