// Idle cost: what a controller adds to every turn of an application's loop while no signal
// arrives, in system calls, heap allocations and time, next to the same loop without it.
//
// Two loop shapes:
//  - a busy loop that polls with a zero timeout (a game loop, a loop that also does work): the
//    baseline polls the application's one fd; the gracefulstop variants add ctl.fd() to the same
//    poll() and call dispatch() either only when ctl.fd() is readable, or on every turn as the
//    sketch in stop_controller.hpp does;
//  - gs::poll_loop, which calls dispatch() after every wakeup, against a plain poll() loop, both
//    woken on every turn by an application fd that is always readable.
//
// Figures are per iteration and differential: each variant runs N and 2N iterations in one
// process and the difference is divided by N, so setup and teardown cancel out.
// System calls are counted in-process with the raw_syscalls:sys_enter tracepoint, and again from
// outside with `strace -f -c` (N and 2N runs of a child process) when strace is installed.
// Allocations are counted by replacing the global operator new.
#include "bench_common.hpp"

#include <gracefulstop/stop.hpp>

#include <atomic>
#include <functional>
#include <new>
#include <spawn.h>

// ---- counting allocator
// --------------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> allocations{0};

void *counted_alloc(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void *counted_alloc_aligned(std::size_t n, std::align_val_t al) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = static_cast<std::size_t>(al);
  if (void *p = std::aligned_alloc(a, (n + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
} // namespace

void *operator new(std::size_t n) {
  return counted_alloc(n);
}
void *operator new[](std::size_t n) {
  return counted_alloc(n);
}
void *operator new(std::size_t n, const std::nothrow_t &) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void *operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_aligned(n, a);
}
void *operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_aligned(n, a);
}
void operator delete(void *p) noexcept {
  std::free(p);
}
void operator delete[](void *p) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void *p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace {

using namespace bench;
namespace gs = gracefulstop;

struct measured {
  std::uint64_t syscalls = 0;
  bool syscalls_counted = false;
  std::uint64_t allocations = 0;
  std::uint64_t ns = 0;
};

/// Runs `loop(iterations)` with the counters around it (and nothing else inside them).
template <class Loop>
measured measure(std::uint64_t iterations, Loop &&loop) {
  measured m;
  std::string why_not;
  std::optional<tracepoint_counter> sys =
      tracepoint_counter::open("raw_syscalls/sys_enter", "", why_not);
  const std::uint64_t a0 = allocations.load();
  if (sys) sys->reset_and_enable();
  const std::uint64_t t0 = now_ns();
  loop(iterations);
  const std::uint64_t t1 = now_ns();
  if (sys) {
    sys->disable();
    m.syscalls = sys->value();
    m.syscalls_counted = true;
  }
  m.allocations = allocations.load() - a0;
  m.ns = t1 - t0;
  return m;
}

std::unique_ptr<gs::stop_controller> make_controller(gs::backend b) {
  gs::stop_controller::options o;
  o.which = b;
  auto ctl = std::make_unique<gs::stop_controller>(o); // default policies: SIGTERM and SIGINT
  ctl->install();
  return ctl;
}

/// The application's own fd: a pipe, empty (nothing to do) or holding a byte (always readable).
struct app_fd {
  pipe_pair p;
  explicit app_fd(bool readable) {
    if (readable) write_byte(p.write);
  }
};

struct variant {
  const char *name;
  const char *label;
  const char *baseline; ///< the variant it is compared with
  /// Sets up, then runs `measure` over the given number of iterations.
  std::function<measured(std::uint64_t)> run;
};

measured busy_baseline(std::uint64_t n) {
  app_fd app(false);
  return measure(n, [&](std::uint64_t k) {
    for (std::uint64_t i = 0; i < k; ++i) {
      pollfd fds[1] = {{app.p.read, POLLIN, 0}};
      if (::poll(fds, 1, 0) < 0) fail_errno("poll");
    }
  });
}

measured busy_gracefulstop(gs::backend b, bool every_turn, std::uint64_t n) {
  app_fd app(false);
  auto ctl = make_controller(b);
  return measure(n, [&](std::uint64_t k) {
    for (std::uint64_t i = 0; i < k; ++i) {
      pollfd fds[2] = {{app.p.read, POLLIN, 0}, {ctl->fd(), POLLIN, 0}};
      if (::poll(fds, 2, 0) < 0) fail_errno("poll");
      if (every_turn || fds[1].revents != 0) ctl->dispatch();
    }
  });
}

measured woken_baseline(std::uint64_t n) {
  app_fd app(true);
  std::uint64_t turns = 0;
  std::function<void(short)> on_app = [&](short) { ++turns; };
  return measure(n, [&](std::uint64_t k) {
    while (turns < k) {
      pollfd fds[1] = {{app.p.read, POLLIN, 0}};
      if (::poll(fds, 1, -1) < 0) fail_errno("poll");
      if (fds[0].revents != 0) on_app(fds[0].revents);
    }
  });
}

measured woken_poll_loop(gs::backend b, std::uint64_t n) {
  app_fd app(true);
  gs::stop_controller::options o;
  o.which = b;
  o.watchdog_margin = std::chrono::milliseconds(0); // no watchdog thread for the final stop
  gs::stop_controller ctl(o);
  ctl.install();
  gs::poll_loop loop;
  std::uint64_t turns = 0, target = 0;
  loop.watch(app.p.read, POLLIN, [&](short) {
    // The loop runs until the controller has stopped; a programmatic stop after the wanted
    // number of turns ends it (its one-off cost cancels out between the N and 2N runs).
    if (++turns == target) ctl.request_stop(gs::signal_policy::graceful(std::chrono::seconds(1)));
  });
  return measure(n, [&](std::uint64_t k) {
    target = k;
    loop.run(ctl);
  });
}

std::vector<variant> variants() {
  using gs::backend;
  return {
      {"busy-baseline", "poll(app fd, timeout 0): baseline", "busy-baseline", busy_baseline},
      {"busy-signalfd-when-readable", "+ ctl.fd() (signalfd); dispatch() when it is readable",
       "busy-baseline",
       [](std::uint64_t n) { return busy_gracefulstop(backend::signalfd, false, n); }},
      {"busy-self-pipe-when-readable", "+ ctl.fd() (self-pipe); dispatch() when it is readable",
       "busy-baseline",
       [](std::uint64_t n) { return busy_gracefulstop(backend::self_pipe, false, n); }},
      {"busy-signalfd-every-turn", "+ ctl.fd() (signalfd); dispatch() on every turn",
       "busy-baseline",
       [](std::uint64_t n) { return busy_gracefulstop(backend::signalfd, true, n); }},
      {"busy-self-pipe-every-turn", "+ ctl.fd() (self-pipe); dispatch() on every turn",
       "busy-baseline",
       [](std::uint64_t n) { return busy_gracefulstop(backend::self_pipe, true, n); }},
      {"woken-baseline", "poll(app fd, no timeout), app fd always readable: baseline",
       "woken-baseline", woken_baseline},
      {"woken-poll-loop-signalfd", "gs::poll_loop (signalfd), same app fd", "woken-baseline",
       [](std::uint64_t n) { return woken_poll_loop(backend::signalfd, n); }},
      {"woken-poll-loop-self-pipe", "gs::poll_loop (self-pipe), same app fd", "woken-baseline",
       [](std::uint64_t n) { return woken_poll_loop(backend::self_pipe, n); }},
  };
}

struct per_iteration {
  double syscalls = 0;
  bool syscalls_counted = false;
  double allocations = 0;
  double ns = 0;
  std::optional<double> strace_syscalls;
  std::string error;
};

/// Runs a variant at N and 2N in a child process (a controller per process) and returns the
/// differences per iteration.
per_iteration run_variant(const variant &v, std::uint64_t n) {
  struct result_area {
    measured one, two;
    char error[256];
  };
  shared<result_area> s;
  pipe_pair life;
  const pid_t pid = fork_child([&] {
    life.close_read();
    try {
      pin_to_cpu(0);
      v.run(n / 10 + 1); // warm caches and lazily initialised state outside the figures
      s->one = v.run(n);
      s->two = v.run(2 * n);
    } catch (const std::exception &e) {
      set_text(s->error, e.what());
      throw;
    }
  });
  life.close_write();
  per_iteration out;
  const std::optional<std::vector<int>> st = wait_children({pid}, life.read, 60000);
  if (!st || !exited_cleanly(st->front())) {
    out.error = s->error[0] ? s->error : (st ? describe_status(st->front()) : "timed out");
    return out;
  }
  const double d = static_cast<double>(n);
  auto diff = [&](std::uint64_t a, std::uint64_t b) {
    return (static_cast<double>(b) - static_cast<double>(a)) / d;
  };
  out.syscalls_counted = s->one.syscalls_counted && s->two.syscalls_counted;
  out.syscalls = diff(s->one.syscalls, s->two.syscalls);
  out.allocations = diff(s->one.allocations, s->two.allocations);
  out.ns = diff(s->one.ns, s->two.ns);
  return out;
}

/// Total system calls of `self --variant NAME --iterations N` under `strace -f -c`, or nullopt.
std::optional<std::uint64_t> strace_total(const std::string &self, const variant &v,
                                          std::uint64_t n, const std::string &tmp_dir) {
  const std::string out_file =
      tmp_dir + "/strace-" + v.name + "-" + std::to_string(n) + "-" + std::to_string(::getpid());
  const std::string iterations = std::to_string(n);
  std::vector<std::string> argv_s = {"strace", "-f",        "-c",   "-o",           out_file,  "--",
                                     self,     "--variant", v.name, "--iterations", iterations};
  std::vector<char *> argv;
  for (std::string &a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const int rc = ::posix_spawnp(&pid, "strace", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return std::nullopt;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::optional<std::uint64_t> total;
  std::ifstream in(out_file);
  std::string line;
  while (std::getline(in, line)) {
    // "100.00    0.001234           1      1234        12 total": calls is the 4th field.
    if (line.size() < 5 || line.compare(line.size() - 5, 5, "total") != 0) continue;
    char pct[32], secs[32], per_call[32];
    unsigned long long calls = 0;
    if (std::sscanf(line.c_str(), "%31s %31s %31s %llu", pct, secs, per_call, &calls) == 4)
      total = calls;
  }
  ::unlink(out_file.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return total;
}

bool on_path(const char *program) {
  const char *path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string p = path;
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t colon = std::min(p.find(':', start), p.size());
    const std::string candidate = p.substr(start, colon - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

std::string per_iter_text(double v) {
  // Differential counts are whole numbers per iteration unless something happened once in one
  // of the two runs; show two decimals so such noise is visible rather than rounded away.
  return fmt(v, 2);
}

} // namespace

int main(int argc, char **argv) {
  args a(argc, argv,
         "gs_bench_idle [--iterations N] [--rounds R] [--quick] [--no-strace] [--md FILE] [--csv "
         "FILE] "
         "[--tmp DIR]  |  gs_bench_idle --variant NAME --iterations N");
  const bool quick = a.flag("--quick");
  const std::uint64_t iterations = a.number("--iterations", quick ? 2000 : 100000, 10, 100000000);
  const std::uint64_t rounds = a.number("--rounds", quick ? 1 : 5, 1, 1000);
  const std::optional<std::string> only = a.value("--variant");
  const bool no_strace = a.flag("--no-strace");
  const std::string md_path = a.value("--md").value_or("");
  const std::string csv_path = a.value("--csv").value_or("");
  const std::string tmp_dir = a.value("--tmp").value_or("/tmp");
  a.done();

  try {
    const std::vector<variant> all = variants();
    if (only) {
      // One run of one variant, for strace to count from outside.
      for (const variant &v : all)
        if (*only == v.name) {
          v.run(iterations);
          return 0;
        }
      a.bad("unknown variant '" + *only + "'");
    }

    char self[4096];
    const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) fail_errno("readlink /proc/self/exe");
    self[len] = '\0';
    const bool use_strace = !no_strace && on_path("strace");
    const std::uint64_t strace_n = quick ? 200 : 5000;

    // Rounds, each running every variant once in rotated order: time per iteration drifts with
    // the machine's load, and the median over rounds, each next to its baseline, resists that.
    std::vector<std::vector<per_iteration>> per_round(all.size());
    for (std::uint64_t round = 0; round < rounds; ++round)
      for (std::size_t k = 0; k < all.size(); ++k) {
        const std::size_t i = (k + round) % all.size();
        per_round[i].push_back(run_variant(all[i], iterations));
      }
    std::vector<per_iteration> results;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const variant &v = all[i];
      per_iteration r;
      std::vector<double> sys, allocs, ns;
      for (const per_iteration &one : per_round[i]) {
        if (!one.error.empty()) r.error = one.error;
        sys.push_back(one.syscalls);
        allocs.push_back(one.allocations);
        ns.push_back(one.ns);
        r.syscalls_counted = one.syscalls_counted;
      }
      r.syscalls = median_of(sys);
      r.allocations = median_of(allocs);
      r.ns = median_of(ns);
      if (r.error.empty() && use_strace) {
        const auto one = strace_total(self, v, strace_n, tmp_dir);
        const auto two = strace_total(self, v, 2 * strace_n, tmp_dir);
        if (one && two)
          r.strace_syscalls = (static_cast<double>(*two) - static_cast<double>(*one)) /
                              static_cast<double>(strace_n);
      }
      if (!r.error.empty()) std::fprintf(stderr, "idle: %s: %s\n", v.name, r.error.c_str());
      results.push_back(r);
    }

    csv_sink csv(csv_path);
    std::string md;
    md += "## Idle cost\n\n";
    md += "Per loop iteration while no signal arrives, differential over " +
          std::to_string(iterations) + " and " + std::to_string(2 * iterations) +
          " iterations (setup cancels out), median of " + std::to_string(rounds) +
          " rounds that each run every loop once. System calls are counted in-process with the "
          "`raw_syscalls:sys_enter` tracepoint" +
          (use_strace ? " and, as a cross-check, with `strace -f -c` from outside (" +
                            std::to_string(strace_n) + " and " + std::to_string(2 * strace_n) +
                            " iterations)"
                      : std::string()) +
          "; allocations by a counting global `operator new`. Controllers have the default "
          "SIGTERM and SIGINT policies.\n\n";
    md += "| Loop | Syscalls / iteration | Syscalls / iteration (strace) | Allocations / iteration "
          "| ns / iteration | Added syscalls | Time vs baseline |\n";
    md += "|---|---:|---:|---:|---:|---:|---:|\n";
    auto find = [&](const char *name) -> const per_iteration * {
      for (std::size_t i = 0; i < all.size(); ++i)
        if (std::string_view(all[i].name) == name) return &results[i];
      return nullptr;
    };
    bool zero_when_readable = true;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const variant &v = all[i];
      const per_iteration &r = results[i];
      if (!r.error.empty()) {
        md += std::string("| ") + v.label + " | failed: " + r.error + " | | | | | |\n";
        csv.row("idle", v.name, "syscalls_per_iteration", "n/a", "count");
        std::printf("bench=idle variant=%s error=\"%s\"\n", v.name, r.error.c_str());
        zero_when_readable = false;
        continue;
      }
      const per_iteration *base = find(v.baseline);
      const bool is_base = std::string_view(v.name) == v.baseline;
      const std::string sys = r.syscalls_counted ? per_iter_text(r.syscalls) : "n/a";
      const std::string strace = r.strace_syscalls ? per_iter_text(*r.strace_syscalls) : "n/a";
      std::string added = "—", time_ratio = "—";
      if (!is_base && base != nullptr && base->error.empty()) {
        const std::optional<double> mine =
            r.syscalls_counted ? std::optional<double>(r.syscalls) : r.strace_syscalls;
        const std::optional<double> theirs =
            base->syscalls_counted ? std::optional<double>(base->syscalls) : base->strace_syscalls;
        if (mine && theirs) added = (*mine - *theirs >= 0 ? "+" : "") + fmt(*mine - *theirs, 2);
        if (base->ns > 0) time_ratio = fmt(r.ns / base->ns) + "×";
        if (std::string_view(v.name).find("when-readable") != std::string_view::npos) {
          const bool zero = mine && theirs && *mine - *theirs < 0.005 && r.allocations < 0.005;
          zero_when_readable = zero_when_readable && zero;
        }
      }
      md += std::string("| ") + v.label + " | " + sys + " | " + strace + " | " +
            per_iter_text(r.allocations) + " | " + fmt(r.ns, 0) + " | " + added + " | " +
            time_ratio + " |\n";
      csv.row("idle", v.name, "syscalls_per_iteration", sys, "count");
      csv.row("idle", v.name, "syscalls_per_iteration_strace", strace, "count");
      csv.row("idle", v.name, "allocations_per_iteration", per_iter_text(r.allocations), "count");
      csv.row("idle", v.name, "ns_per_iteration", fmt(r.ns, 1), "ns", is_base ? "" : v.baseline,
              !is_base && base != nullptr && base->ns > 0 ? fmt(r.ns / base->ns, 4) : "");
      std::printf(
          "bench=idle variant=%s syscalls_per_iteration=%s strace_syscalls_per_iteration=%s "
          "allocations_per_iteration=%s ns_per_iteration=%s\n",
          v.name, sys.c_str(), strace.c_str(), per_iter_text(r.allocations).c_str(),
          fmt(r.ns, 1).c_str());
    }
    // What each gracefulstop loop adds, in words, from this run's figures.
    auto added_syscalls = [&](const char *name) -> std::optional<double> {
      const per_iteration *r = find(name);
      const per_iteration *base = nullptr;
      for (const variant &v : all)
        if (std::string_view(v.name) == name) base = find(v.baseline);
      if (r == nullptr || base == nullptr || !r->error.empty() || !base->error.empty() ||
          !r->syscalls_counted || !base->syscalls_counted)
        return std::nullopt;
      return r->syscalls - base->syscalls;
    };
    auto added_text = [&](const char *name) {
      const std::optional<double> d = added_syscalls(name);
      return d ? (*d >= 0 ? "+" : "") + fmt(*d, 2) : std::string("n/a");
    };
    const std::optional<double> poll_loop_sfd = added_syscalls("woken-poll-loop-signalfd");
    const std::optional<double> poll_loop_pipe = added_syscalls("woken-poll-loop-self-pipe");
    const bool poll_loop_zero =
        poll_loop_sfd && poll_loop_pipe && *poll_loop_sfd < 0.005 && *poll_loop_pipe < 0.005;
    md += std::string("\nTarget: gracefulstop adds zero system calls and zero allocations to an "
                      "idle iteration: **") +
          (zero_when_readable ? "met" : "missed") +
          "** when the loop calls `dispatch()` only once `ctl.fd()` is readable. A loop that "
          "calls it on every turn, as the loop sketched at the top of `stop_controller.hpp` "
          "does, pays for the reads that find nothing: " +
          added_text("busy-signalfd-every-turn") +
          " system calls per turn with signalfd (the "
          "wake pipe and the signalfd), " +
          added_text("busy-self-pipe-every-turn") + " with the self-pipe. `gs::poll_loop` adds " +
          added_text("woken-poll-loop-signalfd") + " (signalfd) and " +
          added_text("woken-poll-loop-self-pipe") +
          " (self-pipe) per wakeup for an application fd" +
          (poll_loop_zero ? ": it dispatches only when the controller's fd is readable or a "
                            "deadline is due."
                          : ": it dispatches after every wakeup.") +
          " Even with no added system call, one `poll()` now watches two fds instead of one and "
          "the kernel checks each (for signalfd `ctl.fd()` is an epoll set): that, not "
          "user-space work, is the time the *when it is readable* rows add to an otherwise empty "
          "loop.\n\n";
    csv.row("idle-target", "gracefulstop", "zero_added_when_dispatch_on_readable",
            zero_when_readable ? "1" : "0", "bool", "", zero_when_readable ? "met" : "missed");
    write_file(md_path, md);

    for (const per_iteration &r : results)
      if (!r.error.empty()) return 1;
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "gs_bench_idle: %s\n", e.what());
    return 1;
  }
}
