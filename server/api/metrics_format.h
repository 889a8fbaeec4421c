#ifndef LATENCY_SERVER_API_METRICS_FORMAT_H_
#define LATENCY_SERVER_API_METRICS_FORMAT_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace latency {

// What GET /metrics answers with.
enum class MetricsFormat {
  kJson,            // the seed's {"latency_ms":..,"status":..} (GetLatency)
  kPrometheusText,  // text/plain; version=0.0.4
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0
};

// The ?format= parameter: "json", "prometheus" or "openmetrics"; nullopt for
// anything else (the caller answers 400).
std::optional<MetricsFormat> ParseMetricsFormat(absl::string_view format);

// Content negotiation on an Accept header (RFC 9110 section 12.5.1). Each
// format takes the q-value of the most specific media range that matches it
// (application/json; application/openmetrics-text; text/plain; then type/*
// and */*), q=0 excluding it. JSON wins unless OpenMetrics or Prometheus
// text is strictly preferred by q-value, so that
//   "application/json, text/plain, */*"  (axios, Angular)  -> JSON
//   "*/*", no header at all (curl, requests)               -> JSON
//   Prometheus' scrape header (openmetrics first)          -> OpenMetrics
//   "text/plain;version=0.0.4"                             -> Prometheus text
// Between OpenMetrics and text at the same q, OpenMetrics. nullopt when the
// header excludes all three (the caller answers 406).
std::optional<MetricsFormat> NegotiateMetricsFormat(absl::string_view accept);

}  // namespace latency

#endif  // LATENCY_SERVER_API_METRICS_FORMAT_H_
