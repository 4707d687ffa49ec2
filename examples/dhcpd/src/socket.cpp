#include "socket.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace gsdhcpd {

namespace {

std::string errno_text(int error) {
  return std::strerror(error);
}

sockaddr_in to_sockaddr(ipv4 address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(address.value);
  sa.sin_port = htons(port);
  return sa;
}

int open_udp_socket(const std::string &what) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw socket_error(what + ": socket: " + errno_text(errno));
  int on = 1;
  // IP_PKTINFO tells us which address and interface each datagram arrived on; SO_BROADCAST lets
  // us send to 255.255.255.255. A larger receive buffer absorbs the requests that arrive while
  // the loop waits for a disk flush, which group commit then answers as one batch.
  int receive_buffer = 1 << 20;
  // SO_TIMESTAMPNS: when each datagram arrived, so that a graceful stop can tell the requests
  // that were already waiting from those that came after it began.
  if (::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) != 0) {
    int error = errno;
    ::close(fd);
    throw socket_error(what + ": setsockopt: " + errno_text(error));
  }
  return fd;
}

void bind_or_throw(int fd, ipv4 address, std::uint16_t port, const std::string &what) {
  sockaddr_in sa = to_sockaddr(address, port);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
    int error = errno;
    ::close(fd);
    throw socket_error(what + ": bind: " + errno_text(error));
  }
}

} // namespace

dhcp_socket dhcp_socket::bind_address(endpoint listen) {
  std::string what = "listen " + to_string(listen);
  int fd = open_udp_socket(what);
  bind_or_throw(fd, listen.address, listen.port, what);
  return dhcp_socket(fd);
}

dhcp_socket dhcp_socket::bind_interface(const std::string &name, std::uint16_t port) {
  std::string what = "interface " + name;
  if (name.empty() || name.size() >= IFNAMSIZ) throw socket_error(what + ": invalid name");
  int fd = open_udp_socket(what);
  int on = 1;
  // SO_REUSEADDR lets one server per interface bind 0.0.0.0:67 side by side.
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(),
                   static_cast<socklen_t>(name.size() + 1)) != 0) {
    int error = errno;
    ::close(fd);
    throw socket_error(what + ": setsockopt: " + errno_text(error));
  }
  bind_or_throw(fd, ipv4{}, port, what);
  return dhcp_socket(fd);
}

dhcp_socket::dhcp_socket(dhcp_socket &&other) noexcept
    : fd_(std::exchange(other.fd_, -1)), stats_(other.stats_),
      last_interface_index_(other.last_interface_index_), buffer_(std::move(other.buffer_)) {}

dhcp_socket &dhcp_socket::operator=(dhcp_socket &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    stats_ = other.stats_;
    last_interface_index_ = other.last_interface_index_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

dhcp_socket::~dhcp_socket() {
  if (fd_ >= 0) ::close(fd_);
}

endpoint dhcp_socket::local_endpoint() const {
  sockaddr_in sa{};
  socklen_t length = sizeof sa;
  if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&sa), &length) != 0)
    throw socket_error(std::string("getsockname: ") + errno_text(errno));
  return endpoint{ipv4{ntohl(sa.sin_addr.s_addr)}, ntohs(sa.sin_port)};
}

std::size_t dhcp_socket::on_readable(const datagram_handler &handler, std::size_t max_batch) {
  buffer_.resize(max_message_size + 1);
  std::size_t count = 0;
  while (count < max_batch) {
    sockaddr_in source{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(sizeof(timespec))];
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_name = &source;
    msg.msg_namelen = sizeof source;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: drained. Anything else (e.g. a queued ICMP error from an earlier send) is not
      // this datagram's fault; the loop will call again when there is more.
      break;
    }
    arrival from;
    from.source = ipv4{ntohl(source.sin_addr.s_addr)};
    from.source_port = ntohs(source.sin_port);
    last_interface_index_ = 0;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        from.destination = ipv4{ntohl(info.ipi_addr.s_addr)};
        last_interface_index_ = info.ipi_ifindex;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        from.received_ns = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      }
    }
    ++stats_.received;
    ++count;
    handler(buffer_.data(), static_cast<std::size_t>(n), from);
  }
  return count;
}

bool dhcp_socket::send(const reply &r) {
  ipv4 destination = r.delivery == delivery::unicast_yiaddr || r.delivery == delivery::broadcast
                         ? ipv4_broadcast
                         : r.address;
  std::vector<std::uint8_t> bytes = serialize(r.packet);
  sockaddr_in sa = to_sockaddr(destination, r.port);
  while (true) {
    ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ++stats_.send_failed;
      return false;
    }
    ++stats_.sent;
    return true;
  }
}

std::optional<ipv4> interface_address(const std::string &name) {
  ifaddrs *list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<ipv4> found;
  for (ifaddrs *i = list; i && !found; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && name == i->ifa_name) {
      sockaddr_in sa;
      std::memcpy(&sa, i->ifa_addr, sizeof sa);
      found = ipv4{ntohl(sa.sin_addr.s_addr)};
    }
  }
  ::freeifaddrs(list);
  return found;
}

void drop_privileges(const std::string &user) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd *found = nullptr;
  int error = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (error != 0 || !found)
    throw socket_error("user " + user + ": " + (error ? errno_text(error) : "no such user"));
  // Group first: once the uid is gone, changing groups is no longer allowed.
  if (::initgroups(entry.pw_name, entry.pw_gid) != 0)
    throw socket_error("user " + user + ": initgroups: " + errno_text(errno));
  if (::setgid(entry.pw_gid) != 0)
    throw socket_error("user " + user + ": setgid: " + errno_text(errno));
  if (::setuid(entry.pw_uid) != 0)
    throw socket_error("user " + user + ": setuid: " + errno_text(errno));
  // setuid from root sets all three uids; make sure there is no way back.
  if (entry.pw_uid != 0 && ::setuid(0) == 0)
    throw socket_error("user " + user + ": root privileges could be regained");
}

} // namespace gsdhcpd
