// Runs gracefulstop-dhcpd as a real process and talks DHCP to it over loopback, as a relay agent
// would (perfdhcp does the same over a veth pair in the peer tests).
//
// Every wait is bounded and waits on a descriptor (the daemon's output pipe, a pidfd, the relay
// socket); the only polling is of /proc, where there is no descriptor to wait on.
#ifndef GSDHCPD_TESTS_DAEMON_HARNESS_HPP
#define GSDHCPD_TESTS_DAEMON_HARNESS_HPP

#include "ipv4.hpp"
#include "packet.hpp"

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

extern char **environ;

namespace dhcpd_test {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline int ms_until(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now()).count() + 1;
  return left <= 0 ? 0 : static_cast<int>(left);
}

inline gsdhcpd::ipv4 ip(const char *text) {
  return *gsdhcpd::parse_ipv4(text);
}

class temp_dir {
public:
  temp_dir() {
    char pattern[] = "/tmp/gsdhcpd-daemon-XXXXXX";
    if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }
  void write(const std::string &name, const std::string &text) const {
    std::ofstream(file(name), std::ios::binary | std::ios::trunc) << text;
  }

private:
  std::string path_;
};

// A child process with stdout and stderr on one pipe, read line by line.
class process {
public:
  explicit process(std::vector<std::string> argv, std::vector<std::string> extra_env = {}) {
    std::vector<char *> args;
    for (std::string &a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    // The environment without the variables the tests set, plus the extra ones.
    std::vector<std::string> env;
    for (char **e = environ; *e; ++e)
      if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env.emplace_back(*e);
    for (std::string &e : extra_env)
      env.push_back(e);
    std::vector<char *> envp;
    for (std::string &e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    name_ = argv[0];

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // A daemon starts from its supervisor with default dispositions and nothing blocked,
      // whatever the test runner inherited.
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2})
        ::sigaction(signo, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  }
  ~process() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (out_ >= 0) ::close(out_);
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  process(const process &) = delete;
  process &operator=(const process &) = delete;

  pid_t pid() const { return pid_; }
  int output_fd() const { return out_; }
  void signal(int signo) const {
    if (::kill(pid_, signo) != 0) throw std::runtime_error("kill failed");
  }

  // The next line after the last one returned that contains `needle`; nullopt on timeout/EOF.
  std::optional<std::string> wait_line(std::string_view needle, milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
      for (; cursor_ < lines_.size(); ++cursor_)
        if (lines_[cursor_].find(needle) != std::string::npos) return lines_[cursor_++];
      if (eof_ || !read_some(ms_until(deadline))) return std::nullopt;
    }
  }
  // Reads whatever output is there without waiting.
  void read_available() {
    while (!eof_ && read_some(0)) {
    }
  }
  // Waits for the exit (reading all output first); the wait status, or nullopt on timeout.
  std::optional<int> wait_exit(milliseconds timeout) {
    if (reaped_) return status_;
    const auto deadline = clock::now() + timeout;
    while (!eof_)
      if (!read_some(ms_until(deadline))) break;
    pollfd p{pidfd_, POLLIN, 0};
    while (::poll(&p, 1, ms_until(deadline)) < 0 && errno == EINTR) {
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    reaped_ = true;
    status_ = status;
    return status_;
  }
  bool exited() const { return reaped_; }

  const std::vector<std::string> &lines() const { return lines_; }
  std::size_t count(std::string_view needle) const {
    std::size_t n = 0;
    for (const std::string &l : lines_)
      n += l.find(needle) != std::string::npos;
    return n;
  }
  std::size_t index_of(std::string_view needle, std::size_t from = 0) const {
    for (std::size_t i = from; i < lines_.size(); ++i)
      if (lines_[i].find(needle) != std::string::npos) return i;
    return npos;
  }
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::string transcript() const {
    std::string out = name_ + " said:\n";
    for (const std::string &l : lines_)
      out += "  " + l + "\n";
    return out;
  }

  // Fills the output pipe so that the child's next write blocks: a way to hold the child at a
  // known point (its next log line) without stopping it. Returns the number of filler lines.
  std::size_t fill_output_pipe() {
    // A new open file description of the same pipe: O_NONBLOCK on it does not touch the child's.
    int fd = ::open(("/proc/" + std::to_string(pid_) + "/fd/2").c_str(),
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
    std::ifstream in("/proc/" + std::to_string(pid_) + "/syscall");
    long number = -1;
    std::string arg0;
    if (!(in >> number >> arg0)) return false;
    return number == SYS_write && arg0 == "0x2";
  }
  char state() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
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
  bool read_some(int timeout_ms) {
    pollfd p{out_, POLLIN, 0};
    int n;
    while ((n = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return false;
    char buffer[8192];
    ssize_t got;
    while ((got = ::read(out_, buffer, sizeof buffer)) < 0 && errno == EINTR) {
    }
    if (got <= 0) {
      eof_ = true;
      if (!partial_.empty()) lines_.push_back(std::exchange(partial_, {}));
      return false;
    }
    partial_.append(buffer, static_cast<std::size_t>(got));
    std::size_t newline;
    while ((newline = partial_.find('\n')) != std::string::npos) {
      lines_.push_back(partial_.substr(0, newline));
      partial_.erase(0, newline + 1);
    }
    return true;
  }

  std::string name_;
  pid_t pid_ = -1;
  int out_ = -1;
  int pidfd_ = -1;
  bool eof_ = false, reaped_ = false;
  int status_ = 0;
  std::string partial_;
  std::vector<std::string> lines_;
  std::size_t cursor_ = 0;
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
