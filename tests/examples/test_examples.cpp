// Runs each example as a real process: start it, wait for its ready line, signal it from outside,
// then check what it did (its logfmt lines and what its clients saw) and how it exited.
//
// The example binaries come in as GS_EXAMPLE_<NAME> definitions (their paths), set by CMake only
// for the examples whose library was found; the others' cases are not compiled.
#include <child_process.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

using gs_test::child_process;

// The helpers live in a named namespace, not an anonymous one: which of them a build uses depends
// on which examples were found, and an unused internal function is an error under -Werror.
namespace examples_test {}
using namespace examples_test;

namespace examples_test {

/// The value of `key` in a logfmt line (unquoted values only, which is all the examples print).
inline std::optional<std::string> logfmt_field(std::string_view line, std::string_view key) {
  std::size_t pos = 0;
  while (pos < line.size()) {
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    const std::string_view token = line.substr(pos, end - pos);
    if (token.size() > key.size() && token.substr(0, key.size()) == key && token[key.size()] == '=')
      return std::string(token.substr(key.size() + 1));
    pos = end + 1;
  }
  return std::nullopt;
}

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

/// How an example ends after a stop by `signo` under the default policies: exit 0 for SIGTERM,
/// death by the signal itself for SIGINT (so that a calling shell sees the interrupt).
void check_stopped_by(int status, int signo, const child_process &child) {
  if (signo == SIGTERM)
    check_exited_with(status, 0, child);
  else
    check_killed_by(status, signo, child);
}

// Every example reads its command line through examples/common/example_support.hpp: a bad number
// names the argument and its range, too many arguments print the usage line, both exit 2.
void check_command_line(const char *binary, const std::string &program, const std::string &synopsis,
                        const std::string &first_argument, const std::string &first_range) {
  {
    child_process example({binary, "70000000"});
    require_line(example, program + ": " + first_argument + " must be an integer in " +
                              first_range + ", got \"70000000\"");
    check_exited_with(require_exit(example), 2, example);
  }
  {
    child_process example({binary, "1", "1", "1"});
    require_line(example, program + ": expected at most 2 arguments, got 3");
    require_line(example, "usage: " + program + " " + synopsis);
    check_exited_with(require_exit(example), 2, example);
  }
  {
    child_process example({binary, "--help"});
    require_line(example, "usage: " + program + " " + synopsis);
    check_exited_with(require_exit(example), 0, example);
  }
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

// A budget longer than any wait of the test: the drain can then only end because the client
// closed (or a second ^C cancelled it), never because time ran out.
constexpr const char *unbounded_drain_ms = "3600000";

/// An echo server started on a port of the kernel's choosing, with one client connected and
/// already served once (so the server has accepted it before any signal is sent).
struct echo_server_with_client {
  echo_server_with_client(const char *binary, const char *drain_budget_ms)
      : server({binary, "0", drain_budget_ms}), port(port_of(require_line(server, "event=ready"))),
        client(connect_to(port)) {
    REQUIRE(round_trip(client.get(), "hello\n") == "hello\n");
  }
  child_process server;
  int port;
  socket_fd client;
};

// SIGTERM while a client is connected: new clients are refused, the open one is still served to
// the end of what it sends (even past its half-close), the drain completes when it closes, exit 0.
void echo_sigterm_drains(const char *binary) {
  echo_server_with_client echo(binary, unbounded_drain_ms);
  child_process &server = echo.server;

  server.send_signal(SIGTERM);
  const std::string requested = require_line(server, "event=stop-requested signal=SIGTERM");
  CHECK(logfmt_field(requested, "sender_pid") == std::to_string(::getpid()));
  CHECK(logfmt_field(require_line(server, "event=stage stage=stop-accepting"), "outcome") ==
        "done");
  require_line(server, "event=stage-start stage=drain");

  const int refused = try_connect(echo.port).second;
  CHECK(refused == ECONNREFUSED);

  // Larger than the socket buffers, so the server has to hold back and finish its echo.
  const std::string payload = test_payload(3 << 20);
  const std::string echoed = exchange_until_closed(echo.client.get(), payload);
  CHECK(echoed.size() == payload.size());
  CHECK((echoed == payload)); // not decomposed: Catch would print megabytes on failure

  CHECK(logfmt_field(require_line(server, "event=stage stage=drain"), "outcome") == "done");
  CHECK(logfmt_field(require_line(server, "event=stopped"), "status") == "0");
  check_exited_with(require_exit(server), 0, server);
}

// A client that never closes: the drain gives up at its budget, the close stage closes it, and the
// stop still ends in a clean exit 0 (a skippable drain timing out is not a failed stop).
void echo_drain_budget_closes_the_rest(const char *binary) {
  echo_server_with_client echo(binary, "300");
  child_process &server = echo.server;

  server.send_signal(SIGTERM);
  const std::string drain = require_line(server, "event=stage stage=drain");
  CHECK(logfmt_field(drain, "outcome") == "timed_out");
  CHECK(std::atoi(logfmt_field(drain, "elapsed_ms").value_or("0").c_str()) >= 300);
  require_line(server, "reason=stop");
  CHECK(closed_by_server(echo.client.get()));
  check_exited_with(require_exit(server), 0, server);
}

// ^C under the default policy: the same drain, then the process dies of SIGINT.
void echo_sigint_reraises(const char *binary) {
  echo_server_with_client echo(binary, unbounded_drain_ms);
  child_process &server = echo.server;

  server.send_signal(SIGINT);
  require_line(server, "event=stage-start stage=drain");
  REQUIRE(round_trip(echo.client.get(), "still served\n") == "still served\n");
  echo.client.reset();
  CHECK(logfmt_field(require_line(server, "event=stage stage=drain"), "outcome") == "done");
  CHECK(logfmt_field(require_line(server, "event=stopped"), "reraise") == "SIGINT");
  check_killed_by(require_exit(server), SIGINT, server);
}

// A second ^C during the drain escalates to a fast stop: the drain is cancelled, the must-run
// close stage still closes the client, and the process dies of SIGINT.
void echo_second_sigint_skips_drain(const char *binary) {
  echo_server_with_client echo(binary, unbounded_drain_ms);
  child_process &server = echo.server;

  server.send_signal(SIGINT);
  require_line(server, "event=stage-start stage=drain");
  server.send_signal(SIGINT);
  CHECK(logfmt_field(require_line(server, "event=escalated"), "action") == "fast");
  CHECK(logfmt_field(require_line(server, "event=stage stage=drain"), "outcome") == "cancelled");
  CHECK(logfmt_field(require_line(server, "event=stage stage=close"), "outcome") == "done");
  CHECK(closed_by_server(echo.client.get()));
  check_killed_by(require_exit(server), SIGINT, server);
}

} // namespace examples_test

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
  }                                                                                                \
  TEST_CASE(name ": bad arguments get a specific error and status 2", "[examples]") {              \
    check_command_line(binary, "gs_example_" name, "[PORT [DRAIN_BUDGET_MS]]", "PORT",             \
                       "0..65535");                                                                \
  }

