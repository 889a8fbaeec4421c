#include "common/listen.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace latency {
namespace {

// errno of binding one address like the listeners do, or 0.
int TryBind(const addrinfo& address) {
  int fd = socket(address.ai_family, address.ai_socktype | SOCK_CLOEXEC,
                  address.ai_protocol);
  if (fd < 0) return 0;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int error = bind(fd, address.ai_addr, address.ai_addrlen) == 0 ? 0 : errno;
  close(fd);
  return error;
}

}  // namespace

std::string PortInUseMessage(const std::string& flag,
                             const std::string& listen) {
  std::string port = listen.substr(listen.rfind(':') + 1);
  return absl::StrCat(flag, ": cannot listen on ", listen, ": port ", port,
                      " is already in use (another process listens there; "
                      "the latency binaries never share a port)");
}

absl::Status CheckListenAddress(const std::string& flag,
                                const std::string& listen) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port <= 0) {
    return absl::OkStatus();
  }
  std::string host = listen.substr(0, colon);
  absl::string_view bare = host;
  if (absl::ConsumePrefix(&bare, "[")) absl::ConsumeSuffix(&bare, "]");
  std::string node(bare);
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  std::string service = std::to_string(port);
  if (getaddrinfo(node.empty() ? nullptr : node.c_str(), service.c_str(),
                  &hints, &addresses) != 0) {
    return absl::OkStatus();
  }
  int error = 0;
  for (addrinfo* a = addresses; a != nullptr && error == 0; a = a->ai_next) {
    int e = TryBind(*a);
    if (e == EADDRINUSE || e == EADDRNOTAVAIL) error = e;
  }
  freeaddrinfo(addresses);
  if (error == EADDRINUSE) {
    return absl::UnavailableError(PortInUseMessage(flag, listen));
  }
  if (error == EADDRNOTAVAIL) {
    return absl::UnavailableError(absl::StrCat(flag, ": cannot listen on ",
                                               listen, ": ", host,
                                               " is not an address of this "
                                               "host"));
  }
  return absl::OkStatus();
}

}  // namespace latency
