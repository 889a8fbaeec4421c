#ifndef LATENCY_COMMON_SIGNALS_H_
#define LATENCY_COMMON_SIGNALS_H_

#include <functional>

namespace latency {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call it first in
// main, before any thread starts, so every thread inherits the mask and
// WaitForShutdownSignal() is the only place the signals are delivered.
void BlockShutdownSignals();

// Waits until SIGINT or SIGTERM arrives and returns its number. Each SIGHUP
// meanwhile runs `on_hangup` on the calling thread (reload certificates and
// tokens); without it SIGHUP is ignored.
int WaitForShutdownSignal(const std::function<void()>& on_hangup = nullptr);

// For clients (latencyctl): blocks only SIGINT and SIGTERM, which
// WaitForInterruptSignal() then returns; SIGHUP keeps its default action, so
// a client dies with its terminal.
void BlockInterruptSignals();
int WaitForInterruptSignal();

}  // namespace latency

#endif  // LATENCY_COMMON_SIGNALS_H_
