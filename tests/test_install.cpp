// Install and uninstall: previous dispositions and masks come back, one controller per process,
// and a second copy of the global state is detected.
#include "support.hpp"

#include <cstdio>

namespace {
extern "C" void previous_handler(int) {}

std::error_code install_error(gs::stop_controller &ctl) {
  std::error_code ec;
  ctl.install(ec);
  return ec;
}
} // namespace

TEMPLATE_TEST_CASE("uninstall restores the previous handler and the mask", "[install]",
                   test::self_pipe_backend, test::signalfd_backend) {
  struct sigaction mine {};
  mine.sa_handler = &previous_handler;
  sigemptyset(&mine.sa_mask);
  REQUIRE(::sigaction(SIGTERM, &mine, nullptr) == 0);
  sigset_t before;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &before);
  REQUIRE(sigismember(&before, SIGTERM) == 0);

  {
    test::event_log log;
    gs::stop_controller ctl(test::options_for(TestType::value, log));
    ctl.install();
    struct sigaction during {};
    ::sigaction(SIGTERM, nullptr, &during);
    CHECK(during.sa_sigaction == &gracefulstop_signal_handler);
    CHECK((during.sa_flags & SA_SIGINFO) != 0);
    sigset_t mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    CHECK(sigismember(&mask, SIGTERM) == (TestType::value == gs::backend::signalfd ? 1 : 0));
    CHECK(::getenv("GRACEFULSTOP_ACTIVE_STATE") != nullptr);
  } // destructor uninstalls

  struct sigaction after {};
  ::sigaction(SIGTERM, nullptr, &after);
  CHECK(after.sa_handler == &previous_handler);
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  CHECK(sigismember(&mask, SIGTERM) == 0);
  CHECK(gs::detail::state().owner.load() == 0);
  CHECK(::getenv("GRACEFULSTOP_ACTIVE_STATE") == nullptr);
}

TEST_CASE("a signal already blocked before install stays blocked after uninstall", "[install]") {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &term, nullptr);
  {
    gs::stop_controller::options o;
    o.which = gs::backend::signalfd;
    gs::stop_controller ctl(o);
    ctl.install();
  }
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  CHECK(sigismember(&mask, SIGTERM) == 1);
  ::pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
}

TEST_CASE("SIGHUP ignored at start (nohup) is kept ignored and reported", "[install]") {
  ::signal(SIGHUP, SIG_IGN);
  test::event_log log;
  gs::stop_controller::options o;
  o.on_event = log.hook();
  gs::stop_controller ctl(o);
  ctl.set_policy(SIGHUP, gs::signal_policy::reload([](const gs::signal_event &) {}));
  ctl.install();
  struct sigaction act {};
  ::sigaction(SIGHUP, nullptr, &act);
  CHECK(act.sa_handler == SIG_IGN);
  CHECK(log.has("event=inherited-ignore signal=SIGHUP"));
  CHECK(sigismember(&ctl.handled_signals(), SIGHUP) == 0);
}

TEST_CASE("another copy of the global state in the process is detected", "[install][errors]") {
  // What a second copy (a shared object built with hidden visibility) leaves in the environment.
  char marker[64];
  std::snprintf(marker, sizeof marker, "%ld:%p", static_cast<long>(::getpid()),
                static_cast<void *>(marker));
  ::setenv("GRACEFULSTOP_ACTIVE_STATE", marker, 1);
  gs::stop_controller ctl;
  CHECK(install_error(ctl) == gs::errc::second_copy);
  CHECK(gs::detail::state().owner.load() == 0);
  // A marker left by another process (inherited through exec) is not a second copy.
  std::snprintf(marker, sizeof marker, "%ld:%p", static_cast<long>(::getpid()) + 1,
                static_cast<void *>(marker));
  ::setenv("GRACEFULSTOP_ACTIVE_STATE", marker, 1);
  CHECK_FALSE(install_error(ctl));
}

TEST_CASE("the controller exposes an fd only while installed", "[install]") {
  gs::stop_controller ctl;
  CHECK(ctl.fd() == -1);
  CHECK(ctl.state() == gs::controller_state::idle);
  ctl.install();
  CHECK(ctl.fd() >= 0);
  CHECK(ctl.state() == gs::controller_state::running);
  CHECK(ctl.next_timeout_ms() == -1);
  ctl.uninstall();
  CHECK(ctl.fd() == -1);
  CHECK(ctl.state() == gs::controller_state::idle);
}
