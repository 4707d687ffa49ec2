// Shared plumbing for the benchmark programs: clocks, CPU pinning, child processes with a time
// limit, kernel event counters, statistics and the three output formats (a logfmt line per result
// on stdout, markdown for BENCHMARKS.md, CSV rows for results.csv).
//
// Benchmarks print figures; they never pass or fail on a figure. A program exits non-zero only
// when it could not measure (a child died, a library refused to set up, output could not be
// written), so a smoke run catches benchmarks that rot without turning noise into failures.
#ifndef GRACEFULSTOP_BENCH_COMMON_HPP
#define GRACEFULSTOP_BENCH_COMMON_HPP

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <linux/perf_event.h>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace bench {

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes and CPUs of one machine, which is
/// what lets a sender's timestamp be subtracted from a receiver's.
inline std::uint64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] inline void fail(const std::string &what) {
  throw std::runtime_error(what);
}
[[noreturn]] inline void fail_errno(const std::string &what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

/// Number of CPUs this process may run on.
inline int usable_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

/// Pins the calling process to the `index`-th CPU it may use. Returns false (and leaves the
/// affinity alone) when there are not that many, e.g. on a one-CPU machine.
inline bool pin_to_cpu(int index) noexcept {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ != index) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return ::sched_setaffinity(0, sizeof one, &one) == 0;
  }
  return false;
}

inline void write_byte(int fd, char c = 'x') {
  for (;;) {
    const ssize_t n = ::write(fd, &c, 1);
    if (n == 1) return;
    if (n < 0 && errno == EINTR) continue;
    fail_errno("write");
  }
}

/// Reads one byte; returns false at end of file (the writer is gone).
inline bool read_byte(int fd) {
  char c;
  for (;;) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return true;
    if (n == 0) return false;
    if (errno == EINTR) continue;
    fail_errno("read");
  }
}

struct pipe_pair {
  int read = -1;
  int write = -1;
  pipe_pair() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("pipe2");
    read = fds[0];
    write = fds[1];
  }
  void close_read() noexcept { close_fd(read); }
  void close_write() noexcept { close_fd(write); }
  ~pipe_pair() {
    close_read();
    close_write();
  }
  pipe_pair(const pipe_pair &) = delete;
  pipe_pair &operator=(const pipe_pair &) = delete;

private:
  static void close_fd(int &fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

/// Anonymous shared memory that survives fork(): how a sender hands its timestamp to the receiver
/// and how children hand results back without a serialisation format.
template <class T>
class shared {
public:
  explicit shared(std::size_t extra_bytes = 0) : bytes_(sizeof(T) + extra_bytes) {
    void *p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail_errno("mmap");
    value_ = new (p) T();
  }
  ~shared() {
    value_->~T();
    ::munmap(value_, bytes_);
  }
  shared(const shared &) = delete;
  shared &operator=(const shared &) = delete;
  T *operator->() const noexcept { return value_; }
  T &operator*() const noexcept { return *value_; }
  /// The bytes after T (e.g. a sample array sized at run time).
  template <class U>
  U *tail() const noexcept {
    return reinterpret_cast<U *>(reinterpret_cast<char *>(value_) + sizeof(T));
  }

private:
  std::size_t bytes_;
  T *value_;
};

/// Copies `text` into a fixed buffer in shared memory (NUL-terminated, truncated).
template <std::size_t N>
void set_text(char (&buffer)[N], std::string_view text) noexcept {
  const std::size_t n = std::min(N - 1, text.size());
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
}

/// A forked child running `fn`; its exit status is 0 when `fn` returned, 2 when it threw (the
/// message goes to stderr), 3 for anything else.
template <class F>
pid_t fork_child(F &&fn) {
  std::fflush(nullptr); // or the child would flush the parent's buffered output a second time
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid > 0) return pid;
  int status = 0;
  try {
    fn();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench child %d: %s\n", static_cast<int>(::getpid()), e.what());
    status = 2;
  } catch (...) {
    status = 3;
  }
  std::fflush(nullptr);
  ::_exit(status);
}

/// Waits for `pids` with a deadline (milliseconds from now) by polling a pipe whose write end only
/// the children hold: it reads end-of-file the moment the last of them exits, so no sleep stands in
/// for the wait. On timeout every child is killed. Returns each child's wait status (in order), or
/// nullopt on timeout.
inline std::optional<std::vector<int>> wait_children(const std::vector<pid_t> &pids,
                                                     int life_read_fd, int timeout_ms) {
  const std::uint64_t end = now_ns() + static_cast<std::uint64_t>(timeout_ms) * 1000000u;
  bool timed_out = false;
  for (;;) {
    const std::uint64_t t = now_ns();
    const int left = t >= end ? 0 : static_cast<int>((end - t) / 1000000u) + 1;
    pollfd p{life_read_fd, POLLIN, 0};
    const int n = ::poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      char buffer[64];
      const ssize_t r = ::read(life_read_fd, buffer, sizeof buffer);
      if (r > 0 || (r < 0 && errno == EINTR)) continue; // data, not a close: keep waiting
      break;
    }
    if (n == 0) {
      timed_out = true;
      for (pid_t pid : pids)
        ::kill(pid, SIGKILL);
      break;
    }
  }
  std::vector<int> statuses;
  for (pid_t pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    statuses.push_back(status);
  }
  if (timed_out) return std::nullopt;
  return statuses;
}

inline bool exited_cleanly(int status) noexcept {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "ended oddly";
}

