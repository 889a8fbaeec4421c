#include "common/tls.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/logging.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace latency {
namespace {

absl::Status Invalid(const std::string& flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", message));
}

absl::StatusOr<std::string> ReadPemFile(const std::string& flag,
                                        const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Invalid(
        flag, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Invalid(flag, absl::StrCat("cannot read ", path));
  return text.str();
}

// The first OpenSSL error as text (clears the queue).
std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "no PEM data found";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in `pem`, in order; the caller frees them.
std::vector<X509*> ParseCertificates(const std::string& pem) {
  std::vector<X509*> certs;
  BioPtr bio = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.push_back(cert);
  }
  ERR_clear_error();  // the read past the last certificate
  return certs;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(size));
}

// Never prompts for a password: encrypted keys are refused.
int NoPassword(char*, int, int, void*) { return 0; }

}  // namespace

TlsFiles ServerTlsFiles(const std::string& flag_prefix, const std::string& cert,
                        const std::string& key, const std::string& client_ca) {
  TlsFiles files;
  files.cert = cert;
  files.key = key;
  files.ca = client_ca;
  files.require_client_cert = !client_ca.empty();
  files.cert_flag = flag_prefix + "cert";
  files.key_flag = flag_prefix + "key";
  files.ca_flag = flag_prefix + "client_ca";
  return files;
}

TlsFiles ClientTlsFiles(const std::string& flag_prefix, bool tls,
                        const std::string& ca, const std::string& cert,
                        const std::string& key) {
  TlsFiles files;
  files.tls = tls;
  files.ca = ca;
  files.cert = cert;
  files.key = key;
  files.cert_flag = flag_prefix + "cert";
  files.key_flag = flag_prefix + "key";
  files.ca_flag = flag_prefix + "ca";
  return files;
}

CertificateSet::~CertificateSet() {
  X509_free(leaf_);
  sk_X509_pop_free(intermediates_, X509_free);
  EVP_PKEY_free(key_);
}

