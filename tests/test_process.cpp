// Real processes: a daemon-like child is signalled from outside with kill(), and the test checks
// what a supervisor would see: stage order, exit status, sender, escalation, the watchdog, and
// children of the daemon that still die of SIGTERM.
#include "support.hpp"

#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/syscall.h>
#include <thread>

extern char **environ;

using namespace std::chrono_literals;

namespace {

struct daemon_setup {
  gs::backend which = gs::backend::automatic;
  std::function<void(gs::stop_controller &)> configure;
};

/// The body of a daemon-like child: stages that print, a "ready" line, the built-in loop, and
/// the exit rule at the end. Returns only if exit_process() somehow did not exit.
int run_daemon(const daemon_setup &setup) {
  gs::stop_controller::options o;
  o.which = setup.which;
  o.keep_inherited_ignore = false;
  o.on_event = [](const gs::event &e) { test::say(gs::to_logfmt(e)); };
  gs::stop_controller ctl(o);
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [](gs::stage_context &) {}});
  ctl.add_stage({"drain", gs::stage_kind::drain, [](gs::stage_context &) {}});
  ctl.add_stage({"flush", gs::stage_kind::flush, [](gs::stage_context &) {}});
  if (setup.configure) setup.configure(ctl);
  ctl.install();
  test::say("ready");
  gs::poll_loop loop;
  loop.run(ctl);
  ctl.exit_process();
}

std::vector<std::string> stage_lines(const std::string &output) {
  std::vector<std::string> names;
  std::size_t pos = 0;
  while ((pos = output.find("event=stage stage=", pos)) != std::string::npos) {
    pos += 18;
    names.push_back(output.substr(pos, output.find(' ', pos) - pos));
  }
  return names;
}

bool signal_blocked_in(pid_t pid, int signo) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, 7, "SigBlk:") == 0)
      return (std::strtoull(line.c_str() + 7, nullptr, 16) >> (signo - 1)) & 1U;
  return false;
}

} // namespace

TEMPLATE_TEST_CASE("SIGTERM from outside: stages in order, exit 0, the sender is named",
                   "[process]", test::self_pipe_backend, test::signalfd_backend) {
  test::child c;
  test::start_child(c, [] { return run_daemon({TestType::value, {}}); });
  REQUIRE(c.wait_for("ready"));
  REQUIRE(::kill(c.pid, SIGTERM) == 0);
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(stage_lines(c.output) == std::vector<std::string>{"stop-accepting", "drain", "flush"});
  CHECK(c.output.find("event=stop-requested signal=SIGTERM sender_pid=" +
                      std::to_string(::getpid())) != std::string::npos);
  CHECK(c.output.find("event=stopped") != std::string::npos);
}

TEMPLATE_TEST_CASE("SIGINT from outside: the process dies of SIGINT after its stages", "[process]",
                   test::self_pipe_backend, test::signalfd_backend) {
  test::child c;
  test::start_child(c, [] { return run_daemon({TestType::value, {}}); });
  REQUIRE(c.wait_for("ready"));
  REQUIRE(::kill(c.pid, SIGINT) == 0);
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFSIGNALED(status)); // what a shell needs to stop a loop on ^C
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK(stage_lines(c.output) == std::vector<std::string>{"stop-accepting", "drain", "flush"});
}

TEST_CASE("exit rule conventional: the process exits 128 + the signal number", "[process]") {
  test::child c;
  test::start_child(c, [] {
    return run_daemon({gs::backend::automatic, [](gs::stop_controller &ctl) {
                         ctl.set_policy(SIGTERM, gs::signal_policy::graceful(5s).exit_with(
                                                     gs::exit_rule::conventional()));
                       }});
  });
  REQUIRE(c.wait_for("ready"));
  REQUIRE(::kill(c.pid, SIGTERM) == 0);
  const int status = c.wait_exit();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + SIGTERM);
}

