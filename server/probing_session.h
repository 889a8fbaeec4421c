#ifndef LATENCY_SERVER_PROBING_SESSION_H_
#define LATENCY_SERVER_PROBING_SESSION_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/wire_tap.h"
#include "grpcpp/security/credentials.h"
#include "server/api/prometheus.h"
#include "server/prober/grpc_prober.h"
#include "server/prober/icmp_prober.h"
#include "server/prober/resolver.h"
#include "server/stats/status.h"
#include "server/store/result_store.h"
#include "server/target.h"

namespace latency {

// ProbingSession is the server's probing: it resolves the targets' names on
// its own threads (literals are probed at once, names as they resolve; a
// dead resolver never blocks a reload or shutdown), opens ICMP sockets (IPv4
// and IPv6, whichever this process may open; a failure is logged with its
// fix and gRPC probing goes on), and runs the ICMP and gRPC probers into the
// current configuration's ResultStore.
//
// Reload applies a new target list in place: only targets that are new or
// whose settings changed start (a new prober slot, a new gRPC channel), only
// removed or changed ones stop; every unchanged target keeps its prober
// state (sequences, timetable, probes in flight), its gRPC channel and
// connection, its address, its prober counters, its statistics and its
// logged status. Each configuration gets its own ResultStore (unchanged
// targets' series carried over), so readers always see one consistent
// target list; the previous store's subscribers (Watch streams) are closed.
//
// Probers know targets by a stable id (Sample::target_index as the probers
// report it), never reused; samples are routed to the current store's index
// of that id, and dropped once the target is removed.
//
// The housekeeping methods (LogTransitions, LogReport, Reresolve) are called
// from one thread, the server's housekeeping loop. Reload and Stop must not
// run concurrently with each other (ServerApp serializes them).
class ProbingSession {
 public:
  static absl::StatusOr<std::shared_ptr<ProbingSession>> Start(
      const std::vector<TargetSpec>& targets,
      const StatusThresholds& thresholds, Clock& clock,
      std::shared_ptr<grpc::ChannelCredentials> probe_credentials,
      bool keep_history_minutes = false,
      std::unique_ptr<WireTap> wire_tap = nullptr);
  ~ProbingSession();

  // Probes `targets` with `thresholds` from now on (see the class comment).
  // Fails, changing nothing, when `targets` is empty.
  absl::Status Reload(const std::vector<TargetSpec>& targets,
                      const StatusThresholds& thresholds)
      ABSL_LOCKS_EXCLUDED(mu_, generation_mu_);

  // Stops both probers; the store keeps its data for late readers and
  // tells its subscribers (Watch streams) that it is closed.
  void Stop();

  // The current configuration's store (a reload replaces it).
  std::shared_ptr<ResultStore> store() const
      ABSL_LOCKS_EXCLUDED(generation_mu_);
  // The current store with an address lookup that matches its indices, for
  // readers that must not mix two configurations.
  std::pair<std::shared_ptr<ResultStore>, std::function<std::string(int)>>
  ReaderView() const ABSL_LOCKS_EXCLUDED(generation_mu_);
  // Resolved address of target `target` of the current store ("" when not
  // resolved).
  std::string AddressOf(int target) const ABSL_LOCKS_EXCLUDED(mu_);
  // Prober counters of target `target` of the current store (zeros for an
  // index it does not have).
  TargetCounters CountersOf(int target) const;
  // Largest send lag of about the last minute (LagTracker) of `kind`.
  int64_t MaxLagNs(ProbeKind kind, int64_t now_ns);
  bool icmp_available() const { return icmp_available_; }
  // Why some target's ICMP reads no_permission (with the fix); empty when
  // every ICMP target may be probed.
  std::string icmp_no_permission() const ABSL_LOCKS_EXCLUDED(mu_);

  void LogTransitions();
  void LogReport();
  // Resolves every name again on the session's resolver threads, without
  // waiting; a changed address moves the ICMP target and the gRPC channel.
  void Reresolve() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One configuration: its store, and each store index's target id.
  struct Generation {
    std::shared_ptr<ResultStore> store;
    std::vector<int> ids;
    absl::flat_hash_map<int, int> index_of_id;
  };
  // One target as probed, by id.
  struct Unit {
    TargetSpec spec;
    std::string address;  // "" until resolved
    std::optional<IpAddress> resolved;
    bool resolving = false;
  };
  // Routes the probers' samples (by id) into the current store.
  class Router final : public SampleSink {
   public:
    explicit Router(ProbingSession& session) : session_(session) {}
    void Record(const Sample& sample) override;

   private:
    ProbingSession& session_;
  };

  ProbingSession(Clock& clock,
                 std::shared_ptr<grpc::ChannelCredentials> credentials,
                 bool keep_history_minutes)
      : clock_(clock),
        probe_credentials_(std::move(credentials)),
        keep_history_minutes_(keep_history_minutes),
        router_(*this) {}

  std::shared_ptr<const Generation> generation() const
      ABSL_LOCKS_EXCLUDED(generation_mu_);
  // Opens the ICMP sockets and creates (does not start) the ICMP prober.
  void OpenIcmp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts probing target `id` (its unit exists) on both probers.
  void AddToProbers(int id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An echo client for the target: on a channel to `address` when resolved
  // (the address ICMP probes too), else to the name through gRPC's resolver.
  std::unique_ptr<EchoClient> MakeGrpcClient(
      const TargetSpec& target, const std::optional<IpAddress>& address);
  // Queues a resolution of target `id`'s name unless one is running.
  void Resolve(int id) ABSL_LOCKS_EXCLUDED(mu_);
  // A resolver thread's answer for target `id`.
  void OnResolved(int id, const absl::StatusOr<IpAddress>& address)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::string AddressOfId(int id) const ABSL_LOCKS_EXCLUDED(mu_);

  Clock& clock_;
  const std::shared_ptr<grpc::ChannelCredentials> probe_credentials_;
  // Stores keep minute rows for the history writer.
  const bool keep_history_minutes_;
  Router router_;
  std::atomic<bool> icmp_available_{false};
  bool stopped_ = false;

  mutable absl::Mutex generation_mu_;
  std::shared_ptr<const Generation> generation_ ABSL_GUARDED_BY(generation_mu_);

  mutable absl::Mutex mu_;
  // Set once each (the ICMP prober when the first ICMP target comes); their
  // own methods are thread-safe.
  std::unique_ptr<IcmpProber> icmp_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WireTap> wire_tap_;  // before grpc_, which uses it
  std::unique_ptr<GrpcProber> grpc_;
  bool icmp_opened_ ABSL_GUARDED_BY(mu_) = false;
  // Whether each family (IPv4, IPv6) may not send ICMP, and why.
  bool denied_[2] ABSL_GUARDED_BY(mu_) = {false, false};
  std::string denied_why_[2] ABSL_GUARDED_BY(mu_);
  std::string icmp_no_permission_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int, Unit> units_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ResolverPool> resolver_ ABSL_GUARDED_BY(mu_);
  // Housekeeping thread only: each id's last logged status (ICMP, gRPC).
  absl::flat_hash_map<int, std::array<ProbeStatus, 2>> last_status_;
};

}  // namespace latency

#endif  // LATENCY_SERVER_PROBING_SESSION_H_
