// ChunkedTextBody as a client reads it: chunked framing decoded by hand and
// gzip by zlib give back exactly the text its producer made.
#include "server/api/chunked_body.h"

#include <zlib.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latency {
namespace {

// Text in `lines` lines of ~40 bytes, a few lines per call.
ChunkedTextBody::Producer Lines(int lines) {
  return [lines, next = 0](std::string& out, size_t budget) mutable {
    const size_t start = out.size();
    while (next < lines && out.size() - start < budget) {
      absl::StrAppend(&out, "latency_probes_total{target=\"t", next, "\"} ",
                      next * 7, "\n");
      ++next;
    }
    return next < lines;
  };
}

std::string Text(int lines) {
  std::string text;
  auto produce = Lines(lines);
  while (produce(text, 1 << 30)) {
  }
  return text;
}

// The body's wire bytes, all parts; `parts` counts them.
std::string Wire(ChunkedTextBody& body, int* parts) {
  std::string wire;
  *parts = 0;
  bool more = true;
  while (more) {
    std::string part;
    more = body.Next(part);
    ++*parts;
    wire += part;
  }
  EXPECT_FALSE(body.Next(wire)) << "asked again after the end";
  return wire;
}

// Decodes chunked transfer coding; fails the test on bad framing.
std::string Dechunk(const std::string& wire) {
  std::string data;
  size_t at = 0;
  for (;;) {
    const size_t line_end = wire.find("\r\n", at);
    EXPECT_NE(line_end, std::string::npos) << "no chunk size at " << at;
    if (line_end == std::string::npos) return data;
    uint64_t size = 0;
    EXPECT_TRUE(absl::SimpleHexAtoi(wire.substr(at, line_end - at), &size));
    at = line_end + 2;
    if (size == 0) {
      EXPECT_EQ(wire.substr(at), "\r\n") << "after the last chunk";
      return data;
    }
    data += wire.substr(at, size);
    at += size;
    EXPECT_EQ(wire.substr(at, 2), "\r\n") << "chunk not closed";
    at += 2;
  }
}

std::string Gunzip(const std::string& compressed) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  int result = Z_OK;
  while (result == Z_OK) {
    char buf[65536];
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    result = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  EXPECT_EQ(result, Z_STREAM_END) << "gzip stream not complete";
  EXPECT_EQ(z.avail_in, 0u) << "bytes after the gzip stream";
  inflateEnd(&z);
  return out;
}

TEST(ChunkedTextBodyTest, IdentityChunksCarryTheTextInParts) {
  ChunkedTextBody body(Lines(20'000), /*gzip=*/false);
  EXPECT_FALSE(body.gzip());
  int parts = 0;
  const std::string wire = Wire(body, &parts);
  EXPECT_EQ(Dechunk(wire), Text(20'000));
  // ~800 KB of text in parts of 64 KB or a little more.
  EXPECT_GE(parts, 10);
}

TEST(ChunkedTextBodyTest, GzipChunksInflateToTheText) {
  ChunkedTextBody body(Lines(200'000), /*gzip=*/true);
  EXPECT_TRUE(body.gzip());
  int parts = 0;
  const std::string wire = Wire(body, &parts);
  const std::string text = Text(200'000);
  EXPECT_EQ(Gunzip(Dechunk(wire)), text);
  EXPECT_LT(wire.size(), text.size() / 4) << "barely compressed";
  EXPECT_GE(parts, 2) << "all in one part";
}

TEST(ChunkedTextBodyTest, EmptyTextIsTheLastChunkAlone) {
  ChunkedTextBody identity(Lines(0), false);
  int parts = 0;
  EXPECT_EQ(Wire(identity, &parts), "0\r\n\r\n");
  ChunkedTextBody gzip(Lines(0), true);
  EXPECT_EQ(Gunzip(Dechunk(Wire(gzip, &parts))), "");
}

TEST(AcceptsGzipTest, ReadsCodingsAndQValues) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("br, *"));
  EXPECT_TRUE(AcceptsGzip("gzip ; q=1.0, identity"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("br, deflate"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0.000"));
  EXPECT_FALSE(AcceptsGzip("xgzip"));
  EXPECT_FALSE(AcceptsGzip("*, gzip;q=0"));
  EXPECT_TRUE(AcceptsGzip("*;q=0, gzip"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=banana"));
}

}  // namespace
}  // namespace latency
