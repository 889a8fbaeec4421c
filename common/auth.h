#ifndef LATENCY_COMMON_AUTH_H_
#define LATENCY_COMMON_AUTH_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace latency {

// Reads the bearer tokens in `path`: one per line, surrounding whitespace
// and blank lines ignored; the first is the current token, an optional
// second the next one (for rotation without an outage). Tokens live in
// files, not flag values, so they never show in `ps`. Errors are
// InvalidArgument naming `flag` (unreadable, no token, more than two, or a
// token with spaces or control characters).
absl::StatusOr<std::vector<std::string>> ReadTokens(const std::string& path,
                                                    const std::string& flag);

// The current (first) token of ReadTokens: what a client sends.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          const std::string& flag);

// BearerTokenAuth checks an "Authorization: Bearer TOKEN" header value
// against the tokens in a file (ReadTokens: the current and the next). The
// comparison is constant-time: both sides are hashed with SHA-256 and the
// digests compared with CRYPTO_memcmp, so neither the content nor the length of
// the token leaks through timing. Reload() (SIGHUP) reads the file again; a bad
// file keeps the old tokens.
class BearerTokenAuth {
 public:
  static absl::StatusOr<std::shared_ptr<BearerTokenAuth>> FromFile(
      const std::string& path, const std::string& flag = "--auth_token_file");

  // OK when the file's token is in use now; otherwise the error (old token
  // kept).
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `authorization` is "Bearer <an accepted token>" (scheme
  // case-insensitive).
  bool Check(absl::string_view authorization) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Digest = std::array<unsigned char, 32>;
  BearerTokenAuth(const std::string& path, const std::string& flag,
                  std::vector<Digest> digests);

  const std::string path_;
  const std::string flag_;
  mutable absl::Mutex mu_;
  std::vector<Digest> digests_ ABSL_GUARDED_BY(mu_);
};

// The header value a client sends: "Bearer TOKEN".
std::string BearerAuthorization(const std::string& token);

}  // namespace latency

#endif  // LATENCY_COMMON_AUTH_H_
