#include "common/logging.h"

#include <mutex>

#include "spdlog/sinks/stdout_sinks.h"

namespace latency {
namespace {

std::mutex& LoggingMutex() {
  static std::mutex* const mu = new std::mutex();
  return *mu;
}

// Pattern flags: %Y-%m-%dT%H:%M:%S.%e is local ISO time, %l the level, %n the
// logger name, %v the message. The JSON form escapes nothing in %v, so
// messages must not contain quotes; the project's messages are plain text.
constexpr char kTextPattern[] = "%Y-%m-%d %H:%M:%S.%e %l [%n] %v";
constexpr char kJsonPattern[] =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","msg":"%v"})";

std::string& CurrentPattern() {
  static std::string* const pattern = new std::string(kTextPattern);
  return *pattern;
}

}  // namespace

absl::Status SetupLogging(const std::string& level, const std::string& format) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        "--log_level: unknown level '" + level +
        "' (want trace, debug, info, warn, error, critical or off)");
  }
  std::string pattern;
  if (format == "text") {
    pattern = kTextPattern;
  } else if (format == "json") {
    pattern = kJsonPattern;
  } else {
    return absl::InvalidArgumentError("--log_format: unknown format '" +
                                      format + "' (want text or json)");
  }
  std::lock_guard<std::mutex> lock(LoggingMutex());
  CurrentPattern() = pattern;
  spdlog::set_level(parsed);
  spdlog::set_pattern(pattern);
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  std::lock_guard<std::mutex> lock(LoggingMutex());
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_logger_mt(component);
  logger->set_pattern(CurrentPattern());
  logger->set_level(spdlog::get_level());
  return logger;
}

}  // namespace latency