#ifdef GS_EXAMPLE_EPOLL
GS_ECHO_SERVER_TESTS("epoll", GS_EXAMPLE_EPOLL)
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
namespace examples_test {

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

/// Waits for the daemon to be ready, has it serve `requests` datagrams, checks that it then sits
/// blocked in recvfrom() (a signal can only stop it by interrupting that call), sends it `signo`
/// and waits for the call to be interrupted.
void signal_blocked_daemon(child_process &daemon, int requests, int signo) {
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
  daemon.send_signal(signo);
  // Nothing but the signal can wake it: no datagram comes, and it selects on nothing.
  require_line(daemon, "event=interrupted call=recvfrom errno=EINTR");
}

// The signal interrupts the blocked call, and the daemon stops in order: stop-accepting, then the
// flush that writes the state file, then its exit.
void legacy_stops_in_order(int signo, int requests) {
  temp_dir dir;
  const std::string state = dir.path() + "/state";
  child_process daemon({GS_EXAMPLE_LEGACY_BLOCKING, "0", state});
  signal_blocked_daemon(daemon, requests, signo);

  CHECK(logfmt_field(require_line(daemon, "event=stop-requested"), "signal") ==
        (signo == SIGTERM ? "SIGTERM" : "SIGINT"));
  CHECK(logfmt_field(require_line(daemon, "event=stage stage=stop-accepting"), "outcome") ==
        "done");
  CHECK(logfmt_field(require_line(daemon, "event=stage stage=flush"), "outcome") == "done");
  check_stopped_by(require_exit(daemon), signo, daemon);
  CHECK(read_file(state) == "served=" + std::to_string(requests) + "\n");
}

} // namespace examples_test

