#include "agent/wire_holds.h"

namespace latency {

void WireHolds::Attach(const std::string& peer, int64_t key,
                       v1::EchoResponse* response) {
  response->set_wire_stamps(true);
  const int64_t now_ns = clock_.MonotonicNanos();
  absl::MutexLock lock(&mu_);
  if (unreported_.size() >= kMaxPeers && !unreported_.contains(peer)) {
    unreported_.clear();  // peers come and go; a flood forgets them all
  }
  std::vector<Unreported>& echoes = unreported_[peer];
  // Each lookup first reads what the tap holds (this echo's request and the
  // earlier replies included), so nothing needs reading ahead of them.
  size_t kept = 0;
  for (const Unreported& echo : echoes) {
    std::optional<int64_t> hold = tap_->Lookup(echo.key).HoldNs();
    if (hold && *hold >= 0) {
      v1::WireHold* out = response->add_wire_holds();
      out->set_client_send_time_ns(echo.key);
      out->set_hold_ns(*hold);
    } else if (now_ns - echo.noted_ns < kGiveUpNs) {
      echoes[kept++] = echo;
      continue;
    }
    tap_->Forget(echo.key);
  }
  echoes.resize(kept);
  if (echoes.size() >= kMaxPerPeer) {
    tap_->Forget(echoes.front().key);
    echoes.erase(echoes.begin());
  }
  echoes.push_back(Unreported{key, now_ns});
}

}  // namespace latency
