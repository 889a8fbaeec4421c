#ifndef LATENCY_COMMON_SIGNALS_H_
#define LATENCY_COMMON_SIGNALS_H_

namespace latency {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Call it first in
// main, before any thread starts, so every thread inherits the mask and
// WaitForShutdownSignal() is the only place the signals are delivered.
void BlockShutdownSignals();

// Waits until SIGINT or SIGTERM arrives and returns its number. SIGHUP is
// accepted and ignored (reserved for config reload).
int WaitForShutdownSignal();

}  // namespace latency

#endif  // LATENCY_COMMON_SIGNALS_H_
