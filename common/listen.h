#ifndef LATENCY_COMMON_LISTEN_H_
#define LATENCY_COMMON_LISTEN_H_

#include <string>

#include "absl/status/status.h"

namespace latency {

// Checks that `listen` (HOST:PORT as given to `flag`, e.g. "--http_listen")
// can be bound before a listener is built, so a taken port is refused with
// one message for every listener of every binary instead of gRPC core's
// error dump:
//   "FLAG: cannot listen on HOST:PORT: port PORT is already in use (another
//    process listens there; the latency binaries never share a port)"
// (UNAVAILABLE), or "...: HOST is not an address of this host". Binds like
// the listeners do (SO_REUSEADDR, never SO_REUSEPORT) and closes at once.
// Port 0, an unparsable address or any other failure returns OK and leaves
// the verdict to the listener itself.
absl::Status CheckListenAddress(const std::string& flag,
                                const std::string& listen);

// The message above, for a listener that finds the port taken itself.
std::string PortInUseMessage(const std::string& flag,
                             const std::string& listen);

}  // namespace latency

#endif  // LATENCY_COMMON_LISTEN_H_
