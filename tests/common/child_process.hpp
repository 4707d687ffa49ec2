// A program under test as a real process: started with fork/exec, its stdout and stderr read line
// by line through one pipe, its stdin optionally fed by the test, signalled with kill(), and
// always reaped (killed first if the test ends while it still runs).
//
// Every wait is bounded and waits on a descriptor (the output pipe, a pidfd), never on a sleep:
// the programs under test announce what they do in logfmt lines, and the tests wait for those.
#ifndef GRACEFULSTOP_TESTS_COMMON_CHILD_PROCESS_HPP
#define GRACEFULSTOP_TESTS_COMMON_CHILD_PROCESS_HPP

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

extern char **environ;

namespace gs_test {

using clock = std::chrono::steady_clock;

/// Milliseconds left until `deadline`, as poll() wants them (0 once it has passed).
inline int ms_until(clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

/// What the child reads on its standard input.
enum class child_input {
  none,  ///< /dev/null
  piped, ///< a socket the test writes to with write_input()
};

class child_process {
public:
  /// Starts argv[0] (a path, not looked up in PATH) with `environment` ("NAME=value" strings) as
  /// its whole environment, or with the test's own when it is nullopt.
  explicit child_process(std::vector<std::string> argv, child_input input = child_input::none,
                         std::optional<std::vector<std::string>> environment = std::nullopt)
      : argv_(std::move(argv)) {
    if (argv_.empty()) throw std::invalid_argument("child_process: empty argv");
    // Built before fork: between fork and exec the child may only make async-signal-safe calls.
    std::vector<char *> args;
    for (std::string &a : argv_)
      args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char *> envp;
    if (environment) {
      for (std::string &e : *environment)
        envp.push_back(e.data());
      envp.push_back(nullptr);
    }
    char **const child_environment = environment ? envp.data() : environ;

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::system_category(), "pipe2");
    // A socket rather than a pipe for the input: send() with MSG_NOSIGNAL turns writing to a child
    // that has exited into an error instead of a SIGPIPE for the test.
    int input_fds[2] = {-1, -1};
    if (input == child_input::piped &&
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, input_fds) != 0) {
      const int saved = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::system_error(saved, std::system_category(), "socketpair");
    }
    // Output still buffered in the test's stdio would otherwise be in the child's copy too.
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
      const int saved = errno;
      for (int fd : {fds[0], fds[1], input_fds[0], input_fds[1]})
        if (fd >= 0) ::close(fd);
      throw std::system_error(saved, std::system_category(), "fork");
    }
    if (pid_ == 0) {
      // The program starts the way a daemon starts from a service manager: default dispositions
      // and nothing blocked, whatever the test runner itself inherited (a SIGINT ignored by a
      // background job would otherwise stay ignored across exec).
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2})
        ::sigaction(signo, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      const int stdin_source = input_fds[1] >= 0 ? input_fds[1] : ::open("/dev/null", O_RDONLY);
      if (stdin_source >= 0) ::dup2(stdin_source, STDIN_FILENO);
      ::dup2(fds[1], STDOUT_FILENO); // dup2 clears O_CLOEXEC on the copies: they survive exec
      ::dup2(fds[1], STDERR_FILENO);
      ::execve(args[0], args.data(), child_environment);
      static const char message[] = "event=exec-failed\n";
      [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    if (input_fds[1] >= 0) ::close(input_fds[1]);
    in_ = input_fds[0];
#if defined(SYS_pidfd_open)
    // A pidfd turns "has the child exited?" into a descriptor poll() can wait on with a timeout.
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
#endif
  }

  ~child_process() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (out_ >= 0) ::close(out_);
    if (in_ >= 0) ::close(in_);
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  child_process(const child_process &) = delete;
  child_process &operator=(const child_process &) = delete;

  pid_t pid() const {
    return pid_;
  }

  /// The read end of the child's output, for a test that polls it alongside other descriptors
  /// (then read_available() when it is readable).
  int output_fd() const {
    return out_;
  }

  void send_signal(int signo) const {
    if (::kill(pid_, signo) != 0) throw std::system_error(errno, std::system_category(), "kill");
  }

  /// Writes `data` to the child's standard input (child_input::piped).
  void write_input(std::string_view data) {
    if (in_ < 0) throw std::logic_error("child_process: started without child_input::piped");
    while (!data.empty()) {
      const ssize_t n = ::send(in_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::system_category(), "write_input");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Waits until `count` lines in all (not only those after the last one next_line() returned)
  /// contain `needle`; false if the output ends or `timeout` passes first.
  bool wait_for_lines(std::string_view needle, std::size_t count,
                      std::chrono::milliseconds timeout) {
    const clock::time_point deadline = clock::now() + timeout;
    for (;;) {
      if (count_of(needle) >= count) return true;
      if (eof_ || !read_some(ms_until(deadline))) return false;
    }
  }

  /// The next line (after the last one this returned) that contains `needle`, or nullopt if the
  /// output ends or `timeout` passes first.
  std::optional<std::string> next_line(std::string_view needle, std::chrono::milliseconds timeout) {
    const clock::time_point deadline = clock::now() + timeout;
    for (;;) {
      for (; cursor_ < lines_.size(); ++cursor_)
        if (lines_[cursor_].find(needle) != std::string::npos) return lines_[cursor_++];
      if (eof_ || !read_some(ms_until(deadline))) return std::nullopt;
    }
  }

  /// Reads whatever output is there without waiting, so that the child never blocks on a full
  /// pipe while the test is busy elsewhere.
  void read_available() {
    while (!eof_ && read_some(0)) {
    }
  }

  /// Waits for the child to exit (reading the rest of its output) and returns its wait status,
  /// or nullopt if it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (reaped_) return status_;
    const clock::time_point deadline = clock::now() + timeout;
    // All output first: the child's last lines are written before it exits, and EOF comes once
    // it has (it holds the only write end).
    while (!eof_)
      if (!read_some(ms_until(deadline))) break;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      while (::poll(&p, 1, ms_until(deadline)) < 0 && errno == EINTR) {
      }
    }
    // Without pidfd (old kernels), EOF on the pipe is the exit signal; WNOHANG then only misses a
    // child that closed its output and lives on, which the timeout reports.
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r != pid_) return std::nullopt;
    reaped_ = true;
    status_ = status;
    return status_;
  }

  /// True once wait_exit() has reaped the child.
  bool exited() const {
    return reaped_;
  }

  const std::vector<std::string> &lines() const {
    return lines_;
  }

  /// Index of the first line containing `needle`, or npos.
  std::size_t index_of(std::string_view needle, std::size_t from = 0) const {
    for (std::size_t i = from; i < lines_.size(); ++i)
      if (lines_[i].find(needle) != std::string::npos) return i;
    return npos;
  }
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// How many lines read so far contain `needle`.
  std::size_t count_of(std::string_view needle) const {
    return static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto &l) {
      return l.find(needle) != std::string::npos;
    }));
  }

  /// Everything read so far, for failure messages.
  std::string transcript() const {
    std::string out = argv_[0] + " said:\n";
    for (const std::string &line : lines_)
      out += "  " + line + "\n";
    if (!partial_.empty()) out += "  " + partial_ + " (no newline)\n";
    return out;
  }

private:
  /// Waits up to `timeout_ms` for output and reads what is there. False on timeout or EOF.
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

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  int pidfd_ = -1;
  bool eof_ = false;
  bool reaped_ = false;
  int status_ = 0;
  std::string partial_;
  std::vector<std::string> lines_;
  std::size_t cursor_ = 0;
};

} // namespace gs_test

#endif // GRACEFULSTOP_TESTS_COMMON_CHILD_PROCESS_HPP
