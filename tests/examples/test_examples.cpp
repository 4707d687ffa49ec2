// Runs each example as a real process: start it, wait for its ready line, signal it from outside,
// then check what it did (its logfmt lines and what its clients saw) and how it exited.
//
// The example binaries come in as GS_EXAMPLE_<NAME> definitions (their paths), set by CMake only
// for the examples whose library was found; the others' cases are not compiled.
#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>

using gs_test::child_process;
using gs_test::logfmt_field;

namespace {

// An upper bound for each wait, not a delay: every wait ends as soon as its line or event comes.
constexpr std::chrono::milliseconds patience{10000};

std::string require_line(child_process &child, std::string_view needle) {
  std::optional<std::string> line = child.next_line(needle, patience);
  if (!line)
    FAIL("no line containing \"" << needle << "\" from the example\n" << child.transcript());
  return *line;
}

int require_exit(child_process &child) {
  const std::optional<int> status = child.wait_exit(patience);
  if (!status) FAIL("the example did not exit\n" << child.transcript());
  return *status;
}

void check_exited_with(int status, int code, const child_process &child) {
  INFO(child.transcript());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == code);
}

void check_killed_by(int status, int signo, const child_process &child) {
  INFO(child.transcript());
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == signo);
}

int port_of(const std::string &ready_line) {
  const std::optional<std::string> port = logfmt_field(ready_line, "port");
  REQUIRE(port);
  const int value = std::atoi(port->c_str());
  REQUIRE(value > 0);
  REQUIRE(value < 65536);
  return value;
}

// ---- loopback clients ------------------------------------------------------------------------

class socket_fd {
public:
  explicit socket_fd(int fd = -1) : fd_(fd) {}
  socket_fd(socket_fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  socket_fd &operator=(socket_fd &&) = delete;
  ~socket_fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
};

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<in_port_t>(port));
  return a;
}

