#include "server/api/chunked_body.h"

#include <zlib.h>

#include <cstdio>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace latency {

bool AcceptsGzip(absl::string_view accept_encoding) {
  // An explicit "gzip" wins over "*" wherever either stands.
  std::optional<double> gzip_q, any_q;
  for (absl::string_view item : absl::StrSplit(accept_encoding, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    const absl::string_view coding = absl::StripAsciiWhitespace(parts[0]);
    const bool gzip = absl::EqualsIgnoreCase(coding, "gzip");
    if (!gzip && coding != "*") continue;
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&param, "q=") ||
          absl::ConsumePrefix(&param, "Q=")) {
        if (!absl::SimpleAtod(param, &q)) q = 0;
      }
    }
    (gzip ? gzip_q : any_q) = q;
  }
  if (gzip_q) return *gzip_q > 0;
  return any_q && *any_q > 0;
}

// zlib's deflate state, gzip-wrapped, at the fastest level: a Prometheus
// text shrinks about tenfold even so, and a 300 MB exposition's compression
// time is what a scrape waits for.
struct ChunkedTextBody::Deflater {
  Deflater() {
    ok = deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
                      Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    if (ok) deflateEnd(&stream);
  }
  z_stream stream{};
  bool ok = false;
};

ChunkedTextBody::ChunkedTextBody(Producer produce, bool gzip)
    : produce_(std::move(produce)) {
  if (gzip) {
    auto deflater = std::make_unique<Deflater>();
    if (deflater->ok) deflater_ = std::move(deflater);
  }
}

ChunkedTextBody::~ChunkedTextBody() = default;

void ChunkedTextBody::Encode(const std::string& text, bool last,
                             std::string& wire) {
  if (deflater_ == nullptr) {
    wire.append(text);
    return;
  }
  z_stream& z = deflater_->stream;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  for (;;) {
    const size_t start = wire.size();
    const size_t room = deflateBound(&z, z.avail_in) + 64;
    wire.resize(start + room);
    z.next_out = reinterpret_cast<Bytef*>(wire.data() + start);
    z.avail_out = static_cast<uInt>(room);
    const int result = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
    wire.resize(start + room - z.avail_out);
    if (last ? result == Z_STREAM_END : z.avail_in == 0) return;
    if (result != Z_OK) return;  // no progress possible: not on a sound stream
  }
}

bool ChunkedTextBody::Next(std::string& out) {
  if (done_) return false;
  std::string wire;
  bool more = true;
  while (more && wire.size() < kPartBytes) {
    text_.clear();
    more = produce_(text_, kPartBytes);
    Encode(text_, !more, wire);
  }
  if (!wire.empty()) {
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", wire.size());
    out.append(size);
    out.append(wire);
    out.append("\r\n");
  }
  if (!more) {
    out.append("0\r\n\r\n");  // the last chunk; no trailers
    done_ = true;
  }
  return more;
}

}  // namespace latency
