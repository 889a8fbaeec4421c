#ifndef LATENCY_SERVER_WEB_WEB_ASSETS_H_
#define LATENCY_SERVER_WEB_WEB_ASSETS_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace latency {

// One dashboard file, embedded at build time (server/web/CMakeLists.txt).
struct WebAsset {
  absl::string_view name;          // "index.html", "uPlot.esm.js"
  absl::string_view content_type;  // with charset
  absl::string_view etag;          // quoted, from the file's SHA-256
  absl::string_view body;
};

// Every embedded file (generated).
absl::Span<const WebAsset> EmbeddedWebAssets();

// What to answer for a dashboard request, independent of the HTTP library:
// the transport copies status, headers and body.
struct WebResponse {
  int status = 404;
  std::map<std::string, std::string> headers;
  absl::string_view body;  // points into the embedded bytes
};

// The Content-Security-Policy of every dashboard response: only our own
// files, no inline script or style, no framing.
extern const char kDashboardCsp[];

// Answers GET `/` (path "" or "index.html") and `/assets/NAME` (path NAME):
// 200 with ETag and Cache-Control, 304 when `if_none_match` names the
// current ETag, 404 for an unknown name.
WebResponse ServeWebAsset(absl::string_view name,
                          absl::string_view if_none_match);

}  // namespace latency

#endif  // LATENCY_SERVER_WEB_WEB_ASSETS_H_
