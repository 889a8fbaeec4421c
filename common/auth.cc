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

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no token"));
  }
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": the token in ", path, " is over ", kMaxTokenBytes, " bytes"));
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": the token in ", path,
                       " holds spaces or control characters"));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 0007) != 0) {
    Logger("auth")->warn(
        "{}: {} is accessible to every user (mode {:o}); "
        "chmod o-rwx it",
        flag, path, st.st_mode & 0777);
  }
  return token;
}

absl::StatusOr<std::shared_ptr<BearerTokenAuth>> BearerTokenAuth::FromFile(
    const std::string& path, const std::string& flag) {
  absl::StatusOr<std::string> token = ReadTokenFile(path, flag);
  if (!token.ok()) return token.status();
  return std::shared_ptr<BearerTokenAuth>(
      new BearerTokenAuth(path, flag, Sha256(*token)));
}

BearerTokenAuth::BearerTokenAuth(const std::string& path,
                                 const std::string& flag, const Digest& digest)
    : path_(path), flag_(flag), digest_(digest) {}

absl::Status BearerTokenAuth::Reload() {
  absl::StatusOr<std::string> token = ReadTokenFile(path_, flag_);
  if (!token.ok()) {
    Logger("auth")->error("keeping the previous token: {}",
                          token.status().message());
    return token.status();
  }
  Digest digest = Sha256(*token);
  absl::MutexLock lock(&mu_);
  if (CRYPTO_memcmp(digest.data(), digest_.data(), digest.size()) != 0) {
    digest_ = digest;
    Logger("auth")->info("{}: token reloaded from {}", flag_, path_);
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
  return !token.empty() &&
         CRYPTO_memcmp(digest.data(), digest_.data(), digest.size()) == 0;
}

std::string BearerAuthorization(const std::string& token) {
  return absl::StrCat("Bearer ", token);
}

}  // namespace latency
