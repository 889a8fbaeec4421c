#include "server/api/http_status.h"

#include <utility>

#include "gtest/gtest.h"

namespace latency {
namespace {

TEST(HttpStatusForTest, EveryCodeAsGoogleRpcMapsIt) {
  const std::pair<absl::StatusCode, int> table[] = {
      {absl::StatusCode::kOk, 200},
      {absl::StatusCode::kCancelled, 499},
      {absl::StatusCode::kUnknown, 500},
      {absl::StatusCode::kInvalidArgument, 400},
      {absl::StatusCode::kDeadlineExceeded, 504},
      {absl::StatusCode::kNotFound, 404},
      {absl::StatusCode::kAlreadyExists, 409},
      {absl::StatusCode::kPermissionDenied, 403},
      {absl::StatusCode::kResourceExhausted, 429},
      {absl::StatusCode::kFailedPrecondition, 400},
      {absl::StatusCode::kAborted, 409},
      {absl::StatusCode::kOutOfRange, 400},
      {absl::StatusCode::kUnimplemented, 501},
      {absl::StatusCode::kInternal, 500},
      {absl::StatusCode::kUnavailable, 503},
      {absl::StatusCode::kDataLoss, 500},
      {absl::StatusCode::kUnauthenticated, 401},
  };
  for (auto [code, http] : table) {
    EXPECT_EQ(HttpStatusFor(code), http) << absl::StatusCodeToString(code);
  }
  EXPECT_EQ(HttpStatusFor(static_cast<absl::StatusCode>(99)), 500);
}

TEST(StatusCodeForHttpTest, RoundTripsWhereTheMappingIsOneToOne) {
  for (absl::StatusCode code :
       {absl::StatusCode::kNotFound, absl::StatusCode::kUnauthenticated,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnavailable,
        absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kCancelled,
        absl::StatusCode::kResourceExhausted,
        absl::StatusCode::kUnimplemented}) {
    EXPECT_EQ(StatusCodeForHttp(HttpStatusFor(code)), code)
        << absl::StatusCodeToString(code);
  }
}

TEST(StatusCodeForHttpTest, HttpLayerErrorsGetTheNearestCode) {
  EXPECT_EQ(StatusCodeForHttp(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(405), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(StatusCodeForHttp(406), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(413), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeForHttp(414), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeForHttp(418), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(502), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace latency