std::string CertificateSet::Describe() const {
  if (leaf_ == nullptr) return "no certificate";
  BioPtr subject(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(subject.get(), X509_get_subject_name(leaf_), 0,
                     XN_FLAG_RFC2253);
  std::string serial = "?";
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf_), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  BioPtr expires(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(expires.get(), X509_get0_notAfter(leaf_));
  return absl::StrCat("subject ", BioText(subject.get()), ", serial ", serial,
                      ", expires ", BioText(expires.get()));
}

bool CertificateSet::Expired() const {
  return leaf_ != nullptr &&
         X509_cmp_current_time(X509_get0_notAfter(leaf_)) < 0;
}

absl::StatusOr<std::shared_ptr<const CertificateSet>> LoadCertificates(
    const TlsFiles& files, bool server) {
  if (server) {
    if (files.cert.empty() && files.key.empty()) {
      return Invalid(files.ca_flag, absl::StrCat("needs ", files.cert_flag,
                                                 " and ", files.key_flag));
    }
    if (files.require_client_cert && files.ca.empty()) {
      return Invalid(files.ca_flag,
                     "required to verify client certificates (mTLS)");
    }
  }
  if (files.cert.empty() != files.key.empty()) {
    const std::string& missing =
        files.cert.empty() ? files.cert_flag : files.key_flag;
    const std::string& given =
        files.cert.empty() ? files.key_flag : files.cert_flag;
    return Invalid(missing, absl::StrCat("required with ", given));
  }
  std::shared_ptr<CertificateSet> set(new CertificateSet());
  if (!files.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPemFile(files.cert_flag, files.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPemFile(files.key_flag, files.key);
    if (!key.ok()) return key.status();
    std::vector<X509*> chain = ParseCertificates(*cert);
    if (chain.empty()) {
      return Invalid(files.cert_flag,
                     absl::StrCat(files.cert, " holds no PEM certificate"));
    }
    set->leaf_ = chain[0];
    set->intermediates_ = sk_X509_new_null();
    for (size_t i = 1; i < chain.size(); ++i) {
      sk_X509_push(set->intermediates_, chain[i]);
    }
    BioPtr bio = MemoryBio(*key);
    set->key_ =
        PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr);
    if (set->key_ == nullptr) {
      return Invalid(
          files.key_flag,
          absl::StrCat(files.key, " holds no unencrypted PEM private key (",
                       OpenSslError(), ")"));
    }
    if (X509_check_private_key(set->leaf_, set->key_) != 1) {
      ERR_clear_error();
      return Invalid(
          files.key_flag,
          absl::StrCat(files.key, " does not match the certificate in ",
                       files.cert_flag, " (", files.cert, ")"));
    }
    set->cert_pem_ = std::move(*cert);
    set->key_pem_ = std::move(*key);
  }
  if (!files.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(files.ca_flag, files.ca);
    if (!ca.ok()) return ca.status();
    std::vector<X509*> roots = ParseCertificates(*ca);
    bool empty = roots.empty();
    for (X509* root : roots) X509_free(root);
    if (empty) {
      return Invalid(files.ca_flag,
                     absl::StrCat(files.ca, " holds no PEM certificate"));
    }
    set->ca_pem_ = std::move(*ca);
  }
  return std::shared_ptr<const CertificateSet>(std::move(set));
}

// --- ServerCertificates
// -------------------------------------------------------

absl::StatusOr<std::shared_ptr<ServerCertificates>> ServerCertificates::Create(
    const TlsFiles& files, const std::string& name,
    absl::Duration poll_interval) {
  absl::StatusOr<std::shared_ptr<const CertificateSet>> set =
      LoadCertificates(files, /*server=*/true);
  if (!set.ok()) return set.status();
  std::shared_ptr<ServerCertificates> certs(
      new ServerCertificates(files, name, *set));
  auto log = Logger("tls");
  log->info("{}: TLS{} with certificate {}", name,
            files.require_client_cert ? " (client certificates required)" : "",
            (*set)->Describe());
  if ((*set)->Expired()) {
    log->warn("{}: the certificate in {} has expired", name, files.cert);
  }
  if (poll_interval > absl::ZeroDuration()) {
    certs->poller_ = std::thread(
        [raw = certs.get(), poll_interval] { raw->Poll(poll_interval); });
  }
  return certs;
}

ServerCertificates::ServerCertificates(
    const TlsFiles& files, const std::string& name,
    std::shared_ptr<const CertificateSet> initial)
    : files_(files), name_(name), current_(std::move(initial)) {
  signature_ = FileSignature();
}

ServerCertificates::~ServerCertificates() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

std::string ServerCertificates::FileSignature() const {
  std::string signature;
  for (const std::string* path : {&files_.cert, &files_.key, &files_.ca}) {
    struct stat st;
    if (path->empty() || stat(path->c_str(), &st) != 0) {
      absl::StrAppend(&signature, "-;");
      continue;
    }
    absl::StrAppend(&signature, st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                    st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ";");
  }
  return signature;
}

absl::Status ServerCertificates::Reload() {
  std::string signature = FileSignature();
  absl::StatusOr<std::shared_ptr<const CertificateSet>> set =
      LoadCertificates(files_, /*server=*/true);
  std::shared_ptr<const CertificateSet> previous;
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    signature_ = signature;
    previous = current_;
    if (set.ok() && ((*set)->cert_pem() != current_->cert_pem() ||
                     (*set)->key_pem() != current_->key_pem() ||
                     (*set)->ca_pem() != current_->ca_pem())) {
      current_ = *set;
      ++generation_;
      changed = true;
    }
  }
  auto log = Logger("tls");
  if (!set.ok()) {
    log->error("{}: keeping the current certificate ({}): {}", name_,
               previous->Describe(), set.status().message());
    return set.status();
  }
  if (!changed) {
    log->info("{}: certificates unchanged ({})", name_, previous->Describe());
    return absl::OkStatus();
  }
  log->info("{}: reloaded; new connections get certificate {}", name_,
            (*set)->Describe());
  if ((*set)->Expired()) {
    log->warn("{}: the certificate in {} has expired", name_, files_.cert);
  }
  return absl::OkStatus();
}

void ServerCertificates::Poll(absl::Duration interval) {
  while (true) {
    std::string last;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), interval)) return;
      last = signature_;
    }
    if (FileSignature() != last) {
      Logger("tls")->info("{}: certificate files changed on disk", name_);
      Reload().IgnoreError();  // logged
    }
  }
}

