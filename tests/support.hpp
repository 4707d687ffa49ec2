// Test support: backends as types (so each backend's case is its own ctest process), a fake
// clock, an event recorder, and forked children whose output and exit are waited on through
// file descriptors, never with sleeps.
#ifndef GRACEFULSTOP_TESTS_SUPPORT_HPP
#define GRACEFULSTOP_TESTS_SUPPORT_HPP

#include <gracefulstop/stop.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace gs = gracefulstop;

namespace test {

struct self_pipe_backend {
  static constexpr gs::backend value = gs::backend::self_pipe;
};
struct signalfd_backend {
  static constexpr gs::backend value = gs::backend::signalfd;
};

/// Records every event as its logfmt line.
struct event_log {
  std::vector<std::string> lines;
  std::vector<gs::event_kind> kinds;
  std::function<void(const gs::event &)> hook() {
    return [this](const gs::event &e) {
      lines.push_back(gs::to_logfmt(e));
      kinds.push_back(e.kind);
    };
  }
  bool has(const std::string &fragment) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string &l) { return l.find(fragment) != std::string::npos; });
  }
  std::size_t count(gs::event_kind k) const {
    return static_cast<std::size_t>(std::count(kinds.begin(), kinds.end(), k));
  }
  std::string all() const {
    std::string s;
    for (const auto &l : lines)
      s += l + "\n";
    return s;
  }
};

/// A clock the test moves by hand, for deadline tests that must not depend on the machine's speed.
struct fake_clock {
  gs::stop_controller::clock::time_point t{std::chrono::seconds(1000)};
  std::function<gs::stop_controller::clock::time_point()> fn() {
    return [this] { return t; };
  }
  void advance(std::chrono::milliseconds d) { t += d; }
};

inline gs::stop_controller::options options_for(gs::backend b, event_log &log) {
  gs::stop_controller::options o;
  o.which = b;
  o.on_event = log.hook();
  // A test's own process is not a daemon launched by a shell: make SIGINT behave as in one.
  o.keep_inherited_ignore = false;
  return o;
}

inline bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

/// Runs the controller's loop until it stops or `bound_ms` of real time passes.
inline void run_until_stopped(gs::stop_controller &ctl, int bound_ms = 10000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
  while (ctl.state() != gs::controller_state::stopped) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          end - std::chrono::steady_clock::now())
                          .count();
    REQUIRE(left > 0);
    int timeout = ctl.next_timeout_ms();
    if (timeout < 0 || timeout > left) timeout = static_cast<int>(left);
    wait_readable(ctl.fd(), timeout);
    ctl.dispatch();
  }
}

/// A forked child. Its stdout and stderr go to one pipe the parent reads, so the parent learns
/// "ready", stage lines and EOF (= the child exited) through one descriptor.
struct child {
  pid_t pid = -1;
  int out = -1;
  std::string output;

  /// Reads until `needle` appears in the output or `timeout_ms` passes.
  bool wait_for(const std::string &needle, int timeout_ms = 5000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (output.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0 || !wait_readable(out, static_cast<int>(left))) return false;
      char buf[4096];
      const ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return output.find(needle) != std::string::npos;
      output.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  /// Reads to EOF and reaps the child; returns the raw wait status. Kills it after `timeout_ms`.
  int wait_exit(int timeout_ms = 10000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0 || !wait_readable(out, static_cast<int>(left))) {
        ::kill(pid, SIGKILL);
        FAIL("child did not exit in time; output so far:\n" << output);
      }
      char buf[4096];
      const ssize_t n = ::read(out, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      output.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::close(out);
    out = -1;
    pid = -1;
    return status;
  }

  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
  }
};

/// Forks; the child runs `body` with stdout/stderr on the pipe and exits with its return value.
inline void start_child(child &c, const std::function<int()> &body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr); // or the child inherits and repeats the harness's buffered output
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception &e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(fds[1]);
  c.pid = pid;
  c.out = fds[0];
}

/// The kernel's view of a process's signals and current system call, for failure messages.
inline std::string signal_state_of(pid_t pid) {
  std::string report;
  std::FILE *status = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (status != nullptr) {
    char line[256];
    while (std::fgets(line, sizeof line, status) != nullptr)
      if (std::strncmp(line, "Sig", 3) == 0 || std::strncmp(line, "ShdPnd", 6) == 0 ||
          std::strncmp(line, "State", 5) == 0)
        report += line;
    std::fclose(status);
  }
  std::FILE *sc = std::fopen(("/proc/" + std::to_string(pid) + "/syscall").c_str(), "r");
  if (sc != nullptr) {
    char line[256] = {};
    if (std::fgets(line, sizeof line, sc) != nullptr) report += std::string("syscall: ") + line;
    std::fclose(sc);
  }
  return report;
}

/// Prints a line and flushes, for children to report progress the parent waits on.
inline void say(const std::string &line) {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

} // namespace test

#endif // GRACEFULSTOP_TESTS_SUPPORT_HPP
