// ConnectionProbe against real loopback TCP connections: it finds the server side's socket by the
// address pair (as httplib reports it), stays quiet while the client is connected (even with unread
// bytes pending), and reports the client's close.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "flas/serve/connection_probe.hpp"

using flas::serve::ConnectionProbe;

namespace {

int port_of(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  REQUIRE((peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n)) == 0);
  return ntohs(a.sin_port);
}

struct Loopback {  // a listening socket, one client and the accepted server side
  int listener = -1, client = -1, server = -1;
  Loopback() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    a.sin_port = htons(std::uint16_t(port_of(listener, false)));
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    server = ::accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
  }
  ~Loopback() {
    for (int fd : {listener, client, server})
      if (fd >= 0) ::close(fd);
  }
};

}  // namespace

TEST_CASE("the probe finds the connection by its address pair and sees the client close it") {
  Loopback c;
  const int client_port = port_of(c.client, false), server_port = port_of(c.server, false);
  const ConnectionProbe probe("127.0.0.1", client_port, server_port);
  REQUIRE(probe.found());
  CHECK_FALSE(probe.closed());
  REQUIRE(::write(c.client, "GET", 3) == 3);  // bytes waiting to be read are not a hang-up
  CHECK_FALSE(probe.closed());
  ::close(c.client);
  c.client = -1;
  CHECK(probe.closed());
}

TEST_CASE("the probe matches nothing for another peer, and then never reports a close") {
  Loopback c;
  const int client_port = port_of(c.client, false), server_port = port_of(c.server, false);
  const ConnectionProbe wrong_address("10.1.2.3", client_port, server_port);
  CHECK_FALSE(wrong_address.found());
  const ConnectionProbe wrong_port("127.0.0.1", client_port == 65535 ? 1 : client_port + 1, server_port);
  CHECK_FALSE(wrong_port.found());
  const ConnectionProbe unknown("127.0.0.1", -1, -1);  // what httplib leaves when it knows no address
  CHECK_FALSE(unknown.found());
  ::close(c.client);
  c.client = -1;
  CHECK_FALSE(wrong_port.closed());
}
