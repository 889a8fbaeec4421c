#ifndef LATENCY_SERVER_API_CHUNKED_BODY_H_
#define LATENCY_SERVER_API_CHUNKED_BODY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "server/api/http_front.h"

namespace latency {

// Whether an Accept-Encoding header value admits gzip (RFC 9110 §12.5.3):
// "gzip" or "*" listed without q=0.
bool AcceptsGzip(absl::string_view accept_encoding);

// A body of text made in parts, sent with chunked transfer coding (RFC 9112
// §7.1) and, when the client accepts it, gzip content coding: the form of a
// large Prometheus exposition, whose length is not known until its last
// part. Each Next asks `produce` for text until a part of at least
// kPartBytes is ready to go on the wire (or the text ends), so a
// well-compressed text still leaves in parts of a useful size.
class ChunkedTextBody final : public HttpBody {
 public:
  static constexpr size_t kPartBytes = 64 * 1024;
  // Appends about `budget` bytes of text to `out`; false once that was the
  // end of it.
  using Producer = std::function<bool(std::string& out, size_t budget)>;

  ChunkedTextBody(Producer produce, bool gzip);
  ~ChunkedTextBody() override;
  ChunkedTextBody(const ChunkedTextBody&) = delete;
  ChunkedTextBody& operator=(const ChunkedTextBody&) = delete;

  // Whether the body is gzip-coded: asked for, and zlib could start.
  bool gzip() const { return deflater_ != nullptr; }

  bool Next(std::string& out) override;

 private:
  struct Deflater;
  // Appends `text` to `wire`, compressed when gzip is on; `last` ends the
  // compressed stream.
  void Encode(const std::string& text, bool last, std::string& wire);

  Producer produce_;
  std::unique_ptr<Deflater> deflater_;  // null: identity
  std::string text_;                    // reused between parts
  bool done_ = false;
};

}  // namespace latency

#endif  // LATENCY_SERVER_API_CHUNKED_BODY_H_
