#ifndef LATENCY_SERVER_API_HTTP_STATUS_H_
#define LATENCY_SERVER_API_HTTP_STATUS_H_

#include "absl/status/status.h"

namespace latency {

// The HTTP status for a gRPC/absl status code, as google/rpc/code.proto and
// grpc-gateway map them: INVALID_ARGUMENT, FAILED_PRECONDITION and
// OUT_OF_RANGE 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND
// 404, ALREADY_EXISTS and ABORTED 409, RESOURCE_EXHAUSTED 429, CANCELLED
// 499, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, the rest
// 500 (OK is 200).
int HttpStatusFor(absl::StatusCode code);

// The gRPC code that an error the HTTP layer itself raises (no handler
// ran: unknown route, wrong method, oversized request, missing token) goes
// out with in the google.rpc.Status-shaped body: the code whose HTTP status
// it is (404 NOT_FOUND, 401 UNAUTHENTICATED, ...), else the nearest one
// (405 UNIMPLEMENTED, 406 INVALID_ARGUMENT, 413/414 RESOURCE_EXHAUSTED; any
// other 4xx INVALID_ARGUMENT, 5xx INTERNAL).
absl::StatusCode StatusCodeForHttp(int http_status);

}  // namespace latency

#endif  // LATENCY_SERVER_API_HTTP_STATUS_H_
