#include "common/logging.h"

#include <mutex>

#include "common/utf8.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace latency {
namespace {

std::mutex& LoggingMutex() {
  static std::mutex* const mu = new std::mutex();
  return *mu;
}

// Messages carry text from peers (an agent's error) and from users (config
// values), so the raw message (%v) is never printed: %* is the message with
// control characters escaped ("\n", "\x1b"), so one record stays one line,
// and %& is it as the inside of a JSON string (quotes, backslashes, control
// characters escaped; bytes that are not UTF-8 become U+FFFD).
constexpr char kTextPattern[] = "%Y-%m-%d %H:%M:%S.%e %l [%n] %*";
constexpr char kJsonPattern[] =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","msg":"%&"})";

void Append(absl::string_view text, spdlog::memory_buf_t& dest) {
  dest.append(text.data(), text.data() + text.size());
}

void AppendControlEscape(unsigned char c, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  char escaped[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
  switch (c) {
    case '\n':
      Append("\\n", dest);
      return;
    case '\r':
      Append("\\r", dest);
      return;
    case '\t':
      Append("\\t", dest);
      return;
    default:
      dest.append(escaped, escaped + 4);
  }
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

class TextMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      unsigned char byte = static_cast<unsigned char>(c);
      if (IsControl(byte)) {
        AppendControlEscape(byte, dest);
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextMessageFlag>();
  }
};

class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    absl::string_view payload(msg.payload.data(), msg.payload.size());
    std::string valid;
    if (!IsValidUtf8(payload)) {
      valid = ToValidUtf8(payload);
      payload = valid;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : payload) {
      unsigned char byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (c == '\n' || c == '\r' || c == '\t') {
        AppendControlEscape(byte, dest);
      } else if (IsControl(byte)) {
        char escaped[6] = {
            '\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 0xf]};
        dest.append(escaped, escaped + 6);
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakePatternFormatter(const char* pattern) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<TextMessageFlag>('*');
  formatter->add_flag<JsonMessageFlag>('&');
  formatter->set_pattern(pattern);
  return formatter;
}

std::unique_ptr<spdlog::formatter>& CurrentFormatter() {
  static auto* const formatter = new std::unique_ptr<spdlog::formatter>(
      MakePatternFormatter(kTextPattern));
  return *formatter;
}

}  // namespace

absl::StatusOr<std::unique_ptr<spdlog::formatter>> MakeLogFormatter(
    const std::string& format) {
  if (format == "text") {
    return MakePatternFormatter(kTextPattern);
  }
  if (format == "json") {
    return MakePatternFormatter(kJsonPattern);
  }
  return absl::InvalidArgumentError("--log_format: unknown format '" + format +
                                    "' (want text or json)");
}

absl::Status SetupLogging(const std::string& level, const std::string& format) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        "--log_level: unknown level '" + level +
        "' (want trace, debug, info, warn, error, critical or off)");
  }
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter =
      MakeLogFormatter(format);
  if (!formatter.ok()) return formatter.status();
  std::lock_guard<std::mutex> lock(LoggingMutex());
  CurrentFormatter() = (*formatter)->clone();
  spdlog::set_level(parsed);
  spdlog::set_formatter(std::move(*formatter));
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  std::lock_guard<std::mutex> lock(LoggingMutex());
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_logger_mt(component);
  logger->set_formatter(CurrentFormatter()->clone());
  logger->set_level(spdlog::get_level());
  return logger;
}

}  // namespace latency
