#ifndef LATENCY_COMMON_LOGGING_H_
#define LATENCY_COMMON_LOGGING_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spdlog/formatter.h"
#include "spdlog/spdlog.h"

// Debian's Abseil has its own string_view type (not std::string_view), which
// fmt cannot print by itself; status messages are absl::string_view.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view value, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(
        fmt::string_view(value.data(), value.size()), ctx);
  }
};

namespace latency {

// Configures spdlog for a binary: every logger writes to stderr, as text
// ("2026-01-02 03:04:05.678 info [agent] message") or as one JSON object per
// line. `level` is one of trace, debug, info, warn, error, critical, off.
// Returns InvalidArgument naming the bad value.
absl::Status SetupLogging(const std::string& level, const std::string& format);

// The formatter SetupLogging installs for `format` (text or json), so tests
// can drive messages through exactly what the binaries print.
absl::StatusOr<std::unique_ptr<spdlog::formatter>> MakeLogFormatter(
    const std::string& format);

// Returns the named component logger ("agent", "prober", ...), creating it
// with the configured sinks on first use. Libraries log through this and
// never write to stdout.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

}  // namespace latency

#endif  // LATENCY_COMMON_LOGGING_H_
