// The physical floor for the gRPC echo: a raw TCP ping-pong (blocking
// sockets, TCP_NODELAY, one thread each side) between a server and a client
// on the same path. Prints min / median / p99 in microseconds.
//
//   tcp_pingpong --serve=ADDR:PORT                 run the echo side
//   tcp_pingpong --connect=ADDR:PORT --count=2000 --interval_us=0 --bytes=32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool SplitAddress(const std::string& text, sockaddr_in* address) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  memset(address, 0, sizeof(*address));
  address->sin_family = AF_INET;
  address->sin_port =
      htons(static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return inet_pton(AF_INET, text.substr(0, colon).c_str(),
                   &address->sin_addr) == 1;
}

bool ReadFull(int fd, char* buffer, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = read(fd, buffer + done, n - done);
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

int Serve(const sockaddr_in& address) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (bind(listener, reinterpret_cast<const sockaddr*>(&address),
           sizeof(address)) != 0 ||
      listen(listener, 16) != 0) {
    perror("tcp_pingpong: bind/listen");
    return 1;
  }
  while (true) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) continue;
    std::thread([fd] {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      uint32_t length = 0;
      std::vector<char> buffer;
      while (ReadFull(fd, reinterpret_cast<char*>(&length), 4)) {
        buffer.resize(length);
        if (!ReadFull(fd, buffer.data(), length)) break;
        if (write(fd, &length, 4) != 4 ||
            write(fd, buffer.data(), length) != static_cast<ssize_t>(length)) {
          break;
        }
      }
      close(fd);
    }).detach();
  }
}

int Connect(const sockaddr_in& address, int count, int interval_us,
            uint32_t bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
              sizeof(address)) != 0) {
    perror("tcp_pingpong: connect");
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::vector<char> message(4 + bytes, 'x');
  memcpy(message.data(), &bytes, 4);
  std::vector<char> reply(4 + bytes);
  std::vector<double> rtts_us;
  for (int i = 0; i < count; ++i) {
    if (interval_us > 0) usleep(static_cast<useconds_t>(interval_us));
    int64_t start = NowNs();
    if (write(fd, message.data(), message.size()) !=
            static_cast<ssize_t>(message.size()) ||
        !ReadFull(fd, reply.data(), reply.size())) {
      fprintf(stderr, "tcp_pingpong: connection lost\n");
      return 1;
    }
    rtts_us.push_back(static_cast<double>(NowNs() - start) / 1e3);
  }
  std::sort(rtts_us.begin(), rtts_us.end());
  printf("tcp count=%d min_us=%.1f median_us=%.1f p99_us=%.1f\n", count,
         rtts_us.front(), rtts_us[rtts_us.size() / 2],
         rtts_us[rtts_us.size() * 99 / 100]);
  return 0;
}

std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--" + name + "=", 0) == 0)
      return arg.substr(name.size() + 3);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  sockaddr_in address;
  std::string serve = Flag(argc, argv, "serve", "");
  if (!serve.empty()) {
    if (!SplitAddress(serve, &address)) return 2;
    return Serve(address);
  }
  if (!SplitAddress(Flag(argc, argv, "connect", ""), &address)) {
    fprintf(stderr,
            "usage: tcp_pingpong --serve=IP:PORT | --connect=IP:PORT "
            "[--count=N] [--interval_us=N] [--bytes=N]\n");
    return 2;
  }
  return Connect(address, std::atoi(Flag(argc, argv, "count", "2000").c_str()),
                 std::atoi(Flag(argc, argv, "interval_us", "0").c_str()),
                 static_cast<uint32_t>(
                     std::atoi(Flag(argc, argv, "bytes", "32").c_str())));
}