/// Counts a kernel tracepoint (e.g. "raw_syscalls/sys_enter") for the calling thread, optionally
/// with an ftrace filter, through perf_event_open. Needs tracefs and permission to open
/// tracepoint events (root, or perf_event_paranoid <= 1 with access to tracefs); when either is
/// missing, open() returns nullopt and the reason, and the benchmark reports "n/a".
class tracepoint_counter {
public:
  static std::optional<tracepoint_counter> open(const char *event, const std::string &filter,
                                                std::string &why_not) {
    long id = -1;
    for (const char *root : {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
      std::ifstream in(std::string(root) + event + "/id");
      if (in >> id) break;
      id = -1;
    }
    if (id < 0) {
      why_not = std::string("tracepoint ") + event + " not found (tracefs not mounted?)";
      return std::nullopt;
    }
    perf_event_attr attr{};
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = static_cast<std::uint64_t>(id);
    attr.disabled = 1;
    const long fd = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      why_not = std::string("perf_event_open(") + event + "): " + std::strerror(errno);
      return std::nullopt;
    }
    tracepoint_counter c(static_cast<int>(fd));
    if (!filter.empty() && ::ioctl(c.fd_, PERF_EVENT_IOC_SET_FILTER, filter.c_str()) != 0) {
      why_not = std::string("tracepoint filter '") + filter + "': " + std::strerror(errno);
      return std::nullopt;
    }
    return c;
  }
  tracepoint_counter(tracepoint_counter &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  tracepoint_counter &operator=(tracepoint_counter &&o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  tracepoint_counter(const tracepoint_counter &) = delete;
  tracepoint_counter &operator=(const tracepoint_counter &) = delete;
  ~tracepoint_counter() {
    if (fd_ >= 0) ::close(fd_);
  }
  void reset_and_enable() noexcept {
    ::ioctl(fd_, PERF_EVENT_IOC_RESET, 0);
    ::ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
  }
  void disable() noexcept { ::ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0); }
  std::uint64_t value() const noexcept {
    std::uint64_t v = 0;
    if (::read(fd_, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return 0;
    return v;
  }

private:
  explicit tracepoint_counter(int fd) noexcept : fd_(fd) {}
  int fd_;
};

// ---- statistics --------------------------------------------------------------------------------

/// Nearest-rank percentile of sorted data (p in [0, 100]).
inline std::uint64_t percentile(const std::vector<std::uint64_t> &sorted, double p) {
  if (sorted.empty()) return 0;
  if (p <= 0) return sorted.front();
  std::size_t rank =
      static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// ---- output ------------------------------------------------------------------------------------

inline std::string fmt(double v, int decimals = 2) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

/// Appends rows to results.csv (columns: section,name,metric,value,unit,baseline,ratio). Empty
/// baseline/ratio when the figure has none; "n/a" values when it could not be measured.
class csv_sink {
public:
  explicit csv_sink(std::string path) : path_(std::move(path)) {}
  void row(std::string_view section, std::string_view name, std::string_view metric,
           std::string_view value, std::string_view unit, std::string_view baseline = {},
           std::string_view ratio = {}) {
    if (path_.empty()) return;
    std::string line;
    for (std::string_view field : {section, name, metric, value, unit, baseline, ratio}) {
      if (!line.empty()) line.push_back(',');
      line.append(field);
    }
    line.push_back('\n');
    std::FILE *f = std::fopen(path_.c_str(), "a");
    if (f == nullptr) fail_errno("open " + path_);
    const bool ok = std::fputs(line.c_str(), f) >= 0;
    if (std::fclose(f) != 0 || !ok) fail_errno("write " + path_);
  }

private:
  std::string path_;
};

inline void write_file(const std::string &path, const std::string &text) {
  if (path.empty()) return;
  std::FILE *f = std::fopen(path.c_str(), "w");
  if (f == nullptr) fail_errno("open " + path);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) fail_errno("write " + path);
}

// ---- command line ------------------------------------------------------------------------------

/// A tiny flag parser: --name value and --flag. Unknown flags are an error with a usage line.
class args {
public:
  args(int argc, char **argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i)
      items_.emplace_back(argv[i]);
  }
  bool flag(std::string_view name) {
    for (std::size_t i = 0; i < items_.size(); ++i)
      if (items_[i] == name) {
        items_.erase(items_.begin() + static_cast<long>(i));
        return true;
      }
    return false;
  }
  std::optional<std::string> value(std::string_view name) {
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (items_[i] != name) continue;
      if (i + 1 >= items_.size()) bad(std::string(name) + " needs a value");
      std::string v = items_[i + 1];
      items_.erase(items_.begin() + static_cast<long>(i),
                   items_.begin() + static_cast<long>(i) + 2);
      return v;
    }
    return std::nullopt;
  }
  std::uint64_t number(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                       std::uint64_t max) {
    const std::optional<std::string> v = value(name);
    if (!v) return fallback;
    char *end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || errno != 0 || (*v)[0] == '-' || n < min || n > max)
      bad(std::string(name) + " wants a whole number from " + std::to_string(min) + " to " +
          std::to_string(max) + ", not '" + *v + "'");
    return n;
  }
  /// Call after taking every known flag.
  void done() {
    if (!items_.empty()) bad("unknown argument '" + items_.front() + "'");
  }
  [[noreturn]] void bad(const std::string &why) const {
    std::fprintf(stderr, "error: %s\nusage: %s\n", why.c_str(), usage_.c_str());
    std::exit(64);
  }

private:
  std::string usage_;
  std::vector<std::string> items_;
};

} // namespace bench

#endif // GRACEFULSTOP_BENCH_COMMON_HPP
