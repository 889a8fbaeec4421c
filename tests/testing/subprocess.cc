#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/time/clock.h"

extern char** environ;

namespace latency::testing {

std::optional<Subprocess> Subprocess::Start(
    const std::vector<std::string>& argv) {
  char path_template[] = "/tmp/latency-subprocess-XXXXXX";
  int fd = mkstemp(path_template);
  if (fd < 0) return std::nullopt;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  // The test binary may block signals, or run under nohup (SIGHUP ignored);
  // the child must get default handling, as from a terminal.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGHUP);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fd);
  if (rc != 0) {
    unlink(path_template);
    return std::nullopt;
  }
  return Subprocess(pid, path_template);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      output_path_(std::move(other.output_path_)),
      reaped_(other.reaped_) {
  other.pid_ = -1;
  other.reaped_ = true;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!output_path_.empty()) unlink(output_path_.c_str());
}

std::string Subprocess::Output() const {
  std::ifstream file(output_path_);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::optional<std::string> Subprocess::WaitForOutput(
    const std::string& needle, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string output = Output();
    size_t at = output.find(needle);
    if (at != std::string::npos) {
      size_t begin = output.rfind('\n', at);
      begin = begin == std::string::npos ? 0 : begin + 1;
      size_t end = output.find('\n', at);
      return output.substr(begin, end == std::string::npos ? end : end - begin);
    }
    if (absl::Now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Subprocess::Signal(int sig) const {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (reaped_) return std::nullopt;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (absl::Now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout) {
  CommandResult result;
  std::optional<Subprocess> process = Subprocess::Start(argv);
  if (!process) {
    result.output = "cannot start " + argv[0];
    return result;
  }
  std::optional<int> code = process->Wait(timeout);
  result.output = process->Output();
  result.exit_code = code.value_or(-1);
  return result;
}

}  // namespace latency::testing
