#ifndef LATENCY_SERVER_EC2_METADATA_H_
#define LATENCY_SERVER_EC2_METADATA_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace latency {

// The Availability Zone of the EC2 instance this runs on ("eu-west-1a",
// which names the region too), from the instance metadata service with
// IMDSv2: a session token (PUT /latest/api/token), then
// /latest/meta-data/placement/availability-zone with it. `endpoint` is
// "http://169.254.169.254" on EC2 (tests point it elsewhere). Each request
// gives up after `timeout`. Errors are UNAVAILABLE with a message that says
// what to check (not on EC2, metadata turned off, the token hop limit in a
// container).
absl::StatusOr<std::string> Ec2AvailabilityZone(const std::string& endpoint,
                                                absl::Duration timeout);

}  // namespace latency

#endif  // LATENCY_SERVER_EC2_METADATA_H_
