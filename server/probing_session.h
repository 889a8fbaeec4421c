#ifndef LATENCY_SERVER_PROBING_SESSION_H_
#define LATENCY_SERVER_PROBING_SESSION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "grpcpp/security/credentials.h"
#include "server/api/prometheus.h"
#include "server/prober/grpc_prober.h"
#include "server/prober/icmp_prober.h"
#include "server/prober/resolver.h"
#include "server/stats/status.h"
#include "server/store/result_store.h"
#include "server/target.h"

namespace latency {

// ProbingSession is one configuration's worth of probing: it resolves the
// targets' names on its own threads (literals are probed at once, names as
// they resolve; a dead resolver never blocks a reload or shutdown), opens ICMP
// sockets (IPv4 and IPv6, whichever this process may open; a failure is logged
// with its fix and gRPC probing goes on), and runs the ICMP and gRPC probers
// into its own ResultStore. A config reload starts a new session (continuing
// the statistics of unchanged targets from the old store) and stops the old
// one; readers hold the session they read through a shared_ptr, so a reload
// never pulls data out from under them.
//
// The housekeeping methods (LogTransitions, LogReport, Reresolve) are called
// from one thread, the server's housekeeping loop.
class ProbingSession {
 public:
  static absl::StatusOr<std::shared_ptr<ProbingSession>> Start(
      const std::vector<TargetSpec>& targets,
      const StatusThresholds& thresholds, Clock& clock,
      std::shared_ptr<grpc::ChannelCredentials> probe_credentials,
      const ProbingSession* previous = nullptr);
  ~ProbingSession();

  // Stops both probers; the store keeps its data for late readers and
  // tells its subscribers (Watch streams) that it is closed.
  void Stop();

  const std::shared_ptr<ResultStore>& store() const { return store_; }
  // Resolved address of a target ("" when not resolved).
  std::string AddressOf(int target) const ABSL_LOCKS_EXCLUDED(mu_);
  TargetCounters CountersOf(int target) const;
  int64_t TakeMaxLagNs(ProbeKind kind);
  bool icmp_available() const { return icmp_available_; }
  // Why some target's ICMP reads no_permission (with the fix); empty when
  // every ICMP target may be probed.
  const std::string& icmp_no_permission() const { return icmp_no_permission_; }

  void LogTransitions();
  void LogReport();
  // Resolves every name again on the session's resolver threads, without
  // waiting; a changed address moves the ICMP target and the gRPC channel.
  void Reresolve() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ProbingSession(const std::vector<TargetSpec>& targets, Clock& clock,
                 std::shared_ptr<grpc::ChannelCredentials> credentials)
      : targets_(targets),
        clock_(clock),
        probe_credentials_(std::move(credentials)) {}

  // An echo client for target i: on a channel to `address` when resolved
  // (the address ICMP probes too), else to the name through gRPC's resolver.
  // The channel of a target kept from the previous session is reused when
  // it goes to the same place: same connection, no new TCP/TLS set-up.
  std::unique_ptr<EchoClient> MakeGrpcClient(
      int i, const std::optional<IpAddress>& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A resolver thread's answer for target i.
  void OnResolved(int i, const absl::StatusOr<IpAddress>& address)
      ABSL_LOCKS_EXCLUDED(mu_);

  const std::vector<TargetSpec> targets_;
  Clock& clock_;
  const std::shared_ptr<grpc::ChannelCredentials> probe_credentials_;
  std::shared_ptr<ResultStore> store_;
  std::unique_ptr<IcmpProber> icmp_;
  std::unique_ptr<GrpcProber> grpc_;
  bool icmp_available_ = false;
  std::string icmp_no_permission_;
  bool stopped_ = false;

  mutable absl::Mutex mu_;
  std::shared_ptr<ResolverPool> resolver_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<IpAddress>> resolved_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> resolving_ ABSL_GUARDED_BY(mu_);
  // Each gRPC target's channel and the gRPC target string it dials.
  std::vector<std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> channel_uris_ ABSL_GUARDED_BY(mu_);
  // Channels of the previous session's targets that this one kept (same
  // settings), by this session's index; handed over once.
  std::vector<std::shared_ptr<grpc::Channel>> kept_channels_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::string> kept_uris_ ABSL_GUARDED_BY(mu_);
  // icmp_ and grpc_ are complete (set once, under mu_).
  bool probers_ready_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<ProbeStatus> last_status_;  // housekeeping thread only
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBING_SESSION_H_