TEST_CASE("legacy-blocking: SIGTERM interrupts the blocked recvfrom and the daemon stops in order",
          "[examples]") {
  legacy_stops_in_order(SIGTERM, 1);
}

TEST_CASE("legacy-blocking: SIGINT interrupts it too and it dies of SIGINT after its flush",
          "[examples]") {
  legacy_stops_in_order(SIGINT, 2);
}

TEST_CASE("legacy-blocking: a flush that fails turns the exit status into 1", "[examples]") {
  temp_dir dir;
  // A directory that does not exist: the state file cannot be written.
  child_process daemon({GS_EXAMPLE_LEGACY_BLOCKING, "0", dir.path() + "/missing/state"});
  signal_blocked_daemon(daemon, 1, SIGTERM);

  const std::string flush = require_line(daemon, "event=stage stage=flush");
  CHECK(logfmt_field(flush, "outcome") == "failed");
  CHECK(flush.find("missing/state.new: No such file or directory") != std::string::npos);
  check_exited_with(require_exit(daemon), 1, daemon);
}

TEST_CASE("legacy-blocking: bad arguments get a specific error and status 2", "[examples]") {
  check_command_line(GS_EXAMPLE_LEGACY_BLOCKING, "gs_example_legacy_blocking",
                     "[PORT [STATE_FILE]]", "PORT", "0..65535");
}
#endif

// ---- threads: a worker pool stopped through the stop token -----------------------------------
//
// The pool runs with ITEM_MS "-": an item lasts until a byte arrives on the pool's stdin, which
// the test holds. So the test knows when every worker is mid-item, signals then, and decides when
// the items end: nothing depends on how long an item takes.