/// Connects to 127.0.0.1:port; returns the socket, or the errno of the failed connect.
std::pair<socket_fd, int> try_connect(int port) {
  socket_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(s.get() >= 0);
  const sockaddr_in a = loopback(port);
  if (::connect(s.get(), reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0)
    return {socket_fd(), errno};
  return {std::move(s), 0};
}

socket_fd connect_to(int port) {
  auto [s, error] = try_connect(port);
  INFO("connect: " << std::strerror(error));
  REQUIRE(error == 0);
  return std::move(s);
}

/// Waits for `fd` to be readable (or writable); false on timeout.
bool wait_for(int fd, short events, gs_test::clock::time_point deadline) {
  pollfd p{fd, events, 0};
  int n;
  while ((n = ::poll(&p, 1, gs_test::ms_until(deadline))) < 0 && errno == EINTR) {
  }
  return n > 0;
}

/// Sends `message` and reads back exactly as many bytes.
std::string round_trip(int fd, const std::string &message) {
  REQUIRE(::send(fd, message.data(), message.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(message.size()));
  const auto deadline = gs_test::clock::now() + patience;
  std::string echoed;
  char buffer[4096];
  while (echoed.size() < message.size()) {
    REQUIRE(wait_for(fd, POLLIN, deadline));
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    REQUIRE(n > 0);
    echoed.append(buffer, static_cast<std::size_t>(n));
  }
  return echoed;
}

/// Sends all of `payload` while reading the echo, half-closes, and reads until the server closes.
/// Returns everything received (the echo, if the server finished it).
std::string exchange_until_closed(int fd, const std::string &payload) {
  const auto deadline = gs_test::clock::now() + patience;
  std::size_t sent = 0;
  bool half_closed = false;
  std::string received;
  char buffer[65536];
  for (;;) {
    if (sent == payload.size() && !half_closed) {
      REQUIRE(::shutdown(fd, SHUT_WR) == 0);
      half_closed = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (half_closed ? 0 : POLLOUT)), 0};
    const int n = ::poll(&p, 1, gs_test::ms_until(deadline));
    REQUIRE(n > 0); // timed out otherwise
    if (p.revents & POLLOUT) {
      const ssize_t w =
          ::send(fd, payload.data() + sent, std::min<std::size_t>(payload.size() - sent, 65536),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) sent += static_cast<std::size_t>(w);
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t r = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (r == 0) return received;
      if (r > 0) received.append(buffer, static_cast<std::size_t>(r));
      if (r < 0 && errno != EAGAIN && errno != EINTR) return received;
    }
  }
}

/// True once the server closes the connection (EOF or reset) before the deadline.
bool closed_by_server(int fd) {
  const auto deadline = gs_test::clock::now() + patience;
  char buffer[4096];
  for (;;) {
    if (!wait_for(fd, POLLIN, deadline)) return false;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return true;
  }
}

std::string test_payload(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// ---- the echo servers (epoll, asio, libuv, libevent) -----------------------------------------
//
// All four take [PORT [DRAIN_BUDGET_MS]], print `event=ready ... port=N`, and register the stages
// stop-accepting, drain (waits for open connections to close, within the budget) and close.

// SIGTERM while a client is connected: new clients are refused, the open one is still served to
// the end of what it sends (even past its half-close), the drain completes when it closes, exit 0.
void echo_sigterm_drains(const char *binary) {
  child_process server({binary, "0"});
  const int port = port_of(require_line(server, "event=ready"));
  socket_fd client = connect_to(port);
  REQUIRE(round_trip(client.get(), "hello\n") == "hello\n");

  server.send_signal(SIGTERM);
  const std::string requested = require_line(server, "event=stop-requested signal=SIGTERM");
  CHECK(logfmt_field(requested, "sender_pid") == std::to_string(::getpid()));
  CHECK(logfmt_field(require_line(server, "event=stage stage=stop-accepting"), "outcome") ==
        "done");
  require_line(server, "event=stage-start stage=drain");

  const int refused = try_connect(port).second;
  CHECK(refused == ECONNREFUSED);

  // Larger than the socket buffers, so the server has to hold back and finish its echo.
  const std::string payload = test_payload(3 << 20);
  const std::string echoed = exchange_until_closed(client.get(), payload);
  CHECK(echoed.size() == payload.size());
  CHECK((echoed == payload)); // not decomposed: Catch would print megabytes on failure

  const std::string drain = require_line(server, "event=stage stage=drain");
  CHECK(logfmt_field(drain, "outcome") == "done");
  const int status = require_exit(server);
  check_exited_with(status, 0, server);
  CHECK(server.index_of("event=stopped") != child_process::npos);
  CHECK(logfmt_field(server.lines()[server.index_of("event=stopped")], "status") == "0");
}

// A client that never closes: the drain gives up at its budget, the close stage closes it, and the
// stop still ends in a clean exit 0 (a skippable drain timing out is not a failed stop).
void echo_drain_budget_closes_the_rest(const char *binary) {
  child_process server({binary, "0", "300"});
  const int port = port_of(require_line(server, "event=ready"));
  socket_fd client = connect_to(port);
  REQUIRE(round_trip(client.get(), "ping\n") == "ping\n");

  server.send_signal(SIGTERM);
  const std::string drain = require_line(server, "event=stage stage=drain");
  CHECK(logfmt_field(drain, "outcome") == "timed_out");
  CHECK(std::atoi(logfmt_field(drain, "elapsed_ms").value_or("0").c_str()) >= 300);
  require_line(server, "reason=stop");
  CHECK(closed_by_server(client.get()));
  check_exited_with(require_exit(server), 0, server);
}

// ^C under the default policy: the same drain, then the process dies of SIGINT.
void echo_sigint_reraises(const char *binary) {
  child_process server({binary, "0"});
  const int port = port_of(require_line(server, "event=ready"));
  socket_fd client = connect_to(port);
  REQUIRE(round_trip(client.get(), "x") == "x");

  server.send_signal(SIGINT);
  require_line(server, "event=stage-start stage=drain");
  REQUIRE(round_trip(client.get(), "still served\n") == "still served\n");
  client.reset();
  CHECK(logfmt_field(require_line(server, "event=stage stage=drain"), "outcome") == "done");
  CHECK(logfmt_field(require_line(server, "event=stopped"), "reraise") == "SIGINT");
  check_killed_by(require_exit(server), SIGINT, server);
}

// A second ^C during the drain escalates to a fast stop: the drain is cancelled, the must-run
// close stage still closes the client, and the process dies of SIGINT.
void echo_second_sigint_skips_drain(const char *binary) {
  child_process server({binary, "0"});
  const int port = port_of(require_line(server, "event=ready"));
  socket_fd client = connect_to(port);
  REQUIRE(round_trip(client.get(), "x") == "x");

  server.send_signal(SIGINT);
  require_line(server, "event=stage-start stage=drain");
  server.send_signal(SIGINT);
  CHECK(logfmt_field(require_line(server, "event=escalated"), "action") == "fast");
  CHECK(logfmt_field(require_line(server, "event=stage stage=drain"), "outcome") == "cancelled");
  CHECK(logfmt_field(require_line(server, "event=stage stage=close"), "outcome") == "done");
  CHECK(closed_by_server(client.get()));
  check_killed_by(require_exit(server), SIGINT, server);
}

} // namespace

#define GS_ECHO_SERVER_TESTS(name, binary)                                                         \
  TEST_CASE(name ": SIGTERM stops accepting and drains the open connection then exits 0",          \
            "[examples]") {                                                                        \
    echo_sigterm_drains(binary);                                                                   \
  }                                                                                                \
  TEST_CASE(name ": the drain budget ends the wait and the close stage closes the client",         \
            "[examples]") {                                                                        \
    echo_drain_budget_closes_the_rest(binary);                                                     \
  }                                                                                                \
  TEST_CASE(name ": SIGINT drains then dies of SIGINT", "[examples]") {                            \
    echo_sigint_reraises(binary);                                                                  \
  }                                                                                                \
  TEST_CASE(name ": a second SIGINT cancels the drain", "[examples]") {                            \
    echo_second_sigint_skips_drain(binary);                                                        \
  }

#ifdef GS_EXAMPLE_EPOLL
GS_ECHO_SERVER_TESTS("epoll", GS_EXAMPLE_EPOLL)

TEST_CASE("epoll: bad arguments get a specific error and status 2", "[examples]") {
  child_process server({GS_EXAMPLE_EPOLL, "70000"});
  CHECK(require_line(server, "PORT must be an integer in 0..65535, got \"70000\"").size() > 0);
  check_exited_with(require_exit(server), 2, server);
}
#endif
#ifdef GS_EXAMPLE_ASIO
GS_ECHO_SERVER_TESTS("asio", GS_EXAMPLE_ASIO)
#endif
#ifdef GS_EXAMPLE_LIBUV
GS_ECHO_SERVER_TESTS("libuv", GS_EXAMPLE_LIBUV)
#endif
#ifdef GS_EXAMPLE_LIBEVENT
GS_ECHO_SERVER_TESTS("libevent", GS_EXAMPLE_LIBEVENT)
#endif

// ---- legacy-blocking: a blocking recvfrom() loop stopped through EINTR -----------------------

#ifdef GS_EXAMPLE_LEGACY_BLOCKING
namespace {

// A directory of our own for the daemon's state file, removed on every path.
class temp_dir {
public:
  temp_dir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/gs-example-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::system_category(), "mkdtemp");
    path_ = pattern;
  }
  ~temp_dir() {
    for (const char *name : {"/state", "/state.new"})
      ::unlink((path_ + name).c_str());
    ::rmdir(path_.c_str());
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Sends one datagram to the daemon and returns its reply.
std::string udp_request(int port, const std::string &message) {
  socket_fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(s.get() >= 0);
  const sockaddr_in a = loopback(port);
  REQUIRE(::sendto(s.get(), message.data(), message.size(), 0,
                   reinterpret_cast<const sockaddr *>(&a),
                   sizeof a) == static_cast<ssize_t>(message.size()));
  REQUIRE(wait_for(s.get(), POLLIN, gs_test::clock::now() + patience));
  char reply[256];
  const ssize_t n = ::recv(s.get(), reply, sizeof reply, 0);
  REQUIRE(n > 0);
  return std::string(reply, static_cast<std::size_t>(n));
}

/// Waits until the process's (only) thread sits in system call `number`, from
/// /proc/<pid>/syscall. Nothing signals "the child has entered a system call" on a descriptor,
/// so this polls, bounded by `patience`. nullopt if /proc cannot tell (not Linux, or no access).
std::optional<bool> wait_until_in_syscall(pid_t pid, long number) {
  const auto deadline = gs_test::clock::now() + patience;
  const std::string path = "/proc/" + std::to_string(pid) + "/syscall";
  for (;;) {
    std::ifstream in(path);
    std::string first;
    if (!(in >> first)) return std::nullopt;
    if (first != "running" && std::strtol(first.c_str(), nullptr, 10) == number) return true;
    if (gs_test::clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Starts the daemon, has it serve `requests` datagrams, and checks that it then sits blocked in
// recvfrom(): a signal can only stop it by interrupting that call.
int start_blocked_daemon(child_process &daemon, int requests) {
  const std::string ready = require_line(daemon, "event=ready");
  CHECK(daemon.index_of("event=installed backend=self-pipe") != child_process::npos);
  const int port = port_of(ready);
  for (int i = 1; i <= requests; ++i)
    REQUIRE(udp_request(port, "request") == "ok " + std::to_string(i) + "\n");
#if defined(SYS_recvfrom)
  const std::optional<bool> blocked = wait_until_in_syscall(daemon.pid(), SYS_recvfrom);
  if (blocked)
    REQUIRE(*blocked);
  else
    WARN("/proc/<pid>/syscall is not readable here: cannot confirm the daemon blocks in recvfrom");
#endif
  return port;
}

} // namespace

TEST_CASE("legacy-blocking: SIGTERM interrupts the blocked recvfrom and the daemon stops in order",
          "[examples]") {
  temp_dir dir;
  const std::string state = dir.path() + "/state";
  child_process daemon({GS_EXAMPLE_LEGACY_BLOCKING, "0", state});
  start_blocked_daemon(daemon, 1);

  daemon.send_signal(SIGTERM);
  // Nothing but the signal can wake it: no datagram comes, and it selects on nothing.
  require_line(daemon, "event=interrupted call=recvfrom errno=EINTR");
  require_line(daemon, "event=stop-requested signal=SIGTERM");
  CHECK(logfmt_field(require_line(daemon, "event=stage stage=stop-accepting"), "outcome") ==
        "done");
  CHECK(logfmt_field(require_line(daemon, "event=stage stage=flush"), "outcome") == "done");
  check_exited_with(require_exit(daemon), 0, daemon);
  CHECK(read_file(state) == "served=1\n");
}

TEST_CASE("legacy-blocking: SIGINT interrupts it too and it dies of SIGINT after its flush",
          "[examples]") {
  temp_dir dir;
  const std::string state = dir.path() + "/state";
  child_process daemon({GS_EXAMPLE_LEGACY_BLOCKING, "0", state});
  start_blocked_daemon(daemon, 2);

  daemon.send_signal(SIGINT);
  require_line(daemon, "event=interrupted call=recvfrom errno=EINTR");
  CHECK(logfmt_field(require_line(daemon, "event=stage stage=flush"), "outcome") == "done");
  CHECK(logfmt_field(require_line(daemon, "event=stopped"), "reraise") == "SIGINT");
  check_killed_by(require_exit(daemon), SIGINT, daemon);
  CHECK(read_file(state) == "served=2\n");
}

TEST_CASE("legacy-blocking: a flush that fails turns the exit status into 1", "[examples]") {
  temp_dir dir;
  // A directory that does not exist: the state file cannot be written.
  child_process daemon({GS_EXAMPLE_LEGACY_BLOCKING, "0", dir.path() + "/missing/state"});
  start_blocked_daemon(daemon, 1);

  daemon.send_signal(SIGTERM);
  const std::string flush = require_line(daemon, "event=stage stage=flush");
  CHECK(logfmt_field(flush, "outcome") == "failed");
  CHECK(flush.find("missing/state.new: No such file or directory") != std::string::npos);
  check_exited_with(require_exit(daemon), 1, daemon);
}
#endif

// ---- threads: a worker pool stopped through the stop token -----------------------------------

#if defined(GS_EXAMPLE_THREADS) || defined(GS_EXAMPLE_THREADS_CXX20)
namespace {

// Signals the pool while its workers are in the middle of items, then checks from its log that
// every item begun was finished, that items were still being finished after the drain began (it
// waited for them rather than cutting them off), and that the drain ended only after every worker
// had left.
void pool_finishes_items(const char *binary, const char *token_kind, int signo) {
  constexpr int workers = 3;
  child_process pool({binary, std::to_string(workers), "500"});
  CHECK(logfmt_field(require_line(pool, "event=ready"), "token") == token_kind);
  if (pool.index_of("event=item-start") == child_process::npos)
    require_line(pool, "event=item-start");

  pool.send_signal(signo);
  const int status = require_exit(pool);
  if (signo == SIGTERM)
    check_exited_with(status, 0, pool);
  else
    check_killed_by(status, signo, pool);

  INFO(pool.transcript());
  const auto &lines = pool.lines();
  const std::size_t drain_start = pool.index_of("event=stage-start stage=drain");
  const std::size_t drain_end = pool.index_of("event=stage stage=drain");
  REQUIRE(drain_start != child_process::npos);
  REQUIRE(drain_end != child_process::npos);
  CHECK(logfmt_field(lines[drain_end], "outcome") == "done");

  std::map<std::string, std::size_t> started, finished; // item -> line
  bool finished_while_draining = false;
  int exits_before_drain_end = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string item = logfmt_field(lines[i], "item").value_or("");
    if (lines[i].rfind("event=item-start ", 0) == 0) started[item] = i;
    if (lines[i].rfind("event=item-done ", 0) == 0) {
      finished[item] = i;
      if (i > drain_start && logfmt_field(lines[i], "stopping") == "true")
        finished_while_draining = true;
    }
    if (lines[i].rfind("event=worker-exit ", 0) == 0 && i < drain_end) ++exits_before_drain_end;
  }
  REQUIRE(!started.empty());
  for (const auto &[item, line] : started) {
    INFO("item " << item);
    REQUIRE(finished.count(item) == 1);
    CHECK(finished[item] < drain_end);
  }
  CHECK(finished_while_draining);
  CHECK(exits_before_drain_end == workers);
}

} // namespace
#endif

#ifdef GS_EXAMPLE_THREADS
TEST_CASE("threads-cxx17: SIGTERM lets every worker finish its item then exits 0", "[examples]") {
  pool_finishes_items(GS_EXAMPLE_THREADS, "gracefulstop", SIGTERM);
}
TEST_CASE("threads-cxx17: SIGINT lets every worker finish its item then dies of SIGINT",
          "[examples]") {
  pool_finishes_items(GS_EXAMPLE_THREADS, "gracefulstop", SIGINT);
}
#endif
#ifdef GS_EXAMPLE_THREADS_CXX20
TEST_CASE("threads-cxx20: SIGTERM lets every jthread finish its item then exits 0", "[examples]") {
  pool_finishes_items(GS_EXAMPLE_THREADS_CXX20, "std", SIGTERM);
}
TEST_CASE("threads-cxx20: SIGINT lets every jthread finish its item then dies of SIGINT",
          "[examples]") {
  pool_finishes_items(GS_EXAMPLE_THREADS_CXX20, "std", SIGINT);
}
#endif
