#ifndef LATENCY_TESTS_FUZZ_FUZZ_UTIL_H_
#define LATENCY_TESTS_FUZZ_FUZZ_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"

// Helpers shared by the fuzz targets in tests/fuzz. Each target defines
// LLVMFuzzerTestOneInput (and optionally LLVMFuzzerInitialize); it is linked
// either with libFuzzer (LATENCY_FUZZ=ON) or with replay_main.cc, which runs
// the committed corpus as a plain ctest.

// FUZZ_CHECK(cond, detail): a property every input must keep. On failure it
// prints the condition, place and detail (an absl::StrCat-able string), then
// aborts, so libFuzzer saves the input as a crash.
#define FUZZ_CHECK(cond, detail)                                             \
  do {                                                                       \
    if (!(cond)) {                                                           \
      ::latency::fuzz::Fail(#cond, __FILE__, __LINE__, std::string(detail)); \
    }                                                                        \
  } while (false)

namespace latency::fuzz {

[[noreturn]] inline void Fail(const char* condition, const char* file, int line,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n  %s\n", file, line,
               condition, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Input reads the fuzzer's bytes front to back; past the end every read
// returns zeros / empty, so targets never need to check remaining().
class Input {
 public:
  Input(const uint8_t* data, size_t size)
      : data_(reinterpret_cast<const char*>(data)), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t Byte() {
    return pos_ < size_ ? static_cast<uint8_t>(data_[pos_++]) : 0;
  }
  bool Bool() { return (Byte() & 1) != 0; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() << 8 | Byte()); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) << 16 | U16(); }
  uint64_t U64() { return static_cast<uint64_t>(U32()) << 32 | U32(); }
  // A value in [0, n); 0 when n == 0.
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : U32() % n; }
  // Up to `max` bytes, the length taken from the input.
  absl::string_view Bytes(size_t max) {
    return Take(
        std::min<size_t>(Below(static_cast<uint32_t>(max) + 1), remaining()));
  }
  // Everything not read yet.
  absl::string_view Rest() { return Take(remaining()); }
  // The next `sep`-terminated field (without it), or the rest.
  absl::string_view Until(char sep) {
    absl::string_view rest(data_ + pos_, remaining());
    size_t end = rest.find(sep);
    if (end == absl::string_view::npos) return Rest();
    pos_ += end + 1;
    return rest.substr(0, end);
  }

 private:
  absl::string_view Take(size_t n) {
    absl::string_view out(data_ + pos_, n);
    pos_ += n;
    return out;
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace latency::fuzz

#endif  // LATENCY_TESTS_FUZZ_FUZZ_UTIL_H_
