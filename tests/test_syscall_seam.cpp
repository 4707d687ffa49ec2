// Failures that are hard to provoke for real, injected through the system-call seam.
#include "support.hpp"

namespace {
/// Replaces the seam's table for a scope and puts the real one back.
struct seam_guard {
  gs::detail::syscall_table saved = gs::detail::sys();
  ~seam_guard() { gs::detail::sys() = saved; }
};

int fail_pipe_emfile(int *) {
  errno = EMFILE;
  return -1;
}
int fail_signalfd_emfile(int, const sigset_t *, int) {
  errno = EMFILE;
  return -1;
}
int sigaction_calls = 0;
int fail_second_sigaction(int signo, const struct sigaction *act, struct sigaction *old) {
  if (act != nullptr && ++sigaction_calls == 2) {
    errno = EINVAL;
    return -1;
  }
  return ::sigaction(signo, act, old);
}
int eintr_reads = 0;
ssize_t read_eintr_once(int fd, void *buf, size_t len) {
  if (eintr_reads++ == 0) {
    errno = EINTR;
    return -1;
  }
  return ::read(fd, buf, len);
}
ssize_t read_always_eagain(int, void *, size_t) {
  errno = EAGAIN;
  return -1;
}
ssize_t read_eio(int, void *, size_t) {
  errno = EIO;
  return -1;
}
} // namespace

TEST_CASE("EMFILE from pipe() fails install with errno and leaves nothing installed",
          "[seam][errors]") {
  seam_guard guard;
  gs::detail::sys().make_pipe = &fail_pipe_emfile;
  gs::stop_controller ctl;
  try {
    ctl.install();
    FAIL("install succeeded");
  } catch (const std::system_error &e) {
    CHECK(e.code() == std::errc::too_many_files_open);
    CHECK(e.code().category() == std::system_category());
  }
  struct sigaction act {};
  ::sigaction(SIGTERM, nullptr, &act);
  CHECK(act.sa_handler == SIG_DFL);
  CHECK(gs::detail::state().owner.load() == 0);
  CHECK(ctl.state() == gs::controller_state::idle);
  gs::detail::sys() = guard.saved;
  ctl.install(); // works once the failure is gone
  CHECK(ctl.state() == gs::controller_state::running);
}

TEST_CASE("EMFILE from signalfd() fails install and closes the pipe it made", "[seam][errors]") {
  seam_guard guard;
  gs::detail::sys().signalfd = &fail_signalfd_emfile;
  gs::stop_controller::options o;
  o.which = gs::backend::signalfd;
  gs::stop_controller ctl(o);
  std::error_code ec;
  ctl.install(ec);
  CHECK(ec == std::errc::too_many_files_open);
  CHECK(gs::detail::state().wake_fd.load() == -1);
  CHECK(gs::detail::state().owner.load() == 0);
}

TEST_CASE("a sigaction failing halfway rolls back the signals already installed",
          "[seam][errors]") {
  seam_guard guard;
  sigaction_calls = 0;
  gs::detail::sys().sigaction = &fail_second_sigaction;
  gs::stop_controller::options o;
  o.keep_inherited_ignore = false; // SIGINT must really be installed, even under a shell's `&`
  gs::stop_controller ctl(o);      // SIGINT (2) is installed first, SIGTERM (15) second and fails
  std::error_code ec;
  ctl.install(ec);
  CHECK(ec == std::errc::invalid_argument);
  struct sigaction act {};
  ::sigaction(SIGINT, nullptr, &act);
  CHECK(act.sa_handler == SIG_DFL);
  ::sigaction(SIGTERM, nullptr, &act);
  CHECK(act.sa_handler == SIG_DFL);
  CHECK(gs::detail::state().owner.load() == 0);
}

TEMPLATE_TEST_CASE("EINTR from read() in dispatch is retried and nothing is lost", "[seam]",
                   test::self_pipe_backend, test::signalfd_backend) {
  seam_guard guard;
  test::event_log log;
  gs::stop_controller ctl(test::options_for(TestType::value, log));
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  eintr_reads = 0;
  gs::detail::sys().read = &read_eintr_once;
  ctl.dispatch();
  CHECK(eintr_reads >= 2);
  CHECK(ctl.state() == gs::controller_state::stopped);
}

TEST_CASE("self-pipe: a read that finds nothing still sees the delivery in the counters",
          "[seam]") {
  seam_guard guard;
  test::event_log log;
  gs::stop_controller ctl(test::options_for(gs::backend::self_pipe, log));
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  gs::detail::sys().read = &read_always_eagain; // as if the wakeup byte had been lost
  ctl.dispatch();
  CHECK(ctl.state() == gs::controller_state::stopped);
}

TEST_CASE("an unexpected read error in dispatch is reported with its errno", "[seam][errors]") {
  seam_guard guard;
  gs::stop_controller ctl;
  ctl.install();
  gs::detail::sys().read = &read_eio;
  std::error_code ec;
  ctl.dispatch(ec);
  CHECK(ec == std::errc::io_error);
  CHECK_THROWS_AS(ctl.dispatch(), std::system_error);
}