std::shared_ptr<const CertificateSet> ServerCertificates::Current(
    uint64_t* generation) const {
  absl::MutexLock lock(&mu_);
  if (generation != nullptr) *generation = generation_;
  return current_;
}

// --- gRPC server credentials
// ---------------------------------------------------

namespace {

// State shared by the certificate fetcher and the auth processor of one
// grpc_server_credentials. gRPC frees it through the processor's destroy
// hook when the credentials go away (the fetcher has no such hook).
struct CoreCredentialsState {
  std::shared_ptr<ServerCertificates> certs;
  std::shared_ptr<BearerTokenAuth> auth;
  std::vector<std::string> allowed_client_names;
  absl::Mutex mu;
  bool served_any ABSL_GUARDED_BY(mu) = false;
  uint64_t served_generation ABSL_GUARDED_BY(mu) = 0;
};

// Runs at server start and before every TLS handshake: hands gRPC the
// current certificates when they changed since the last call.
grpc_ssl_certificate_config_reload_status FetchCertificateConfig(
    void* user_data, grpc_ssl_server_certificate_config** config) {
  auto* state = static_cast<CoreCredentialsState*>(user_data);
  uint64_t generation = 0;
  std::shared_ptr<const CertificateSet> set =
      state->certs->Current(&generation);
  {
    absl::MutexLock lock(&state->mu);
    if (state->served_any && state->served_generation == generation) {
      return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    }
    state->served_any = true;
    state->served_generation = generation;
  }
  grpc_ssl_pem_key_cert_pair pair = {set->key_pem().c_str(),
                                     set->cert_pem().c_str()};
  const TlsFiles& files = state->certs->files();
  // gRPC insists on client roots even when it asks for no client
  // certificate; then the server's own chain stands in, never consulted.
  *config = grpc_ssl_server_certificate_config_create(
      files.require_client_cert ? set->ca_pem().c_str()
                                : set->cert_pem().c_str(),
      &pair, 1);
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

absl::string_view SliceView(const grpc_slice& slice) {
  return absl::string_view(
      reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
      GRPC_SLICE_LENGTH(slice));
}

// Whether the peer's certificate names one of `allowed` as a SAN.
bool PeerHasAllowedName(const grpc_auth_context* context,
                        const std::vector<std::string>& allowed) {
  grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(
      context, GRPC_X509_SAN_PROPERTY_NAME);
  while (const grpc_auth_property* property =
             grpc_auth_property_iterator_next(&it)) {
    absl::string_view name(property->value, property->value_length);
    for (const std::string& want : allowed) {
      if (name == want) return true;
    }
  }
  return false;
}

void ProcessAuthMetadata(void* raw_state, grpc_auth_context* context,
                         const grpc_metadata* md, size_t num_md,
                         grpc_process_auth_metadata_done_cb cb,
                         void* user_data) {
  auto* state = static_cast<CoreCredentialsState*>(raw_state);
  std::string path;
  absl::string_view authorization;
  for (size_t i = 0; i < num_md; ++i) {
    absl::string_view key = SliceView(md[i].key);
    if (key == ":path") {
      path = std::string(SliceView(md[i].value));
    } else if (key == "authorization" && authorization.empty()) {
      authorization = SliceView(md[i].value);
    }
  }
  if (IsAuthExemptMethod(path)) {
    cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  if (!state->allowed_client_names.empty() &&
      !PeerHasAllowedName(context, state->allowed_client_names)) {
    Logger("auth")->debug("rejected {}: client certificate not allowed", path);
    cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_PERMISSION_DENIED,
       "client certificate names none of --grpc_tls_client_san");
    return;
  }
  if (state->auth == nullptr || state->auth->Check(authorization)) {
    cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  Logger("auth")->debug("rejected {}: {} bearer token", path,
                        authorization.empty() ? "no" : "wrong");
  cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_UNAUTHENTICATED,
     authorization.empty()
         ? "missing bearer token (send authorization: Bearer TOKEN)"
         : "invalid bearer token");
}

void DestroyState(void* state) {
  delete static_cast<CoreCredentialsState*>(state);
}

// grpc::ServerCredentials around a grpc_server_credentials built with the C
// API (the C++ API has no way to plug in the fetcher).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  explicit CoreServerCredentials(grpc_server_credentials* creds)
      : creds_(creds) {}
  ~CoreServerCredentials() override { grpc_server_credentials_release(creds_); }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/)
      override {
    Logger("tls")->error(
        "SetAuthMetadataProcessor is not supported; pass the token auth to "
        "MakeServerCredentials");
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  grpc_server_credentials* const creds_;
};

}  // namespace

