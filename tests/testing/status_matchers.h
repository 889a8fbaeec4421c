#ifndef LATENCY_TESTS_TESTING_STATUS_MATCHERS_H_
#define LATENCY_TESTS_TESTING_STATUS_MATCHERS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace latency::testing {

// abseil 20220623 has no status_matchers.h; these are the two we need.
inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status: " << status;
  return status.ok();
}

MATCHER_P2(StatusIs, code, message_substring,
           "has code " + absl::StatusCodeToString(code) +
               " and message with '" + std::string(message_substring) + "'") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status: " << status;
  return status.code() == code &&
         status.message().find(message_substring) != absl::string_view::npos;
}

}  // namespace latency::testing

#endif  // LATENCY_TESTS_TESTING_STATUS_MATCHERS_H_
