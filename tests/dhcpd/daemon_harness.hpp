// Runs gracefulstop-dhcpd as a real process and talks DHCP to it over loopback, as a relay agent
// would (perfdhcp does the same over a veth pair in the peer tests).
//
// Every wait is bounded and waits on a descriptor (the daemon's output pipe, a pidfd, the relay
// socket); the only polling is of /proc, where there is no descriptor to wait on.
#ifndef GSDHCPD_TESTS_DAEMON_HARNESS_HPP
#define GSDHCPD_TESTS_DAEMON_HARNESS_HPP

#include "packet.hpp"
#include "server_fixture.hpp"

#include <child_process.hpp>

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dhcpd_test {

using gs_test::clock;
using gs_test::ms_until;
using std::chrono::milliseconds;

// The daemon (or a one-shot command) as a child process, plus what these tests need beyond the
// shared harness: the environment they control, and ways to hold the daemon at a known point.
class process : public gs_test::child_process {
public:
  explicit process(std::vector<std::string> argv, std::vector<std::string> extra_env = {})
      : child_process(std::move(argv), gs_test::child_input::none, environment(extra_env)) {}

  // Fills the output pipe so that the child's next write blocks: a way to hold the child at a
  // known point (its next log line) without stopping it. Returns the number of filler lines.
  std::size_t fill_output_pipe() {
    // A new open file description of the same pipe: O_NONBLOCK on it does not touch the child's.
    int fd = ::open(("/proc/" + std::to_string(pid()) + "/fd/2").c_str(),
                    O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open the child's stderr pipe");
    static const char filler[] = "filler................................................\n";
    std::size_t lines = 0;
    while (::write(fd, filler, sizeof filler - 1) == static_cast<ssize_t>(sizeof filler - 1))
      ++lines;
    ::close(fd);
    return lines;
  }
  // True once the child is blocked in write(2, ...) (its stderr), per /proc/PID/syscall.
  bool blocked_writing_stderr() const {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/syscall");
    long number = -1;
    std::string arg0;
    if (!(in >> number >> arg0)) return false;
    return number == SYS_write && arg0 == "0x2";
  }
  char state() const {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t paren = text.rfind(')');
    return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
  }
  // Polls /proc (no descriptor reports these states) for up to `timeout`.
  template <typename Predicate>
  bool wait_for_proc(Predicate &&p, milliseconds timeout) const {
    const auto deadline = clock::now() + timeout;
    while (!p()) {
      if (clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(2));
    }
    return true;
  }

private:
  // The test's environment without the variables the tests set themselves (a NOTIFY_SOCKET
  // inherited from a service manager would be spoken to), plus `extra`.
  static std::vector<std::string> environment(const std::vector<std::string> &extra) {
    std::vector<std::string> env;
    for (char **e = environ; *e; ++e)
      if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env.emplace_back(*e);
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }
};

// The value of `key` in a logfmt line (plain or quoted).
inline std::optional<std::string> field(std::string_view line, std::string_view key) {
  const std::string pattern = " " + std::string(key) + "=";
  std::size_t at = line.find(pattern);
  if (at == std::string_view::npos) return std::nullopt;
  at += pattern.size();
  if (at < line.size() && line[at] == '"') {
    std::string value;
    for (std::size_t i = at + 1; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      value.push_back(line[i]);
    }
    return value;
  }
  return std::string(line.substr(at, line.find(' ', at) - at));
}

// Runs a one-shot command to completion: its exit status and output lines.
struct run_result {
  int status = -1; // exit status, or -1 if it did not exit normally
  std::vector<std::string> lines;
  std::string text() const {
    std::string t;
    for (const std::string &l : lines)
      t += l + "\n";
    return t;
  }
};
inline run_result run(std::vector<std::string> argv, milliseconds timeout = milliseconds(20000)) {
  process p(std::move(argv));
  run_result r;
  std::optional<int> status = p.wait_exit(timeout);
  if (status && WIFEXITED(*status)) r.status = WEXITSTATUS(*status);
  r.lines = p.lines();
  return r;
}

// A relay agent on 127.0.0.2 at the server's port, as a real one listens on port 67. It binds
// first, so the test knows a port that is free on 127.0.0.2; the server then takes the same
// port on 127.0.0.1.
class relay {
public:
  relay() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int buffer = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(ip("127.0.0.2").value);
    if (::bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
      throw std::runtime_error("bind 127.0.0.2 failed");
    socklen_t length = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr *>(&sa), &length);
    port_ = ntohs(sa.sin_port);
    server_ = sa;
    server_.sin_addr.s_addr = htonl(ip("127.0.0.1").value);
  }
  ~relay() { ::close(fd_); }
  relay(const relay &) = delete;
  relay &operator=(const relay &) = delete;

  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }
  std::string server_endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  void send_bytes(const std::uint8_t *data, std::size_t size) {
    ::sendto(fd_, data, size, 0, reinterpret_cast<const sockaddr *>(&server_), sizeof server_);
  }
  void send(gsdhcpd::dhcp_packet p) {
    p.giaddr = ip("127.0.0.2");
    p.hops = 1;
    std::vector<std::uint8_t> bytes = gsdhcpd::serialize(p);
    send_bytes(bytes.data(), bytes.size());
  }
  // The next reply, waiting up to `timeout`.
  std::optional<gsdhcpd::dhcp_packet> receive(milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    return receive_now();
  }
  std::optional<gsdhcpd::dhcp_packet> receive_now() {
    std::uint8_t buffer[gsdhcpd::max_message_size];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n <= 0) return std::nullopt;
    gsdhcpd::parse_result parsed = gsdhcpd::parse_packet(buffer, static_cast<std::size_t>(n));
    if (!parsed.ok()) return std::nullopt;
    return parsed.packet;
  }

