#pragma once
// Tells a non-streaming handler that its client went away, so that the row it waits for can be
// cancelled rather than decoded to max_tokens for nobody. cpp-httplib 0.11 (Debian 12) gives a
// handler neither its socket nor is_connection_closed(); a streaming handler notices a departed
// client on its next write, a non-streaming one writes only once it is done. So the probe finds the
// connection's socket among the process's descriptors by its address pair (the request carries the
// peer's address and port and the local port), once per request, and then polls it for a hang-up.
// httplib keeps that socket open until the handler returns, so the descriptor cannot be reused
// while the probe lives. Where no socket matches (not Linux, an unusual address), closed() stays
// false: the request then ends at max_tokens or its time-out, as before.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace flas::serve {

class ConnectionProbe {
 public:
  ConnectionProbe(const std::string& peer_address, int peer_port, int local_port) {
    if (peer_port < 0 || local_port < 0) return;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return;
    while (const dirent* e = ::readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0') continue;
      if (matches(int(fd), peer_address, peer_port, local_port)) {
        fd_ = int(fd);
        break;
      }
    }
    ::closedir(dir);
  }

  // Whether the connection's socket was found (only then can closed() become true).
  bool found() const { return fd_ >= 0; }

  // The peer closed its end (or reset it): nobody will read the reply.
  bool closed() const {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

 private:
  static bool matches(int fd, const std::string& peer_address, int peer_port, int local_port) {
    sockaddr_storage peer{}, local{};
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return false;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return false;
    return endpoint_is(peer, peer_address, peer_port) && endpoint_is(local, "", local_port);
  }

  // Port equal and, when an address is given, the address's text form equal (as httplib writes it).
  static bool endpoint_is(const sockaddr_storage& a, const std::string& address, int port) {
    char text[INET6_ADDRSTRLEN] = {};
    int p = -1;
    if (a.ss_family == AF_INET) {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
      p = ntohs(v4.sin_port);
      ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    } else if (a.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
      p = ntohs(v6.sin6_port);
      ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    } else {
      return false;
    }
    return p == port && (address.empty() || address == text);
  }

  int fd_ = -1;
};

}  // namespace flas::serve
