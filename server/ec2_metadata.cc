#include "server/ec2_metadata.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace latency {
namespace {

constexpr char kHint[] =
    " (not on EC2, the metadata service turned off, or, in a container, "
    "an IMDSv2 hop limit of 1: set it to 2)";

}  // namespace

absl::StatusOr<std::string> Ec2AvailabilityZone(const std::string& endpoint,
                                                absl::Duration timeout) {
  httplib::Client client(endpoint);
  const auto seconds = absl::ToInt64Seconds(timeout);
  const auto micros = absl::ToInt64Microseconds(timeout) % 1'000'000;
  client.set_connection_timeout(seconds, micros);
  client.set_read_timeout(seconds, micros);
  client.set_write_timeout(seconds, micros);
  const std::string where = absl::StrCat("instance metadata at ", endpoint);

  httplib::Result token = client.Put(
      "/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}}, "",
      "text/plain");
  if (!token) {
    return absl::UnavailableError(absl::StrCat(
        where, ": no answer (", httplib::to_string(token.error()), ")", kHint));
  }
  if (token->status != 200 || token->body.empty()) {
    return absl::UnavailableError(absl::StrCat(
        where, ": PUT /latest/api/token answered ", token->status, kHint));
  }
  constexpr char kPath[] = "/latest/meta-data/placement/availability-zone";
  httplib::Result zone =
      client.Get(kPath, {{"X-aws-ec2-metadata-token", token->body}});
  if (!zone) {
    return absl::UnavailableError(absl::StrCat(
        where, ": no answer (", httplib::to_string(zone.error()), ")", kHint));
  }
  const std::string name(absl::StripAsciiWhitespace(zone->body));
  if (zone->status != 200 || name.empty()) {
    return absl::UnavailableError(
        absl::StrCat(where, ": GET ", kPath, " answered ", zone->status));
  }
  return name;
}

}  // namespace latency
