// latency-inject: a small netem stand-in for kernels without sch_netem. It
// binds an NFQUEUE, holds every queued packet for --delay_ms (± --jitter_ms)
// and drops a --loss_percent share of them, then re-injects the rest with an
// NF_ACCEPT verdict when their time is due. One thread: ppoll() on the
// netlink socket and a signalfd, with a timeout to shortly before the
// earliest due packet, then polling without sleep until it is due. The hold
// counts from the packet's arrival in the queue when the kernel stamped it
// (forwarded packets, while any socket on the machine asks for stamps), else
// from when it is read.
//
// Packets reach it through an iptables rule in the namespace whose traffic it
// shapes, e.g.
//   iptables -A OUTPUT -o veth0 -j NFQUEUE --queue-num 7
// Without --queue-bypass the injector is in the path: while it is not
// running, queued packets are dropped, so a dead injector never passes for
// "no delay".
//
// SIGTERM/SIGINT drain: packets already held leave at their due time, new
// ones pass at once, and the program exits when nothing is held (switch the
// iptables rule away first). A second signal releases everything at once.
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "common/logging.h"

ABSL_FLAG(int32_t, queue_num, 0,
          "NFQUEUE number to bind (iptables --queue-num)");
ABSL_FLAG(double, delay_ms, 0, "hold every packet this long, in milliseconds");
ABSL_FLAG(double, jitter_ms, 0,
          "spread of the hold: uniform in delay±jitter, or the standard "
          "deviation for --jitter_distribution=normal; never below 0");
ABSL_FLAG(std::string, jitter_distribution, "uniform", "uniform or normal");
ABSL_FLAG(double, loss_percent, 0, "drop this share of packets (0..100)");
ABSL_FLAG(bool, reorder, false,
          "let jitter reorder packets; by default a packet is never released "
          "before one queued earlier");
ABSL_FLAG(uint64_t, seed, 0, "random seed; 0 picks one (logged)");
ABSL_FLAG(uint32_t, max_held, 100000,
          "kernel queue length; packets beyond it are dropped by the kernel");
ABSL_FLAG(int32_t, spin_us, 100,
          "wake this many microseconds before a packet is due and poll until "
          "then: a sleep alone releases tens of microseconds late");
ABSL_FLAG(int32_t, realtime_priority, 0,
          "run under SCHED_FIFO at this priority (1..99) so a loaded machine "
          "does not add scheduling delay to the hold; 0 = normal scheduling");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug, info, warn, error, critical or off");

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Options {
  int64_t delay_ns = 0;
  int64_t jitter_ns = 0;
  bool normal = false;
  double loss = 0;  // probability 0..1
  bool reorder = false;
};

struct HeldPacket {
  int64_t due_ns;
  uint64_t order;  // arrival order, breaks ties
  uint32_t id;
  int64_t asked_ns;  // arrival + this packet's hold: what it was promised
  bool operator>(const HeldPacket& o) const {
    return due_ns != o.due_ns ? due_ns > o.due_ns : order > o.order;
  }
};

// Decides each packet's fate and holds it until due. Pure apart from the
// random generator, which the caller seeds.
class Shaper {
 public:
  Shaper(const Options& options, uint64_t seed)
      : options_(options), rng_(seed) {}

  // Returns false when the packet is to be dropped; otherwise holds it for
  // the delay from its arrival in the queue, or from now when that is not
  // known.
  bool Admit(uint32_t id, std::optional<int64_t> arrival_ns, int64_t now_ns) {
    ++seen_;
    if (arrival_ns) ++stamped_;
    if (options_.loss > 0 && unit_(rng_) < options_.loss) {
      ++dropped_;
      return false;
    }
    int64_t hold = options_.delay_ns;
    if (options_.jitter_ns > 0) {
      double j = static_cast<double>(options_.jitter_ns);
      double offset = options_.normal
                          ? std::normal_distribution<double>(0, j)(rng_)
                          : std::uniform_real_distribution<double>(-j, j)(rng_);
      hold = std::max<int64_t>(0, hold + std::llround(offset));
    }
    const int64_t asked = arrival_ns.value_or(now_ns) + hold;
    int64_t due = asked;
    if (!options_.reorder) due = std::max(due, last_due_ns_);
    last_due_ns_ = due;
    held_.push({due, seen_, id, asked});
    max_held_ = std::max<uint64_t>(max_held_, held_.size());
    return true;
  }

  bool empty() const { return held_.empty(); }
  size_t held() const { return held_.size(); }
  int64_t next_due_ns() const { return held_.top().due_ns; }
  // Removes and returns the earliest packet; records how late it leaves,
  // and how much longer than asked it was held since it arrived.
  HeldPacket Pop(int64_t now_ns) {
    HeldPacket p = held_.top();
    held_.pop();
    int64_t late = std::max<int64_t>(0, now_ns - p.due_ns);
    ++released_;
    late_sum_ns_ += late;
    late_max_ns_ = std::max(late_max_ns_, late);
    over_sum_ns_ += now_ns - p.asked_ns;
    over_max_ns_ = std::max(over_max_ns_, now_ns - p.asked_ns);
    return p;
  }