bool IsAuthExemptMethod(const std::string& path) {
  return absl::StartsWith(path, "/grpc.health.v1.Health/") ||
         absl::StartsWith(path, "/grpc.reflection.v1alpha.ServerReflection/") ||
         absl::StartsWith(path, "/grpc.reflection.v1.ServerReflection/");
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    std::shared_ptr<ServerCertificates> certs,
    std::shared_ptr<BearerTokenAuth> auth,
    std::vector<std::string> allowed_client_names) {
  if (certs == nullptr && auth == nullptr) {
    return grpc::InsecureServerCredentials();
  }
  auto* state = new CoreCredentialsState;
  state->certs = std::move(certs);
  state->auth = std::move(auth);
  if (state->certs != nullptr && state->certs->files().require_client_cert) {
    state->allowed_client_names = std::move(allowed_client_names);
  }
  bool process = state->auth != nullptr || !state->allowed_client_names.empty();
  grpc_server_credentials* creds = nullptr;
  if (state->certs != nullptr) {
    grpc_ssl_server_credentials_options* options =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            state->certs->files().require_client_cert
                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            FetchCertificateConfig, state);
    creds = grpc_ssl_server_credentials_create_with_options(options);
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  // The processor's destroy hook owns `state`; without checks there is no
  // process function, so calls skip the auth step entirely.
  grpc_server_credentials_set_auth_metadata_processor(
      creds, grpc_auth_metadata_processor{
                 process ? ProcessAuthMetadata : nullptr, DestroyState, state});
  return std::make_shared<CoreServerCredentials>(creds);
}

// --- client credentials
// ----------------------------------------------------------

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files, absl::Duration refresh) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  absl::StatusOr<std::shared_ptr<const CertificateSet>> set =
      LoadCertificates(files, /*server=*/false);
  if (!set.ok()) return set.status();
  bool identity = !files.cert.empty();
  if (refresh <= absl::ZeroDuration() || (!identity && files.ca.empty())) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = (*set)->ca_pem();
    options.pem_private_key = (*set)->key_pem();
    options.pem_cert_chain = (*set)->cert_pem();
    return grpc::SslCredentials(options);
  }
  unsigned int seconds = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(refresh)));
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (!identity) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            files.ca, seconds);
  } else if (files.ca.empty()) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            files.key, files.cert, seconds);
  } else {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            files.key, files.cert, files.ca, seconds);
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  if (!files.ca.empty()) options.watch_root_certs();
  if (identity) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

// --- OpenSSL server context (HTTP gateway)
// --------------------------------------

namespace {

// Runs on every handshake: installs the current certificate and key.
int UseCurrentCertificate(SSL* ssl, void* arg) {
  std::shared_ptr<const CertificateSet> set =
      static_cast<ServerCertificates*>(arg)->Current();
  if (SSL_use_certificate(ssl, set->leaf()) != 1 ||
      SSL_use_PrivateKey(ssl, set->key()) != 1 ||
      SSL_set1_chain(ssl, set->intermediates()) != 1) {
    return 0;
  }
  return 1;
}

}  // namespace

bool ConfigureServerSslContext(SSL_CTX* ctx, ServerCertificates* certs) {
  std::shared_ptr<const CertificateSet> set = certs->Current();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate(ctx, set->leaf()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, set->key()) != 1 ||
      SSL_CTX_set1_chain(ctx, set->intermediates()) != 1) {
    ERR_clear_error();
    return false;
  }
  SSL_CTX_set_cert_cb(ctx, UseCurrentCertificate, certs);
  return true;
}

}  // namespace latency
