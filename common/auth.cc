#include "common/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace latency {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

std::array<unsigned char, 32> Sha256(absl::string_view text) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(),
             nullptr);
  return digest;
}

std::vector<std::array<unsigned char, 32>> Digests(
    const std::vector<std::string>& tokens) {
  std::vector<std::array<unsigned char, 32>> digests;
  for (const std::string& token : tokens) digests.push_back(Sha256(token));
  return digests;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadTokens(const std::string& path,
                                                    const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    std::string token(absl::StripAsciiWhitespace(line));
    if (token.empty()) continue;
    if (token.size() > kMaxTokenBytes) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": the token in ",
                                                     path, " is over ",
                                                     kMaxTokenBytes, " bytes"));
    }
    for (char c : token) {
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": the token in ", path,
                         " holds spaces or control characters"));
      }
    }
    tokens.push_back(std::move(token));
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no token"));
  }
  if (tokens.size() > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path,
                     " holds more than two tokens (want the current one and "
                     "at most one next, a line each)"));
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 0007) != 0) {
    Logger("auth")->warn(
        "{}: {} is accessible to every user (mode {:o}); "
        "chmod o-rwx it",
        flag, path, st.st_mode & 0777);
  }
  return tokens;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          const std::string& flag) {
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokens(path, flag);
  if (!tokens.ok()) return tokens.status();
  return tokens->front();
}

absl::StatusOr<std::shared_ptr<BearerTokenAuth>> BearerTokenAuth::FromFile(
    const std::string& path, const std::string& flag) {
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokens(path, flag);
  if (!tokens.ok()) return tokens.status();
  return std::shared_ptr<BearerTokenAuth>(
      new BearerTokenAuth(path, flag, Digests(*tokens)));
}

BearerTokenAuth::BearerTokenAuth(const std::string& path,
                                 const std::string& flag,
                                 std::vector<Digest> digests)
    : path_(path), flag_(flag), digests_(std::move(digests)) {}

absl::Status BearerTokenAuth::Reload() {
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokens(path_, flag_);
  if (!tokens.ok()) {
    Logger("auth")->error("keeping the previous token: {}",
                          tokens.status().message());
    return tokens.status();
  }
  std::vector<Digest> digests = Digests(*tokens);
  absl::MutexLock lock(&mu_);
  if (digests != digests_) {
    digests_ = std::move(digests);
    Logger("auth")->info("{}: {} token(s) reloaded from {}", flag_,
                         digests_.size(), path_);
  }
  return absl::OkStatus();
}

bool BearerTokenAuth::Check(absl::string_view authorization) const {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()),
                              kScheme)) {
    return false;
  }
  absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  Digest digest = Sha256(token);
  absl::MutexLock lock(&mu_);
  // Compare with every accepted token, no early exit: timing does not tell
  // which one matched.
  bool match = false;
  for (const Digest& accepted : digests_) {
    match |= CRYPTO_memcmp(digest.data(), accepted.data(), digest.size()) == 0;
  }
  return !token.empty() && match;
}

std::string BearerAuthorization(const std::string& token) {
  return absl::StrCat("Bearer ", token);
}

}  // namespace latency
