#include "server/api/metrics_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

using ::testing::Optional;

TEST(ParseMetricsFormatTest, TheThreeNamesAndNothingElse) {
  EXPECT_THAT(ParseMetricsFormat("json"), Optional(MetricsFormat::kJson));
  EXPECT_THAT(ParseMetricsFormat("prometheus"),
              Optional(MetricsFormat::kPrometheusText));
  EXPECT_THAT(ParseMetricsFormat("openmetrics"),
              Optional(MetricsFormat::kOpenMetrics));
  EXPECT_EQ(ParseMetricsFormat(""), std::nullopt);
  EXPECT_EQ(ParseMetricsFormat("JSON"), std::nullopt);
  EXPECT_EQ(ParseMetricsFormat("xml"), std::nullopt);
}

TEST(NegotiateMetricsFormatTest, JsonUnlessSomethingElseIsStrictlyPreferred) {
  EXPECT_THAT(NegotiateMetricsFormat(""), Optional(MetricsFormat::kJson));
  EXPECT_THAT(NegotiateMetricsFormat("*/*"), Optional(MetricsFormat::kJson));
  EXPECT_THAT(NegotiateMetricsFormat("application/json, text/plain, */*"),
              Optional(MetricsFormat::kJson));
  EXPECT_THAT(NegotiateMetricsFormat("text/plain, application/json"),
              Optional(MetricsFormat::kJson));  // equal q: JSON
  EXPECT_THAT(NegotiateMetricsFormat("text/*;q=0.9, application/*;q=0.8"),
              Optional(MetricsFormat::kPrometheusText));
  EXPECT_THAT(NegotiateMetricsFormat("text/plain"),
              Optional(MetricsFormat::kPrometheusText));
  EXPECT_THAT(NegotiateMetricsFormat("application/json;q=0.4,text/plain;q=.5"),
              Optional(MetricsFormat::kPrometheusText));
}

TEST(NegotiateMetricsFormatTest, TheMostSpecificRangeDecides) {
  // */* would allow JSON at 1, but application/json says 0.
  EXPECT_THAT(NegotiateMetricsFormat("*/*, application/json;q=0"),
              Optional(MetricsFormat::kOpenMetrics));
  // application/* at 0 excludes JSON and OpenMetrics, text/* stays.
  EXPECT_THAT(NegotiateMetricsFormat("application/*;q=0, text/*;q=0.1"),
              Optional(MetricsFormat::kPrometheusText));
  // Parameters other than q do not matter; case does not either.
  EXPECT_THAT(
      NegotiateMetricsFormat("Application/OpenMetrics-Text; version=1.0.0"),
      Optional(MetricsFormat::kOpenMetrics));
}

TEST(NegotiateMetricsFormatTest, PrometheusScrapeHeaders) {
  EXPECT_THAT(NegotiateMetricsFormat(
                  "application/openmetrics-text;version=1.0.0,application/"
                  "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0."
                  "0.4;q=0.5,*/*;q=0.1"),
              Optional(MetricsFormat::kOpenMetrics));
  EXPECT_THAT(NegotiateMetricsFormat("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
              Optional(MetricsFormat::kPrometheusText));
}

TEST(NegotiateMetricsFormatTest, NothingAcceptable) {
  EXPECT_EQ(NegotiateMetricsFormat("image/png"), std::nullopt);
  EXPECT_EQ(NegotiateMetricsFormat("*/*;q=0"), std::nullopt);
  // A malformed q reads as 0, not as 1.
  EXPECT_EQ(NegotiateMetricsFormat("application/json;q=abc"), std::nullopt);
  EXPECT_EQ(NegotiateMetricsFormat(",,;"), std::nullopt);
}

}  // namespace
}  // namespace latency
