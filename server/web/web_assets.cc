#include "server/web/web_assets.h"

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace latency {

const char kDashboardCsp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

namespace {

bool EtagMatches(absl::string_view if_none_match, absl::string_view etag) {
  for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
    tag = absl::StripAsciiWhitespace(tag);
    absl::ConsumePrefix(&tag, "W/");
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

}  // namespace

WebResponse ServeWebAsset(absl::string_view name,
                          absl::string_view if_none_match) {
  if (name.empty()) name = "index.html";
  WebResponse response;
  response.headers["Content-Security-Policy"] = kDashboardCsp;
  response.headers["X-Content-Type-Options"] = "nosniff";
  response.headers["Referrer-Policy"] = "no-referrer";
  for (const WebAsset& asset : EmbeddedWebAssets()) {
    if (asset.name != name) continue;
    response.headers["ETag"] = std::string(asset.etag);
    // The page itself is revalidated every time so a new binary's assets
    // are picked up; assets are revalidated too (they keep their names) but
    // cost only a 304.
    response.headers["Cache-Control"] = "no-cache";
    if (!if_none_match.empty() && EtagMatches(if_none_match, asset.etag)) {
      response.status = 304;
      return response;
    }
    response.status = 200;
    response.headers["Content-Type"] = std::string(asset.content_type);
    response.body = asset.body;
    return response;
  }
  return response;
}

}  // namespace latency
