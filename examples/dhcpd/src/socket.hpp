// The server's UDP socket, independent of any event loop: the loop watches fd() for
// readability and calls on_readable(), which drains what is waiting without blocking.
#ifndef GSDHCPD_SOCKET_HPP
#define GSDHCPD_SOCKET_HPP

#include "ipv4.hpp"
#include "server.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gsdhcpd {

class socket_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct socket_stats {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t send_failed = 0; // e.g. a full send buffer: the client will retransmit
};

class dhcp_socket {
public:
  // ADDR:PORT, for tests and unprivileged use (a port below 1024 still needs privileges).
  static dhcp_socket bind_address(endpoint listen);
  // 0.0.0.0:port tied to one interface with SO_BINDTODEVICE, which is how a server without a
  // configured client address receives broadcasts on that interface alone. Needs root (or
  // CAP_NET_RAW and CAP_NET_BIND_SERVICE).
  static dhcp_socket bind_interface(const std::string &name, std::uint16_t port = 67);

  dhcp_socket(dhcp_socket &&other) noexcept;
  dhcp_socket &operator=(dhcp_socket &&other) noexcept;
  dhcp_socket(const dhcp_socket &) = delete;
  dhcp_socket &operator=(const dhcp_socket &) = delete;
  ~dhcp_socket();

  int fd() const { return fd_; }
  endpoint local_endpoint() const;

  using datagram_handler =
      std::function<void(const std::uint8_t *data, std::size_t size, const arrival &from)>;
  // Receives up to max_batch datagrams, calling `handler` for each; returns how many. Returns 0
  // when nothing is waiting. A datagram larger than max_message_size arrives cut to
  // max_message_size + 1 bytes, which parse_packet rejects as oversized.
  std::size_t on_readable(const datagram_handler &handler, std::size_t max_batch = 64);

  // Sends without blocking; false if the kernel refused (counted in stats()). unicast_yiaddr is
  // sent as a broadcast (see delivery in server.hpp).
  bool send(const reply &r);

  const socket_stats &stats() const { return stats_; }
  // Arrival interface of the last datagram received (IP_PKTINFO), 0 if unknown.
  int last_interface_index() const { return last_interface_index_; }

private:
  explicit dhcp_socket(int fd) : fd_(fd) {}

  int fd_ = -1;
  socket_stats stats_;
  int last_interface_index_ = 0;
  std::vector<std::uint8_t> buffer_;
};

// The first IPv4 address of an interface, to serve as server id in interface mode.
std::optional<ipv4> interface_address(const std::string &name);

// Switches to `user`'s uid, gid and supplementary groups for good. Call after binding the socket
// and before opening the lease database, so that the database files belong to that user.
void drop_privileges(const std::string &user);

} // namespace gsdhcpd

#endif // GSDHCPD_SOCKET_HPP