#if defined(GS_EXAMPLE_THREADS) || defined(GS_EXAMPLE_THREADS_CXX20)
namespace examples_test {

constexpr std::size_t pool_workers = 3;

/// Starts the pool and returns once every worker has begun an item that only the test can end.
void start_busy_pool(child_process &pool, const char *token_kind) {
  if (!pool.wait_for_lines("event=item-start", pool_workers, patience))
    FAIL("the workers did not all begin an item\n" << pool.transcript());
  // The ready line comes after the workers are spawned, so possibly after their first items.
  if (!pool.wait_for_lines("event=ready", 1, patience))
    FAIL("no ready line\n" << pool.transcript());
  CHECK(logfmt_field(pool.lines()[pool.index_of("event=ready")], "token") == token_kind);
}

/// Lines whose first field is `event=<kind>`.
std::vector<std::size_t> lines_of(const child_process &child, const std::string &kind) {
  std::vector<std::size_t> found;
  const std::string prefix = "event=" + kind + " ";
  for (std::size_t i = 0; i < child.lines().size(); ++i)
    if (child.lines()[i].rfind(prefix, 0) == 0) found.push_back(i);
  return found;
}

// The signal comes while every worker is provably inside an item. The drain must wait for those
// items rather than cut them off: it is still running when the test lets them finish, each worker
// then sees the stop and takes no new item, and the drain ends only after every worker has left.
void pool_finishes_items(const char *binary, const char *token_kind, int signo) {
  child_process pool({binary, std::to_string(pool_workers), "-"}, gs_test::child_input::piped);
  start_busy_pool(pool, token_kind);

  pool.send_signal(signo);
  // The stop requests the workers' token before its first stage starts.
  require_line(pool, "event=stage-start stage=drain");
  CHECK(pool.count_of("event=item-done") == 0);
  // One byte ends one item. The first worker done is not the last: the drain must still wait.
  pool.write_input("x");
  if (!pool.wait_for_lines("event=worker-exit", 1, patience))
    FAIL("no worker left after its item was released\n" << pool.transcript());
  CHECK(pool.count_of("event=stage stage=drain") == 0);
  pool.write_input(std::string(pool_workers - 1, 'x'));
  check_stopped_by(require_exit(pool), signo, pool);

  INFO(pool.transcript());
  const std::size_t drain_start = pool.index_of("event=stage-start stage=drain");
  const std::size_t drain_end = pool.index_of("event=stage stage=drain");
  REQUIRE(drain_end != child_process::npos);
  CHECK(logfmt_field(pool.lines()[drain_end], "outcome") == "done");

  const std::vector<std::size_t> started = lines_of(pool, "item-start");
  const std::vector<std::size_t> finished = lines_of(pool, "item-done");
  const std::vector<std::size_t> exited = lines_of(pool, "worker-exit");
  CHECK(started.size() == pool_workers); // no item begun after the stop
  CHECK(finished.size() == pool_workers);
  for (std::size_t line : finished) {
    INFO(pool.lines()[line]);
    CHECK(line > drain_start);
    CHECK(line < drain_end);
    CHECK(logfmt_field(pool.lines()[line], "stopping") == "true");
  }
  CHECK(exited.size() == pool_workers);
  for (std::size_t line : exited) {
    INFO(pool.lines()[line]);
    CHECK(line < drain_end);
    CHECK(logfmt_field(pool.lines()[line], "reason") == "stop");
  }
}

// A second ^C cancels the drain, but an item once begun is still finished: the process cannot end
// while the items are in hand, and ends (dying of SIGINT) once the test lets them finish.
void pool_fast_stop_still_finishes_items(const char *binary, const char *token_kind) {
  child_process pool({binary, std::to_string(pool_workers), "-"}, gs_test::child_input::piped);
  start_busy_pool(pool, token_kind);

  pool.send_signal(SIGINT);
  require_line(pool, "event=stage-start stage=drain");
  pool.send_signal(SIGINT);
  CHECK(logfmt_field(require_line(pool, "event=stage stage=drain"), "outcome") == "cancelled");
  require_line(pool, "event=stopped");
  // Stopped, but the main thread is joining workers that the test has not released yet.
  CHECK_FALSE(pool.wait_exit(std::chrono::milliseconds(0)));
  CHECK(pool.count_of("event=item-done") == 0);

  pool.write_input(std::string(pool_workers, 'x'));
  check_killed_by(require_exit(pool), SIGINT, pool);
  CHECK(lines_of(pool, "item-done").size() == pool_workers);
  CHECK(lines_of(pool, "worker-exit").size() == pool_workers);
}

} // namespace examples_test
#endif

#define GS_THREADS_TESTS(name, binary, token_kind)                                                 \
  TEST_CASE(name ": SIGTERM lets every worker finish its item then exits 0", "[examples]") {       \
    pool_finishes_items(binary, token_kind, SIGTERM);                                              \
  }                                                                                                \
  TEST_CASE(name ": SIGINT lets every worker finish its item then dies of SIGINT", "[examples]") { \
    pool_finishes_items(binary, token_kind, SIGINT);                                               \
  }                                                                                                \
  TEST_CASE(name ": a second SIGINT cancels the drain but not the items in hand", "[examples]") {  \
    pool_fast_stop_still_finishes_items(binary, token_kind);                                       \
  }

#ifdef GS_EXAMPLE_THREADS
GS_THREADS_TESTS("threads-cxx17", GS_EXAMPLE_THREADS, "gracefulstop")
TEST_CASE("threads: bad arguments get a specific error and status 2", "[examples]") {
  check_command_line(GS_EXAMPLE_THREADS, "gs_example_threads", "[WORKERS [ITEM_MS | -]]", "WORKERS",
                     "1..64");
}
#endif
#ifdef GS_EXAMPLE_THREADS_CXX20
GS_THREADS_TESTS("threads-cxx20", GS_EXAMPLE_THREADS_CXX20, "std")
#endif