private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  sockaddr_in server_{};
};

inline std::array<std::uint8_t, 16> mac_of(std::uint32_t id) {
  return {0x02,
          0x42,
          0x00,
          static_cast<std::uint8_t>(id >> 16),
          static_cast<std::uint8_t>(id >> 8),
          static_cast<std::uint8_t>(id)};
}
inline std::string mac_text(std::uint32_t id) {
  auto m = mac_of(id);
  return gsdhcpd::hex_colon(m.data(), 6);
}

inline gsdhcpd::dhcp_packet client_message(gsdhcpd::message_type type, std::uint32_t id,
                                           std::uint32_t xid) {
  gsdhcpd::dhcp_packet p;
  p.xid = xid;
  p.chaddr = mac_of(id);
  p.options.type = type;
  return p;
}

// Many clients doing DISCOVER-OFFER-REQUEST-ACK through the relay, a window of them at a time,
// each retransmitting after `retransmit` without a reply as a real client would.
class load {
public:
  struct ack_record {
    gsdhcpd::ipv4 address;
    std::uint32_t client = 0;
    std::vector<gsdhcpd::ipv4> dns;
    clock::time_point request_sent;
  };

  load(relay &r, gsdhcpd::ipv4 server_id, std::uint32_t first_client, std::uint32_t clients,
       std::size_t window = 16)
      : relay_(r), server_id_(server_id), next_(first_client), end_(first_client + clients),
        window_(window) {}

  milliseconds retransmit{300};
  // When false, no new client starts (those in progress finish).
  bool starting = true;

  // Runs the clients until `done()` or `until`, reading the daemon's output meanwhile so that
  // its pipe never fills. Returns false if `until` passed first.
  template <typename Done>
  bool pump(process *daemon, clock::time_point until, Done &&done) {
    for (;;) {
      start_more();
      retransmit_overdue();
      if (done()) return true;
      if (clock::now() >= until) return false;
      pollfd fds[2] = {{relay_.fd(), POLLIN, 0}, {daemon ? daemon->output_fd() : -1, POLLIN, 0}};
      int timeout = std::min(ms_until(until), 20);
      ::poll(fds, 2, timeout);
      if (daemon && fds[1].revents) daemon->read_available();
      while (auto reply = relay_.receive_now())
        on_reply(*reply);
    }
  }
  bool pump_all(process *daemon, milliseconds timeout) {
    return pump(daemon, clock::now() + timeout, [&] { return finished(); });
  }
  bool finished() const { return next_ >= end_ && active_.empty(); }

  std::vector<ack_record> acks;
  std::size_t requests_sent = 0, retransmissions = 0, naks = 0, offers = 0;

private:
  struct client {
    bool requesting = false;
    gsdhcpd::ipv4 offered;
    clock::time_point sent;
    std::uint32_t xid = 0;
  };
  static std::uint32_t xid_for(std::uint32_t id, unsigned attempt) { return id * 64 + attempt; }

  void start_more() {
    while (starting && next_ < end_ && active_.size() < window_) {
      std::uint32_t id = next_++;
      client &c = active_[id];
      send(id, c);
    }
  }
  void send(std::uint32_t id, client &c) {
    c.xid = xid_for(id, attempts_[id]++ % 64);
    gsdhcpd::dhcp_packet p = client_message(
        c.requesting ? gsdhcpd::message_type::request : gsdhcpd::message_type::discover, id, c.xid);
    if (c.requesting) {
      p.options.requested_ip = c.offered;
      p.options.server_id = server_id_;
    }
    c.sent = clock::now();
    relay_.send(p);
    ++requests_sent;
  }
  void retransmit_overdue() {
    const auto now = clock::now();
    for (auto &[id, c] : active_)
      if (now - c.sent >= retransmit) {
        ++retransmissions;
        send(id, c);
      }
  }
  void on_reply(const gsdhcpd::dhcp_packet &reply) {
    const std::uint32_t id = reply.xid / 64;
    auto it = active_.find(id);
    if (it == active_.end() || it->second.xid != reply.xid) return; // late duplicate
    client &c = it->second;
    if (reply.options.type == gsdhcpd::message_type::offer && !c.requesting) {
      ++offers;
      c.requesting = true;
      c.offered = reply.yiaddr;
      send(id, c);
    } else if (reply.options.type == gsdhcpd::message_type::ack && c.requesting) {
      acks.push_back({reply.yiaddr, id, reply.options.dns_servers, c.sent});
      active_.erase(it);
    } else if (reply.options.type == gsdhcpd::message_type::nak) {
      ++naks;
      c.requesting = false;
      send(id, c);
    }
  }

  relay &relay_;
  gsdhcpd::ipv4 server_id_;
  std::uint32_t next_, end_;
  std::size_t window_;
  std::map<std::uint32_t, client> active_;
  std::map<std::uint32_t, unsigned> attempts_;
};

} // namespace dhcpd_test

#endif // GSDHCPD_TESTS_DAEMON_HARNESS_HPP
