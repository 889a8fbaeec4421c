#ifndef LATENCY_COMMON_TLS_H_
#define LATENCY_COMMON_TLS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

// OpenSSL's types, so this header does not pull in <openssl/ssl.h>.
struct ssl_ctx_st;
struct x509_st;
struct evp_pkey_st;
struct stack_st_X509;

namespace latency {

class BearerTokenAuth;

// TlsFiles names the PEM files of one TLS endpoint as its flags gave them,
// plus those flags' names so every error names the flag to fix.
struct TlsFiles {
  std::string cert;  // certificate chain, leaf first
  std::string key;   // the leaf's private key (unencrypted PEM)
  // Server: CA bundle that client certificates must chain to (mTLS).
  // Client: CA bundle that the server's certificate must chain to; empty
  // means the system's roots.
  std::string ca;
  // Server only: reject clients without a certificate signed by `ca`.
  bool require_client_cert = false;
  // Client only: use TLS even when no file is given (system roots, no
  // client certificate).
  bool tls = false;
  std::string cert_flag = "--tls_cert";
  std::string key_flag = "--tls_key";
  std::string ca_flag = "--tls_ca";

  // Whether TLS is on: a client or server file is given, or `tls` is set.
  bool enabled() const {
    return tls || !cert.empty() || !key.empty() || !ca.empty();
  }
};

// The TlsFiles of a server whose flags are PREFIXcert, PREFIXkey and
// PREFIXclient_ca (e.g. "--grpc_tls_"); mTLS is on when `client_ca` is set.
TlsFiles ServerTlsFiles(const std::string& flag_prefix, const std::string& cert,
                        const std::string& key, const std::string& client_ca);

// The TlsFiles of a client whose flags are PREFIXca, PREFIXcert, PREFIXkey
// and PREFIX without the trailing '_' as the bool (e.g. "--probe_tls_").
TlsFiles ClientTlsFiles(const std::string& flag_prefix, bool tls,
                        const std::string& ca, const std::string& cert,
                        const std::string& key);

// CertificateSet is one loaded and checked set of PEM files: the chain
// parses, the key parses and matches the leaf, the CA bundle parses.
// Immutable; holds both the PEM text (for gRPC) and the parsed OpenSSL
// objects (for the HTTP gateway).
class CertificateSet {
 public:
  ~CertificateSet();
  CertificateSet(const CertificateSet&) = delete;
  CertificateSet& operator=(const CertificateSet&) = delete;

  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }
  const std::string& ca_pem() const { return ca_pem_; }
  bool has_identity() const { return leaf_ != nullptr; }
  x509_st* leaf() const { return leaf_; }
  stack_st_X509* intermediates() const { return intermediates_; }
  evp_pkey_st* key() const { return key_; }

  // "subject CN=x, serial 0A1B, expires Jan  2 03:04:05 2027 GMT" for logs;
  // "no certificate" for a CA-only (client) set.
  std::string Describe() const;
  // Whether the leaf's notAfter is in the past.
  bool Expired() const;

 private:
  friend absl::StatusOr<std::shared_ptr<const CertificateSet>> LoadCertificates(
      const TlsFiles& files, bool server);
  CertificateSet() = default;

  std::string cert_pem_, key_pem_, ca_pem_;
  x509_st* leaf_ = nullptr;
  stack_st_X509* intermediates_ = nullptr;
  evp_pkey_st* key_ = nullptr;
};

// Reads and checks `files`. A server needs cert and key; a client needs both
// or neither, and a CA bundle is checked when given. Errors are
// InvalidArgument and start with the flag's name, e.g.
// "--tls_key: /etc/x.key does not match the certificate in --tls_cert".
absl::StatusOr<std::shared_ptr<const CertificateSet>> LoadCertificates(
    const TlsFiles& files, bool server);

// ServerCertificates is the current certificate set of one TLS server.
// Reload() (called on SIGHUP) reads the files again; the files are also
// polled for changes every `poll_interval` (0 disables polling). A set that
// fails the checks (unreadable, key not matching, ...) is logged and the
// current one stays in use. New connections get the newest set; open ones
// keep theirs.
class ServerCertificates {
 public:
  // Loads the files (errors as LoadCertificates) and starts polling.
  // `name` labels log lines ("agent", "grpc", "http").
  static absl::StatusOr<std::shared_ptr<ServerCertificates>> Create(
      const TlsFiles& files, const std::string& name,
      absl::Duration poll_interval = absl::Seconds(10));
  ~ServerCertificates();

  // Reads the files now. OK when the new set is in use (or unchanged);
  // otherwise the error, and the previous set stays.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // The set in use; `generation` (when given) receives its number, which
  // increments with every change.
  std::shared_ptr<const CertificateSet> Current(
      uint64_t* generation = nullptr) const ABSL_LOCKS_EXCLUDED(mu_);
  const TlsFiles& files() const { return files_; }

 private:
  ServerCertificates(const TlsFiles& files, const std::string& name,
                     std::shared_ptr<const CertificateSet> initial);
  void Poll(absl::Duration interval);
  // Size, mtime, inode of the files: a cheap change check.
  std::string FileSignature() const;

  const TlsFiles files_;
  const std::string name_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const CertificateSet> current_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::string signature_ ABSL_GUARDED_BY(mu_);  // of the last files read
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

// gRPC server credentials for one listening port (use each result for one
// port only). TLS with `certs` (nullptr: plaintext), mTLS when its files
// require client certificates; every new connection's handshake picks up
// the newest certificates. With `auth`, calls need "authorization: Bearer
// TOKEN" except to grpc.health.v1.Health and server reflection, and fail
// with UNAUTHENTICATED otherwise.
//
// With `allowed_client_names` (mTLS only), a client certificate must also
// carry one of them as a subjectAltName (DNS, IP, URI or email, exactly), or
// calls other than health and reflection fail with PERMISSION_DENIED: one CA
// may then sign agents and clients without an agent's certificate opening
// the query API.
//
// Built on gRPC's C API (an SSL certificate-config fetcher and an auth
// metadata processor) because 1.51's C++ TLS API cannot reload on demand.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    std::shared_ptr<ServerCertificates> certs,
    std::shared_ptr<BearerTokenAuth> auth = nullptr,
    std::vector<std::string> allowed_client_names = {});

// Whether a gRPC method (":path", e.g. "/grpc.health.v1.Health/Check") may
// be called without a token: health and reflection.
bool IsAuthExemptMethod(const std::string& path);

// Client credentials: plaintext when `files` is not enabled; else TLS that
// verifies the server's certificate against files.ca (system roots when
// empty) and its name against the target's host, with the client
// certificate when given. With `refresh` > 0 the files are re-read that
// often (for long-lived clients such as the prober); 0 reads them once.
// Errors as LoadCertificates.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsFiles& files,
                       absl::Duration refresh = absl::ZeroDuration());

// Sets up an OpenSSL server context (the HTTP gateway's) for TLS 1.2+ with
// the certificates in `certs`, looked up again on every handshake so a reload
// applies to new connections. `certs` must outlive the context.
bool ConfigureServerSslContext(ssl_ctx_st* ctx, ServerCertificates* certs);

}  // namespace latency

#endif  // LATENCY_COMMON_TLS_H_
