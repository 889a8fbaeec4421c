#include "server/api/metrics_format.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace latency {
namespace {

// How well one media range matches a media type: 3 exact, 2 type/*, 1 */*,
// 0 not at all.
int Specificity(absl::string_view range, absl::string_view type) {
  if (absl::EqualsIgnoreCase(range, type)) return 3;
  if (range == "*/*") return 1;
  if (absl::EndsWith(range, "/*")) {
    const absl::string_view prefix = range.substr(0, range.size() - 1);
    return absl::StartsWithIgnoreCase(type, prefix) ? 2 : 0;
  }
  return 0;
}

}  // namespace

std::optional<MetricsFormat> ParseMetricsFormat(absl::string_view format) {
  if (format == "json") return MetricsFormat::kJson;
  if (format == "prometheus") return MetricsFormat::kPrometheusText;
  if (format == "openmetrics") return MetricsFormat::kOpenMetrics;
  return std::nullopt;
}

std::optional<MetricsFormat> NegotiateMetricsFormat(absl::string_view accept) {
  if (absl::StripAsciiWhitespace(accept).empty()) return MetricsFormat::kJson;
  // In order of preference at equal q.
  constexpr std::array<std::pair<MetricsFormat, absl::string_view>, 3> kOffers =
      {{{MetricsFormat::kJson, "application/json"},
        {MetricsFormat::kOpenMetrics, "application/openmetrics-text"},
        {MetricsFormat::kPrometheusText, "text/plain"}}};
  std::array<int, 3> best_specificity{};
  std::array<double, 3> q{};
  for (absl::string_view element : absl::StrSplit(accept, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(element, ';');
    const absl::string_view range = absl::StripAsciiWhitespace(parts[0]);
    if (range.empty()) continue;
    double weight = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&param, "q=") ||
          absl::ConsumePrefix(&param, "Q=")) {
        if (!absl::SimpleAtod(param, &weight) || !(weight >= 0)) weight = 0;
        weight = std::min(weight, 1.0);
      }
    }
    for (size_t i = 0; i < kOffers.size(); ++i) {
      const int specificity = Specificity(range, kOffers[i].second);
      // The most specific range decides; among equals, the best q (Prometheus
      // lists openmetrics twice, at 1 and 0.75).
      if (specificity > best_specificity[i] ||
          (specificity > 0 && specificity == best_specificity[i] &&
           weight > q[i])) {
        best_specificity[i] = specificity;
        q[i] = weight;
      }
    }
  }
  size_t chosen = 0;
  for (size_t i = 1; i < kOffers.size(); ++i) {
    if (q[i] > q[chosen]) chosen = i;
  }
  if (q[chosen] <= 0) return std::nullopt;
  return kOffers[chosen].first;
}

}  // namespace latency