  uint64_t seen() const { return seen_; }
  uint64_t stamped() const { return stamped_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t released() const { return released_; }
  uint64_t max_held() const { return max_held_; }
  double late_mean_us() const {
    return released_ ? static_cast<double>(late_sum_ns_) / released_ / 1e3 : 0;
  }
  double late_max_us() const { return static_cast<double>(late_max_ns_) / 1e3; }
  double over_mean_us() const {
    return released_ ? static_cast<double>(over_sum_ns_) / released_ / 1e3 : 0;
  }
  double over_max_us() const { return static_cast<double>(over_max_ns_) / 1e3; }

 private:
  Options options_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::priority_queue<HeldPacket, std::vector<HeldPacket>, std::greater<>>
      held_;
  int64_t last_due_ns_ = 0;
  uint64_t seen_ = 0, stamped_ = 0, dropped_ = 0, released_ = 0, max_held_ = 0;
  int64_t late_sum_ns_ = 0, late_max_ns_ = 0;
  int64_t over_sum_ns_ = 0, over_max_ns_ = 0;
};

struct Context {
  Shaper* shaper;
  nfq_q_handle* queue = nullptr;
  bool draining = false;
  uint64_t passed_while_draining = 0;
};

// When the packet reached the queue, on NowNs's clock, from the kernel's
// stamp (a forwarded packet's receive time): our own wake-up is not the
// network's (a VM's idle vCPU takes tens of microseconds to wake). None when
// the packet has no stamp (locally made ones, when no socket on the machine
// asks for stamps) or the wall clock stepped between the two readings.
std::optional<int64_t> ArrivalNs(nfq_data* data, int64_t now_ns) {
  timeval stamp;
  if (nfq_get_timestamp(data, &stamp) != 0) return std::nullopt;
  timespec real;
  clock_gettime(CLOCK_REALTIME, &real);
  int64_t age = (int64_t{real.tv_sec} - stamp.tv_sec) * 1'000'000'000 +
                real.tv_nsec - int64_t{stamp.tv_usec} * 1000;
  if (age < 0 || age > 1'000'000'000) return std::nullopt;
  return now_ns - age;
}

int OnPacket(nfq_q_handle* queue, nfgenmsg*, nfq_data* data, void* arg) {
  auto* ctx = static_cast<Context*>(arg);
  nfqnl_msg_packet_hdr* header = nfq_get_msg_packet_hdr(data);
  if (header == nullptr) return 0;
  uint32_t id = ntohl(header->packet_id);
  if (ctx->draining) {
    ++ctx->passed_while_draining;
    nfq_set_verdict(queue, id, NF_ACCEPT, 0, nullptr);
  } else if (int64_t now = NowNs();
             !ctx->shaper->Admit(id, ArrivalNs(data, now), now)) {
    nfq_set_verdict(queue, id, NF_DROP, 0, nullptr);
  }
  return 0;
}

void ReleaseDue(Shaper& shaper, nfq_q_handle* queue, int64_t now_ns) {
  while (!shaper.empty() && shaper.next_due_ns() <= now_ns) {
    nfq_set_verdict(queue, shaper.Pop(now_ns).id, NF_ACCEPT, 0, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // SIGHUP is read and ignored: a closed terminal is no reason to stop.
  sigaddset(&signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  latency::ParseFlags(
      argc, argv, "latency-inject",
      "Delay, jitter and loss for packets sent to an NFQUEUE (a test tool for\n"
      "kernels without netem). Needs CAP_NET_ADMIN in the packets' network\n"
      "namespace and an iptables rule, e.g.\n"
      "  iptables -A OUTPUT -o veth0 -j NFQUEUE --queue-num 7\n\n"
      "Usage: latency-inject --queue_num=7 --delay_ms=5 [--jitter_ms=1] "
      "[--loss_percent=10]");
  if (absl::Status s =
          latency::SetupLogging(absl::GetFlag(FLAGS_log_level), "text");
      !s.ok()) {
    fprintf(stderr, "latency-inject: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto log = latency::Logger("inject");

  Options options;
  double delay_ms = absl::GetFlag(FLAGS_delay_ms);
  double jitter_ms = absl::GetFlag(FLAGS_jitter_ms);
  double loss_percent = absl::GetFlag(FLAGS_loss_percent);
  std::string distribution = absl::GetFlag(FLAGS_jitter_distribution);
  int queue_num = absl::GetFlag(FLAGS_queue_num);
  if (delay_ms < 0 || jitter_ms < 0 || loss_percent < 0 || loss_percent > 100 ||
      queue_num < 0 || queue_num > 65535 ||
      (distribution != "uniform" && distribution != "normal")) {
    log->critical(
        "bad flags: need --delay_ms >= 0, --jitter_ms >= 0, --loss_percent in "
        "0..100, --queue_num in 0..65535, --jitter_distribution uniform or "
        "normal");
    return 2;
  }
  options.delay_ns = std::llround(delay_ms * 1e6);
  options.jitter_ns = std::llround(jitter_ms * 1e6);
  options.normal = distribution == "normal";
  options.loss = loss_percent / 100;
  options.reorder = absl::GetFlag(FLAGS_reorder);
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = (uint64_t{std::random_device{}()} << 32) ^ NowNs();

  // Default timer slack (50 µs) would show up in every hold.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (int priority = absl::GetFlag(FLAGS_realtime_priority); priority > 0) {
    sched_param param{};
    param.sched_priority = std::min(priority, 99);
    if (sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
      log->warn("SCHED_FIFO {}: {}; normal scheduling", priority,
                strerror(errno));
    }
  }

  nfq_handle* handle = nfq_open();
  if (handle == nullptr) {
    log->critical("nfq_open: {} (needs CAP_NET_ADMIN)", strerror(errno));
    return 1;
  }
  Shaper shaper(options, seed);
  Context ctx{&shaper};
  ctx.queue = nfq_create_queue(handle, static_cast<uint16_t>(queue_num),
                               &OnPacket, &ctx);
  if (ctx.queue == nullptr) {
    log->critical("cannot bind NFQUEUE {}: {} (another program holds it?)",
                  queue_num, strerror(errno));
    nfq_close(handle);
    return 1;
  }
  // Only the verdict matters: ask for metadata, not payloads.
  nfq_set_mode(ctx.queue, NFQNL_COPY_META, 0);
  nfq_set_queue_maxlen(ctx.queue, absl::GetFlag(FLAGS_max_held));
  nfnl_rcvbufsiz(nfq_nfnlh(handle), 8 << 20);

  int nl_fd = nfq_fd(handle);
  int sig_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  log->info("queue {}: delay {} ms, jitter {} ms ({}), loss {}%, {}, seed {}",
            queue_num, delay_ms, jitter_ms, distribution, loss_percent,
            options.reorder ? "may reorder" : "keeps order", seed);

  const int64_t spin_ns = int64_t{absl::GetFlag(FLAGS_spin_us)} * 1000;
  std::vector<char> buffer(1 << 16);
  uint64_t enobufs = 0;
  int signals_seen = 0;
  while (signals_seen < 2) {
    int64_t now = NowNs();
    ReleaseDue(shaper, ctx.queue, now);
    if (ctx.draining && shaper.empty()) break;
    timespec timeout{1, 0};
    if (!shaper.empty()) {
      int64_t wait = std::max<int64_t>(0, shaper.next_due_ns() - now - spin_ns);
      timeout = {static_cast<time_t>(wait / 1'000'000'000),
                 static_cast<long>(wait % 1'000'000'000)};
    }
    pollfd fds[2] = {{nl_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
    int ready = ppoll(fds, 2, &timeout, nullptr);
    if (ready < 0 && errno != EINTR) {
      log->critical("ppoll: {}", strerror(errno));
      break;
    }
    if (ready > 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo info;
      while (read(sig_fd, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGHUP) continue;
        ++signals_seen;
        if (!ctx.draining) {
          ctx.draining = true;
          log->info("signal {}: draining {} held packets", info.ssi_signo,
                    shaper.held());
        }
      }
    }
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      while (true) {
        ssize_t n = recv(nl_fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == ENOBUFS) {
            ++enobufs;
            continue;
          }
          break;
        }
        nfq_handle_packet(handle, buffer.data(), static_cast<int>(n));
      }
    }
  }

  // After a second signal: packets still held would be dropped with the
  // queue; let them go now.
  uint64_t flushed = 0;
  while (!shaper.empty()) {
    nfq_set_verdict(ctx.queue, shaper.Pop(shaper.next_due_ns()).id, NF_ACCEPT,
                    0, nullptr);
    ++flushed;
  }
  log->info(
      "queue {}: {} packets, {} dropped ({:.2f}%), {} released ({} early at "
      "exit), {} passed unshaped while draining, most held {}, release late "
      "by mean {:.1f} us, max {:.1f} us, held past the delay since arrival by "
      "mean {:.1f} us, max {:.1f} us ({} of {} arrivals stamped by the "
      "kernel){}",
      queue_num, shaper.seen(), shaper.dropped(),
      shaper.seen() ? 100.0 * shaper.dropped() / shaper.seen() : 0.0,
      shaper.released(), flushed, ctx.passed_while_draining, shaper.max_held(),
      shaper.late_mean_us(), shaper.late_max_us(), shaper.over_mean_us(),
      shaper.over_max_us(), shaper.stamped(), shaper.seen(),
      enobufs ? fmt::format(", {} netlink overruns (kernel dropped)", enobufs)
              : std::string());
  nfq_destroy_queue(ctx.queue);
  nfq_close(handle);
  close(sig_fd);
  return 0;
}