TEST_CASE("self-pipe: a third SIGINT ends a process whose loop is stuck in a stage",
          "[process][escalation]") {
  test::child c;
  test::start_child(c, [] {
    return run_daemon({gs::backend::self_pipe, [](gs::stop_controller &ctl) {
                         ctl.add_stage({"stuck", gs::stage_kind::flush, [](gs::stage_context &) {
                                          // A stage that never returns. sigsuspend wakes after
                                          // each handler run, which tells the test to send the
                                          // next; SIGINT stays blocked outside sigsuspend, so a
                                          // signal between say() and the wait is not missed.
                                          sigset_t intr, open_mask;
                                          sigemptyset(&intr);
                                          sigaddset(&intr, SIGINT);
                                          ::pthread_sigmask(SIG_BLOCK, &intr, &open_mask);
                                          sigdelset(&open_mask, SIGINT);
                                          for (int woke = 0;; ++woke) {
                                            test::say("stuck woke=" + std::to_string(woke));
                                            ::sigsuspend(&open_mask);
                                          }
                                        }});
                       }});
  });
  REQUIRE(c.wait_for("ready"));
  REQUIRE(::kill(c.pid, SIGINT) == 0);
  REQUIRE(c.wait_for("stuck woke=0"));
  REQUIRE(::kill(c.pid, SIGINT) == 0);
  REQUIRE(c.wait_for("stuck woke=1"));
  REQUIRE(::kill(c.pid, SIGINT) == 0); // the handler itself ends the process
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("signalfd: the watchdog ends a process whose loop is stuck past deadline and grace",
          "[process][watchdog]") {
  test::child c;
  test::start_child(c, [] {
    gs::stop_controller::options o;
    o.which = gs::backend::signalfd;
    o.grace = 100ms;
    o.watchdog_margin = 100ms;
    gs::stop_controller ctl(o);
    ctl.set_policy(SIGTERM, gs::signal_policy::graceful(100ms).exit_with(
                                gs::exit_rule::with_status(0).on_failure(70)));
    ctl.add_stage({"stuck", gs::stage_kind::flush, [](gs::stage_context &) {
                     test::say("stuck");
                     for (;;)
                       ::pause();
                   }});
    ctl.install();
    test::say("ready");
    gs::poll_loop loop;
    loop.run(ctl);
    return 0;
  });
  REQUIRE(c.wait_for("ready"));
  const auto sent = std::chrono::steady_clock::now();
  REQUIRE(::kill(c.pid, SIGTERM) == 0);
  const int status = c.wait_exit();
  const auto took = std::chrono::steady_clock::now() - sent;
  INFO(c.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 70); // the failure status: the stop did not finish its work
  CHECK(c.output.find("event=watchdog") != std::string::npos);
  CHECK(took >= 300ms); // not before deadline + grace + margin
}

TEST_CASE("EINTR mode: a blocking read in a legacy loop returns EINTR on SIGTERM",
          "[process][eintr]") {
  test::child c;
  test::start_child(c, [] {
    gs::stop_controller ctl;
    ctl.set_policy(SIGTERM, gs::signal_policy::graceful(5s).without_restart());
    ctl.install();
    int never[2];
    if (::pipe(never) != 0) return 2;
    test::say("blocking");
    char b;
    const ssize_t n = ::read(never[0], &b, 1); // nothing will ever be written
    const int err = errno;
    test::say(n < 0 && err == EINTR ? "read returned EINTR" : "read returned something else");
    ctl.dispatch();
    return ctl.state() == gs::controller_state::stopped ? 0 : 3;
  });
  REQUIRE(c.wait_for("blocking"));
  // The child may not be inside read() yet; a signal before it is latched but would not interrupt
  // the read. The kernel says which system call a sleeping task is in; there is no fd to wait on
  // for "entered read()", so this polls that for at most two seconds.
  const auto until = std::chrono::steady_clock::now() + 2s;
  bool in_read = false;
  while (!in_read && std::chrono::steady_clock::now() < until) {
    std::ifstream sc("/proc/" + std::to_string(c.pid) + "/syscall");
    // A string, not a number: a running task reads "running", and a failed numeric extraction
    // stores 0, which is SYS_read on x86-64.
    std::string nr;
    sc >> nr;
    in_read = nr == std::to_string(SYS_read);
    if (!in_read) std::this_thread::yield();
  }
  CHECK(in_read);
  REQUIRE(::kill(c.pid, SIGTERM) == 0);
  if (!c.wait_for("read returned", 5000))
    FAIL("no EINTR; child state:\n" << test::signal_state_of(c.pid) << c.output);
  const int status = c.wait_exit();
  INFO(c.output);
  CHECK(c.output.find("read returned EINTR") != std::string::npos);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("signalfd backend: programs started by fork+exec and by posix_spawn still die of SIGTERM",
          "[process][fork]") {
  test::child c;
  test::start_child(c, [] {
    gs::stop_controller::options o;
    o.which = gs::backend::signalfd;
    gs::stop_controller ctl(o);
    ctl.install();
    if (!gs::detail::state().owner.load()) return 10;

    auto dies_of_sigterm = [](pid_t pid, const char *how) {
      const bool blocked = signal_blocked_in(pid, SIGTERM);
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
      const bool died = WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM;
      test::say(std::string(how) + (blocked ? " blocked" : " unblocked") +
                (died ? " died-of-SIGTERM" : " survived"));
    };

    // fork + exec: the atfork hook restores the mask before the program starts. A CLOEXEC pipe
    // tells us when exec has happened (EOF).
    int execd[2];
    if (::pipe2(execd, O_CLOEXEC) != 0) return 11;
    const pid_t forked = ::fork();
    if (forked == 0) {
      ::execl("/bin/sleep", "sleep", "30", static_cast<char *>(nullptr));
      ::_exit(127);
    }
    ::close(execd[1]);
    char b;
    while (::read(execd[0], &b, 1) > 0) {
    }
    ::close(execd[0]);
    dies_of_sigterm(forked, "fork+exec");

    // posix_spawn runs no atfork hooks; spawn_attributes gives the child a clean mask.
    char arg0[] = "sleep", arg1[] = "30";
    char *argv[] = {arg0, arg1, nullptr};
    gs::spawn_attributes attrs(ctl);
    pid_t spawned = -1;
    if (::posix_spawn(&spawned, "/bin/sleep", nullptr, attrs.get(), argv, environ) != 0) return 12;
    dies_of_sigterm(spawned, "posix_spawn+attributes");

    // Without the attributes the pitfall is real: the blocked mask survives exec.
    pid_t plain = -1;
    if (::posix_spawn(&plain, "/bin/sleep", nullptr, nullptr, argv, environ) != 0) return 13;
    test::say(signal_blocked_in(plain, SIGTERM) ? "plain posix_spawn blocked"
                                                : "plain posix_spawn unblocked");
    ::kill(plain, SIGKILL);
    ::waitpid(plain, nullptr, 0);
    return 0;
  });
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(c.output.find("fork+exec unblocked died-of-SIGTERM") != std::string::npos);
  CHECK(c.output.find("posix_spawn+attributes unblocked died-of-SIGTERM") != std::string::npos);
  CHECK(c.output.find("plain posix_spawn blocked") != std::string::npos);
}

TEST_CASE("a forked child without exec is a plain process again and may install its own controller",
          "[process][fork]") {
  test::child c;
  test::start_child(c, [] {
    gs::stop_controller ctl; // automatic: signalfd on Linux
    ctl.install();
    int ready[2];
    if (::pipe(ready) != 0) return 20;
    const pid_t kid = ::fork();
    if (kid == 0) {
      // The fork hook ran: default disposition, nothing blocked, the global slot free.
      struct sigaction act {};
      ::sigaction(SIGTERM, nullptr, &act);
      sigset_t mask;
      ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
      const bool clean = act.sa_handler == SIG_DFL && !sigismember(&mask, SIGTERM) &&
                         gs::detail::state().owner.load() == 0;
      gs::stop_controller own;
      std::error_code ec;
      own.install(ec);
      ::_exit(clean && !ec ? 0 : 1);
    }
    int st = 0;
    ::waitpid(kid, &st, 0);
    test::say(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "child clean" : "child dirty");
    // The parent's controller is untouched by the child's teardown.
    if (::kill(::getpid(), SIGTERM) != 0) return 21;
    if (!test::wait_readable(ctl.fd(), 5000)) return 22;
    ctl.dispatch();
    test::say(ctl.state() == gs::controller_state::stopped ? "parent stopped" : "parent lost it");
    return 0;
  });
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(c.output.find("child clean") != std::string::npos);
  CHECK(c.output.find("parent stopped") != std::string::npos);
}

TEST_CASE("a child forked during a stop tears down its copy of the controller without hanging",
          "[process][fork]") {
  test::child c;
  test::start_child(c, [] {
    gs::stop_controller ctl; // the watchdog is on by default
    gs::stage_completion drain;
    ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                     drain = ctx.defer();
                     return gs::stage_status::pending;
                   }});
    ctl.install();
    ctl.request_stop(); // the stop is now waiting on the drain, with the watchdog thread running
    if (ctl.state() != gs::controller_state::stopping) return 30;
    const pid_t kid = ::fork();
    if (kid == 0) {
      ctl.uninstall(); // the copy: must not join a thread that does not exist in this process
      ::_exit(0);
    }
    int st = 0;
    ::waitpid(kid, &st, 0);
    test::say(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "kid tore down" : "kid failed");
    drain.done();
    while (ctl.state() != gs::controller_state::stopped) {
      if (!test::wait_readable(ctl.fd(), 5000)) return 31;
      ctl.dispatch();
    }
    return 0;
  });
  const int status = c.wait_exit();
  INFO(c.output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(c.output.find("kid tore down") != std::string::npos);
}
