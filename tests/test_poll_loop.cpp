// The built-in loop: user fds get their callbacks, the controller is dispatched, the loop ends
// when the stop is over and returns the exit code.
#include "support.hpp"

TEST_CASE("poll_loop serves watched fds until a signal stops it", "[poll_loop]") {
  gs::stop_controller ctl;
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(std::chrono::seconds(5))
                              .exit_with(gs::exit_rule::with_status(3)));
  ctl.install();
  int work[2];
  REQUIRE(::pipe(work) == 0);
  int served = 0;
  gs::poll_loop loop;
  loop.watch(work[0], POLLIN, [&](short revents) {
    REQUIRE((revents & POLLIN) != 0);
    char b;
    REQUIRE(::read(work[0], &b, 1) == 1);
    if (++served == 3)
      ::kill(::getpid(), SIGTERM); // the third request asks the daemon to stop
    else
      REQUIRE(::write(work[1], "x", 1) == 1);
  });
  REQUIRE(::write(work[1], "x", 1) == 1);
  CHECK(loop.run(ctl) == 3);
  CHECK(served == 3);
  ::close(work[0]);
  ::close(work[1]);
}

TEST_CASE("poll_loop callbacks may unwatch their own fd", "[poll_loop]") {
  gs::stop_controller ctl;
  ctl.install();
  int work[2];
  REQUIRE(::pipe(work) == 0);
  int calls = 0;
  gs::poll_loop loop;
  loop.watch(work[0], POLLIN, [&](short) {
    ++calls;
    loop.unwatch(work[0]); // still readable, but must not be called again
    ::kill(::getpid(), SIGTERM);
  });
  REQUIRE(::write(work[1], "xx", 2) == 2);
  loop.run(ctl);
  CHECK(calls == 1);
  ::close(work[0]);
  ::close(work[1]);
}

namespace {
int controller_reads = 0;
ssize_t counting_read(int fd, void *buf, size_t len) {
  ++controller_reads; // only the controller reads through the seam
  return ::read(fd, buf, len);
}
} // namespace

TEST_CASE("a wakeup for a user fd costs the controller no system call", "[poll_loop]") {
  gs::stop_controller ctl;
  ctl.install();
  const gs::detail::syscall_table saved = gs::detail::sys();
  gs::detail::sys().read = &counting_read;
  int work[2];
  REQUIRE(::pipe(work) == 0);
  int served = 0;
  int reads_before_stop = -1;
  gs::poll_loop loop;
  loop.watch(work[0], POLLIN, [&](short) {
    char b;
    REQUIRE(::read(work[0], &b, 1) == 1);
    if (++served < 100) {
      REQUIRE(::write(work[1], "x", 1) == 1);
    } else {
      reads_before_stop = controller_reads;
      ::kill(::getpid(), SIGTERM);
    }
  });
  REQUIRE(::write(work[1], "x", 1) == 1);
  loop.run(ctl);
  gs::detail::sys() = saved;
  CHECK(served == 100);
  CHECK(reads_before_stop == 0);
  CHECK(controller_reads > 0); // and the stop itself was read
  ::close(work[0]);
  ::close(work[1]);
}
